"""Benchmarks of every stage of a sweep: `python -m bench.cost.perf all`, or one by name (see --help).

`all` runs the registry below in one process, prints each ratio against its target, and writes the
table as JSON and markdown. Training: bench/cost/throughput.py; the sweep, cache and memory: bench/cost/perf_sweep.py.
The FID engine's benchmark lives here: against pytorch-fid in one run, on the same images and the same weights: feature
throughput (this engine on in-memory tensors vs pytorch-fid's path-based pipeline on PNG files),
the largest feature difference, and the distance computation on realistic 2048-d statistics.
The weights are seeded random ones (no download needed): throughput and agreement do not depend on
their values, only on their shapes, as long as activations are of a realistic scale (BatchNorm is
calibrated on images, so no layer runs on denormals or zeros).
"""
if __name__ == "__main__":  # first, so that Ctrl-C while the imports below load is one line
    from svae.interrupt import quiet_until_main
    quiet_until_main()

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from unittest import mock

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision
from PIL import Image

import pytorch_fid.fid_score as pfs
import pytorch_fid.inception as pfi

from bench.cost.cpu_peak import conv_flops_per_image, fp32_peak
from bench.fid import check_device
from bench.metrics import Scorer, frechet_distance, statistics
from bench.metrics.extractors import FIDInception
from svae.command import run_command
from svae.errors import HarnessError
from svae.interrupt import interrupts_raise
from svae.io import writable_folder
from svae.trainer import pick_device


def random_images(n, channels=3, size=32, seed=0, shift=0.0) -> torch.Tensor:
    """Smooth random images with varied brightness and contrast, uint8 N x C x H x W; shift brightens."""
    g = torch.Generator().manual_seed(seed)
    low = torch.rand(n, channels, 4, 4, generator=g)
    x = F.interpolate(low, size=(size, size), mode="bilinear", align_corners=False)
    x = x + 0.15 * torch.rand(n, channels, size, size, generator=g)  # fine texture
    x = torch.rand(n, 1, 1, 1, generator=g) * x + 0.3 * torch.rand(n, 1, 1, 1, generator=g) + shift
    return (x.clamp(0, 1) * 255).round().to(torch.uint8)


def pytorch_fid_inception(state_dict) -> pfi.InceptionV3:
    """pytorch-fid's own InceptionV3 (FID variant) with state_dict in place of the downloaded weights."""
    with mock.patch.object(pfi, "load_state_dict_from_url", lambda *args, **kwargs: state_dict):
        return pfi.InceptionV3([3]).eval()


def seeded_inception_weights(seed, calibration: torch.Tensor) -> dict:
    """A state dict for the FID Inception: He-initialised convolutions, BatchNorm statistics measured
    on the calibration images (floats in [0, 1]), so that features vary strongly between images."""
    shapes = torchvision.models.inception_v3(num_classes=1008, aux_logits=False, weights=None,
                                             init_weights=False).state_dict()  # the FID file's keys
    g = torch.Generator().manual_seed(seed)
    state = {}
    for name, t in shapes.items():
        if name.endswith("num_batches_tracked"):
            state[name] = torch.zeros_like(t)
        elif t.ndim == 4:
            state[name] = torch.randn(t.shape, generator=g) * (2 / t[0].numel()) ** 0.5
        elif name.endswith(("bn.weight", "running_var")):
            state[name] = torch.ones_like(t)
        elif name == "fc.weight":
            state[name] = torch.randn(t.shape, generator=g) * 0.01
        else:
            state[name] = torch.zeros_like(t)
    captured = []
    build = pfi.fid_inception_v3

    def capture():
        captured.append(build())
        return captured[-1]

    with mock.patch.object(pfi, "fid_inception_v3", capture):
        model = pytorch_fid_inception(state)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.reset_running_stats()
            m.momentum = None  # a plain average of the calibration batch's statistics
    model.train()
    with torch.no_grad():
        model(calibration)
    return captured[0].state_dict()


