"""Training benchmarks: the Trainer's own cost, channels_last memory, the split head's cost, images/s.

Every comparison trains freshly built models on the same batches (MNIST shape, batch 100, Adam 1e-4,
the paper's network unless said otherwise) in one process, the variants interleaved round by round so
that drift in machine load hits all alike; each variant's best round counts. A ratio is the time per
image of one variant over the other's.
"""
import os
import queue
import time
from dataclasses import replace

import torch
from torch.utils.data import DataLoader, TensorDataset

from bench.models import build_model
from bench.presets import paper_model_config
from svae.data import SPECS, as_float
from svae.trainer import TrainConfig, Trainer, pick_device, seed_everything


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def _fresh_model(name: str, dataset: str = "mnist"):
    seed_everything(0)
    return build_model(name, SPECS[dataset], paper_model_config(dataset))


def trainer_seconds(name: str, images: torch.Tensor, device: torch.device, amp: bool = False,
                    dataset: str = "mnist") -> float:
    """One Trainer epoch over images with a freshly built model, after a warm-up epoch on one batch."""
    model = _fresh_model(name, dataset)
    trainer = Trainer(TrainConfig(epochs=1, batch_size=100, lr=1e-4, device=str(device), amp=amp, progress=False))
    trainer.fit(model, images[:100])  # warm-up: allocator, kernels, BatchNorm buffers
    _sync(device)
    started = time.perf_counter()
    trainer.fit(model, images)
    _sync(device)
    return time.perf_counter() - started


def bare_seconds(name: str, images: torch.Tensor, device: torch.device,
                 memory_format=torch.contiguous_format) -> float:
    """The same epoch as `trainer_seconds` as a bare PyTorch loop: the same shuffled batches, no bookkeeping."""
    model = _fresh_model(name).to(device, memory_format=memory_format).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)

    def epoch(data):
        seed_everything(0)
        loader = DataLoader(TensorDataset(data), batch_size=100, shuffle=True,
                            generator=torch.Generator().manual_seed(0))
        for (batch,) in loader:
            x = as_float(batch.to(device)).contiguous(memory_format=memory_format)
            loss = model.loss(x, model(x))["loss"]
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()

    epoch(images[:100])  # warm-up, as above
    _sync(device)
    started = time.perf_counter()
    epoch(images)
    _sync(device)
    return time.perf_counter() - started


def interleaved_best(variants: dict, rounds: int) -> dict:
    """The best of `rounds` timings of each variant (name -> function returning seconds), interleaved."""
    times = {name: [] for name in variants}
    for _ in range(rounds):
        for name, run in variants.items():
            times[name].append(run())
    return {name: min(t) for name, t in times.items()}


def mnist_like(n: int) -> torch.Tensor:
    return torch.randint(0, 256, (n, 1, 32, 32), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))


def training_benchmark(device=None, n: int = 200, rounds: int = 3) -> list:
    """Rows: the Trainer against a bare loop, channels_last against contiguous, the SVAE against the VAE."""
    device = pick_device(device)
    images = mnist_like(n)
    best = interleaved_best({
        "trainer": lambda: trainer_seconds("svae", images, device),
        "bare": lambda: bare_seconds("svae", images, device),
        "bare channels_last": lambda: bare_seconds("svae", images, device, torch.channels_last),
        "trainer vae": lambda: trainer_seconds("vae", images, device),
    }, rounds)
    setting = f"MNIST paper network, {n} images x {rounds} rounds, {device}, {torch.get_num_threads()} threads"
    return [
        {"measure": "Trainer / bare PyTorch loop (time per image, SVAE)", "value": best["trainer"] / best["bare"],
         "target": ["<=", 1.03], "note": setting},
        {"measure": "channels_last / contiguous (bare loop, SVAE)",
         "value": best["bare channels_last"] / best["bare"], "target": None,
         "note": "below 1: channels_last is faster on this device"},
        {"measure": "SVAE / VAE (time per image, Trainer)", "value": best["trainer"] / best["trainer vae"],
         "target": ["<=", 1.10], "note": f"SVAE {n / best['trainer']:.1f}, VAE {n / best['trainer vae']:.1f} images/s"},
    ]


def throughput_benchmark(device=None, n: int = 2000, rounds: int = 2) -> list:
    """Rows: Trainer images/s at the MNIST and CelebA paper settings, float32 and bf16 autocast (a GPU's)."""
    device = pick_device(device)
    rows = []
    for dataset in ("mnist", "celeba"):
        spec = SPECS[dataset]
        images = torch.randint(0, 256, (n, spec.channels, spec.size, spec.size), dtype=torch.uint8,
                               generator=torch.Generator().manual_seed(0))
        # the lambdas run inside this iteration (interleaved_best), so the loop variables are current
        best = interleaved_best({amp: lambda amp=amp: trainer_seconds("svae", images, device, amp, dataset)  # noqa: B023
                                 for amp in (False, True)}, rounds)
        for amp, seconds in best.items():
            rows.append({"measure": f"SVAE training images/s, {dataset} paper settings, "
                                    f"{'bf16 autocast' if amp else 'float32'}",
                         "value": n / seconds, "target": None, "note": f"{n} images x {rounds} rounds, {device}"})
        rows.append({"measure": f"bf16 / float32 time per image, {dataset}", "value": best[True] / best[False],
                     "target": None, "note": "autocast only acts on CUDA"})
    return rows


def _packed_worker(dataset: str, model_name: str, images: int, device: str, threads: int, barrier, results) -> None:
    """One of the packed trials: a paper-settings model's first stage trains `images` images after a
    warm-up batch, starting with the others at the barrier; it reports its (start, end) clock."""
    from bench.presets import settings_for
    from bench.trial import train_config
    torch.set_num_threads(threads)
    settings = settings_for("paper", dataset)
    spec = SPECS[dataset]
    seed_everything(0)
    stage = build_model(model_name, spec, settings.model).stages()[0]
    trainer = Trainer(replace(train_config(settings, stage, 0), epochs=1, device=device))
    data = stage.make_data(torch.randint(0, 256, (images, spec.channels, spec.size, spec.size), dtype=torch.uint8))
    trainer.fit(stage.module, data[:settings.batch_size], stage.batch_transform)
    _sync(torch.device(device))
    barrier.wait(timeout=600)
    started = time.time()  # wall clock: comparable across the processes
    trainer.fit(stage.module, data, stage.batch_transform)
    _sync(torch.device(device))
    results.put((started, time.time()))


def packed_images_per_second(dataset: str, model_name: str, trials: int, images: int, device: str = "cuda") -> float:
    """Training images/s of `trials` trials sharing one device, all of them together: as many
    processes, each its own CUDA context as Ray's fractional GPUs give, started at once, each
    training `images` images at the paper settings; the span is first start to last end."""
    import multiprocessing
    context = multiprocessing.get_context("spawn")
    barrier, results = context.Barrier(trials), context.Queue()
    threads = max(1, (os.cpu_count() or 1) // trials)
    workers = [context.Process(target=_packed_worker, args=(dataset, model_name, images, device, threads, barrier,
                                                            results)) for _ in range(trials)]
    for w in workers:
        w.start()
    spans = []
    while len(spans) < trials:
        try:
            spans.append(results.get(timeout=5))
        except queue.Empty:
            failed = [w.exitcode for w in workers if w.exitcode not in (None, 0)]
            if failed:
                for w in workers:
                    w.kill()
                raise RuntimeError(f"a packed trial failed (exit codes {failed}); its error is printed above") from None
    for w in workers:
        w.join()
    return trials * images / (max(end for _, end in spans) - min(start for start, _ in spans))
