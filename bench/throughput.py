"""Training throughput of the SVAE against its controlled peer, the VAE, at the paper's settings.

Both models train on the same batches (MNIST shape, batch 100, Adam 1e-4) through the same Trainer
in one process, interleaved so that both see the same machine load; the split head's cost is the
ratio of their images/s.
"""
import time

import torch

from bench.models import build_model
from bench.presets import paper_model_config
from svae.data import SPECS
from svae.trainer import TrainConfig, Trainer, pick_device, seed_everything


def images_per_second(name: str, images: torch.Tensor, device: str) -> float:
    """One epoch over images with a freshly built model, after a short warm-up."""
    seed_everything(0)
    model = build_model(name, SPECS["mnist"], paper_model_config("mnist"))
    trainer = Trainer(TrainConfig(epochs=1, batch_size=100, lr=1e-4, device=device, progress=False))
    trainer.fit(model, images[:200])  # warm-up: allocator, kernels, BatchNorm buffers
    started = time.perf_counter()
    trainer.fit(model, images)
    if trainer.device.type == "cuda":
        torch.cuda.synchronize()
    return len(images) / (time.perf_counter() - started)


def train_throughput(n_images: int = 600, repeats: int = 3, device=None) -> dict:
    device = str(pick_device(device))
    images = torch.randint(0, 256, (n_images, 1, 32, 32), dtype=torch.uint8)
    rates = {"svae": [], "vae": []}
    for _ in range(repeats):  # interleaved, so drift in machine load hits both alike
        for name in rates:
            rates[name].append(images_per_second(name, images, device))
    best = {name: max(r) for name, r in rates.items()}
    print(f"training throughput at the MNIST paper settings on {device} (torch threads: {torch.get_num_threads()}), "
          f"{n_images} images x {repeats} rounds, best round:")
    for name, rate in best.items():
        print(f"  {name:5s} {rate:8.1f} images/s   (rounds: {', '.join(f'{r:.1f}' for r in rates[name])})")
    overhead = best["vae"] / best["svae"] - 1
    print(f"  split head overhead: SVAE takes {100 * overhead:+.1f}% time per image relative to the VAE "
          f"(target: at most +10%)")
    return {"device": device, **{f"{k}_images_per_s": v for k, v in best.items()}, "svae_overhead": overhead}