def fid_benchmark(n, batch_size, device, channels, size, repeats=2):
    torch.manual_seed(0)
    images = random_images(n, channels, size, seed=1)
    with tempfile.TemporaryDirectory() as tmp:
        weights = Path(tmp) / "seeded-inception.pth"
        torch.save(seeded_inception_weights(0, random_images(64, 3, size, seed=2).float() / 255), weights)
        folder = Path(tmp) / "images"
        folder.mkdir()
        for i, img in enumerate(images):
            Image.fromarray(img.permute(1, 2, 0).squeeze(2).numpy()).save(folder / f"{i:05d}.png")
        files = sorted(folder.glob("*.png"))
        workers = min(8, len(os.sched_getaffinity(0)))  # pytorch-fid's command-line default
        print(f"FID features: {n} images {channels}x{size}x{size}, batch {batch_size}, device {device}, "
              f"{torch.get_num_threads()} threads, best of {repeats}; seeded random Inception weights "
              f"(not the FID weights)")

        state = torch.load(weights, weights_only=True)
        model = pytorch_fid_inception(state).to(device)
        engine = Scorer(weights_path=weights, device=device, batch_size=batch_size)
        engine.features(images[:batch_size])  # warm-up: oneDNN picks its kernels on the first call
        times_ref, times_ours = [], []
        with mock.patch.object(pfs, "tqdm", lambda x: x):
            pfs.get_activations(files[:batch_size], model, batch_size, 2048, device, workers)
            for _ in range(repeats):  # interleaved, so that load from other processes hits both alike
                t = time.perf_counter()
                ref = pfs.get_activations(files, model, batch_size, 2048, device, workers)
                ref_mu, ref_sigma = np.mean(ref, axis=0), np.cov(ref, rowvar=False)
                times_ref.append(time.perf_counter() - t)
                t = time.perf_counter()
                ours = engine.features(images)
                mu, sigma = statistics(ours)
                times_ours.append(time.perf_counter() - t)
    t_ref, t_ours = min(times_ref), min(times_ours)

    row_diff = np.linalg.norm(ours - ref, axis=1) / np.linalg.norm(ref, axis=1)
    feature_difference = np.abs(ours - ref).max() / np.abs(ref).max()
    print(f"  pytorch-fid (PNG files, {workers} loader workers): {n / t_ref:7.2f} images/s")
    print(f"  this engine (in-memory tensors):          {n / t_ours:7.2f} images/s   ratio {t_ref / t_ours:.2f}x "
          f"(target >= 1.5x on CPU)")
    # counted on torch's copy of the layers, on the CPU: the engine's may be ONNX Runtime's, or on a GPU
    flops = conv_flops_per_image(FIDInception(state), images[:1].float() / 255)
    peak = fp32_peak()
    achieved = flops * n / t_ours / 1e9
    print(f"  this engine: {flops / 1e9:.2f} GFLOP per image (convolutions), {achieved:.1f} GFLOP/s = "
          f"{achieved / peak['gflops']:.0%} of this CPU's float32 peak {peak['gflops']:.0f} GFLOP/s ({peak['how']}; "
          f"bench/cost/cpu_peak.py)")
    print(f"  feature difference: max over images of |f - f_ref| / |f_ref| = {row_diff.max():.2e}; "
          f"max |f - f_ref| / max |f_ref| = {feature_difference:.2e} (target <= 1e-4)")
    print(f"  mean difference {np.abs(mu - ref_mu).max():.2e}, covariance difference "
          f"{np.abs(sigma - ref_sigma).max() / np.abs(ref_sigma).max():.2e} (relative to its largest entry)")
    return [{"measure": "FID features: this engine / pytorch-fid, images/s", "value": t_ref / t_ours,
             "target": [">=", 1.5], "note": f"{n} images {channels}x{size}x{size}, batch {batch_size}"},
            {"measure": "FID features: this engine's share of the float32 peak", "value": achieved / peak["gflops"],
             "target": None, "note": f"{achieved:.1f} of {peak['gflops']:.0f} GFLOP/s; {peak['how']}"},
            {"measure": "FID features: max |f - f_ref| / max |f_ref|", "value": feature_difference,
             "target": ["<=", 1e-4], "note": "same images, same weights"}]


def realistic_statistics(seed, d=2048, n=10000, scale=1.0):
    """Statistics of n samples with a power-law spectrum like Inception pool3 features (ill-conditioned
    but full rank), in a random basis shared by all seeds; scale and seed move the second set."""
    basis = np.linalg.qr(np.random.default_rng(0).standard_normal((d, d)))[0]
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, d)) * np.sqrt(scale * 10 / np.arange(1, d + 1)) @ basis.T
    x = x + 0.05 * rng.standard_normal((n, d)) @ (rng.standard_normal((d, d)) / d)  # breaks commutation
    return x.mean(axis=0) + 0.01 * seed, np.cov(x, rowvar=False)


def distance_benchmark(repeats=2):
    mu1, s1 = realistic_statistics(1)
    mu2, s2 = realistic_statistics(2, scale=1.2)
    times_ref, times_ours = [], []
    for _ in range(repeats):  # interleaved, so that load from other processes hits both alike
        t = time.perf_counter()
        ref = pfs.calculate_frechet_distance(mu1, s1, mu2, s2)
        times_ref.append(time.perf_counter() - t)
        t = time.perf_counter()
        ours = frechet_distance(mu1, s1, mu2, s2)
        times_ours.append(time.perf_counter() - t)
    t_ref, t_ours = min(times_ref), min(times_ours)
    print(f"Frechet distance on 2048-d statistics of 10,000 samples (condition number {np.linalg.cond(s1):.1e}):")
    print(f"  pytorch-fid calculate_frechet_distance (scipy sqrtm): {t_ref:6.2f} s   FID {ref:.10g}")
    print(f"  this engine (Cholesky + symmetric eigenvalues):       {t_ours:6.2f} s   FID {ours:.10g}")
    print(f"  ratio {t_ref / t_ours:.1f}x (target >= 5x), relative difference {abs(ours - ref) / abs(ref):.1e} "
          f"(target <= 1e-6)")
    return [{"measure": "Frechet distance: pytorch-fid (scipy sqrtm) / this engine, time", "value": t_ref / t_ours,
             "target": [">=", 5], "note": "2048-d statistics of 10,000 samples"},
            {"measure": "Frechet distance: relative difference to pytorch-fid", "value": abs(ours - ref) / abs(ref),
             "target": ["<=", 1e-6], "note": ""}]


def evaluation_benchmark(n, batch_size, device, channels, size, samplers=1):
    """An SVAE trial's scoring (x_hat, x1, x2 and mix, the trial's metrics) with Inception: features
    of each output's images (4 passes per sampler) against features once, with mix assembled from
    x1's and x2's (3 passes; bench/trial.py output_features). Same figures expected.

    Every sampler is scored alike, so one sampler gives a trial's ratio. The metrics cost the same in
    both (FID's 2048-d eigendecompositions: about 3 s per output here), while a real trial featurises
    thousands of images per output; so n must be large enough for features to dominate as they do
    there: at 25 images the ratio read 1.11x, at 100 1.32x (of at most 4/3)."""
    from bench.metrics import reference_from_features
    from bench.presets import Settings
    from bench.models import MODELS
    from bench.trial import output_features
    from svae.samplers import mix_halves

    metrics = Settings.__dataclass_fields__["metrics"].default
    with tempfile.TemporaryDirectory() as tmp:
        weights = Path(tmp) / "seeded-inception.pth"
        torch.save(seeded_inception_weights(0, random_images(64, 3, size, seed=2).float() / 255), weights)
        scorer = Scorer(weights_path=weights, device=device, batch_size=batch_size)
    extractor = scorer.extractor()
    reference = reference_from_features(extractor.features(random_images(n, channels, size, seed=3)))
    sets = []
    for s in range(samplers):
        outputs = {name: random_images(n, channels, size, seed=10 * s + i, shift=0.05 * i).float() / 255
                   for i, name in enumerate(("x_hat", "x1", "x2"))}
        sets.append({**outputs, "mix": mix_halves(outputs["x1"], outputs["x2"])})
    extractor.features(sets[0]["x_hat"][:batch_size])  # warm-up: oneDNN picks its kernels on the first call

    def score(features_of):
        return [[(f.metric, f.value) for feats in features_of(outputs).values()
                 for f in scorer.score(feats, reference, metrics)] for outputs in sets]

    t = time.perf_counter()
    before = score(lambda outputs: {name: extractor.features(outputs[name]) for name in MODELS['svae'].outputs})
    t_before = time.perf_counter() - t
    t = time.perf_counter()
    after = score(lambda outputs: output_features(extractor, outputs, MODELS['svae'].outputs))
    t_after = time.perf_counter() - t
    pairs = [(a, b) for x, y in zip(before, after) for (_, a), (_, b) in zip(x, y)]
    worst = max(abs(a - b) / max(abs(a), 1e-12) for a, b in pairs)
    print(f"SVAE trial evaluation: {samplers} samplers x (x_hat, x1, x2, mix), {n} images {channels}x{size}x{size} "
          f"each, metrics {', '.join(metrics)}, device {device}, {torch.get_num_threads()} threads; seeded "
          f"random Inception weights")
    print(f"  features per output (4 passes per sampler): {t_before:7.2f} s")
    print(f"  features once, mix assembled (3 passes):    {t_after:7.2f} s   ratio {t_before / t_after:.2f}x "
          f"(target >= 1.25x)")
    print(f"  {len(pairs)} figures, largest relative difference {worst:.1e} (same figures: summation order only)")
    return [{"measure": "SVAE trial scoring: features per output / features once", "value": t_before / t_after,
             "target": [">=", 1.25], "note": f"{len(pairs)} figures, largest relative difference {worst:.1e}"}]


def fid_rows(args) -> list:
    rows = fid_benchmark(args.n or 100, args.batch_size, args.device, args.channels, args.size)
    return rows if args.skip_distance else rows + distance_benchmark()


def fid_tuning_rows(args) -> list:
    from bench.cost.fid_tuning import fid_tuning_rows
    return fid_tuning_rows(args)


def evaluation_rows(args) -> list:
    return evaluation_benchmark(args.n or 100, args.batch_size, args.device, args.channels, args.size)


def training_rows(args) -> list:
    from bench.cost.throughput import training_benchmark
    return training_benchmark(args.device, **({"n": args.n} if args.n else {}))


def throughput_rows(args) -> list:
    from bench.cost.throughput import throughput_benchmark
    return throughput_benchmark(args.device, **({"n": args.n} if args.n else {}))


def sweep_rows(args) -> list:
    from bench.cost.perf_sweep import sweep_rows
    return sweep_rows(args.device, "sweep")


def cache_rows(args) -> list:
    from bench.cost.perf_sweep import sweep_rows
    return sweep_rows(args.device, "cache")


def memory_rows(args) -> list:
    from bench.cost.perf_sweep import sweep_rows
    return sweep_rows(args.device, "memory")


# name -> (function of the parsed arguments returning rows, whether `all` runs it on a CPU (None: never, as
# it needs the real FID weights and a dataset), what it measures).
# A row: {"measure", "value", "target": [op, bound] or None, "note"}. The three sweep benchmarks share
# one measured sweep per process.
BENCHMARKS = {
    "train": (training_rows, True, "the Trainer against a bare loop, channels_last, the SVAE against the VAE"),
    "throughput": (throughput_rows, False, "training images/s at the MNIST and CelebA paper settings, "
                                           "float32 and bf16 (for GPUs: the CelebA network is slow on CPUs)"),
    "sweep": (sweep_rows, True, "Ray's overhead per trial on a sweep of very short trials, and its parts"),
    "cache": (cache_rows, True, "computations per real-statistics cache key in a sweep"),
    "memory": (memory_rows, True, "peak resident memory of one trial and of the driver"),
    "eval": (evaluation_rows, True, "an SVAE trial's scoring: features per output against features once"),
    "fid": (fid_rows, True, "the FID engine against pytorch-fid: features and the distance"),
    "fid-tuning": (fid_tuning_rows, None, "the FID Inception's CPU settings against pytorch-fid's layers, "
                                           "timed and checked on Fashion-MNIST with the FID weights"),
}


def meets(row: dict):
    """True or False against the row's target, None without one."""
    if not row["target"]:
        return None
    op, bound = row["target"]
    return row["value"] <= bound if op == "<=" else row["value"] >= bound


def markdown_table(rows: list) -> str:
    lines = ["| benchmark | measure | value | target | met | note |", "|---|---|---|---|---|---|"]
    for row in rows:
        target = " ".join(map(str, row["target"])) if row["target"] else ""
        met = {True: "yes", False: "**no**", None: ""}[meets(row)]
        lines.append(f"| {row['benchmark']} | {row['measure']} | {row['value']:.3g} | {target} | {met} | "
                     f"{row.get('note', '')} |")
    return "\n".join(lines) + "\n"


def machine() -> dict:
    import platform
    return {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "platform": platform.platform(),
            "cpus": len(os.sched_getaffinity(0)), "torch_threads": torch.get_num_threads(),
            "load_average": os.getloadavg(), "torch": torch.__version__,
            "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None}


def main(argv=None) -> int:
    interrupts_raise()
    p = argparse.ArgumentParser(prog="python -m bench.cost.perf", description=__doc__.split("\n\n")[0])
    p.add_argument("what", nargs="+", choices=["all", *BENCHMARKS],
                   help="all, or some of: " + "; ".join(f"{k}: {v[2]}" for k, v in BENCHMARKS.items()))
    p.add_argument("--out", default="perf", help="folder for results.json and results.md")
    p.add_argument("--n", type=int, default=None,
                   help="images to featurise (fid 100, fid-tuning 100 per set, eval 100 per output) or to train on "
                        "per round (train 200, throughput 2000)")
    p.add_argument("--batch-size", type=int, default=50)
    p.add_argument("--device", default=str(pick_device(None)))
    p.add_argument("--channels", type=int, default=3, choices=[1, 3])
    p.add_argument("--size", type=int, default=32)
    p.add_argument("--skip-distance", action="store_true")
    args = p.parse_args(argv)
    return run_command(lambda: run_benchmarks(args), "interrupted; nothing was written")


def check_args(args) -> None:
    """Every number before any benchmark allocates: a wrong one is one line, not a traceback or a wait."""
    if args.n is not None and not 1 <= args.n <= 10**7:
        raise HarnessError(f"--n must be from 1 to 10,000,000 images (got {args.n})")
    if not 1 <= args.batch_size <= 65536:
        raise HarnessError(f"--batch-size must be from 1 to 65,536 (got {args.batch_size})")
    if args.size not in (16, 32, 64, 128):
        raise HarnessError(f"--size must be 16, 32, 64 or 128 pixels (got {args.size})")
    writable_folder(args.out, "--out", "name a folder for results.json and results.md")
    check_device(args.device)


def run_benchmarks(args) -> int:
    check_args(args)
    if args.device.startswith("cuda"):  # float32 means float32: compare against references without TF32
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
    names = ([k for k, v in BENCHMARKS.items() if v[1] or (v[1] is False and args.device != "cpu")]
             if "all" in args.what
             else list(dict.fromkeys(args.what)))
    rows, seconds = [], {}
    for name in names:
        started = time.perf_counter()
        rows += [{"benchmark": name, **row} for row in BENCHMARKS[name][0](args)]
        seconds[name] = round(time.perf_counter() - started, 1)
        print(f"[{name}: {seconds[name]:.0f} s]", flush=True)
    table = markdown_table(rows)
    print(table)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    info = {**machine(), "benchmarks": names, "seconds": seconds}
    (out / "results.json").write_text(json.dumps({"machine": info, "rows": rows}, indent=1) + "\n")
    (out / "results.md").write_text(f"# bench.cost.perf {' '.join(names)}, {info['date']}\n\n"
                                    f"{json.dumps(info)}\n\n{table}")
    print(f"written: {out / 'results.json'}, {out / 'results.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
