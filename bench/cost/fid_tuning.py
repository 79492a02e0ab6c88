"""`python -m bench.cost.perf fid-tuning`: the FID Inception's CPU settings, each timed against pytorch-fid's
layers in the same run, and checked against them on real images.

The reference is the engine with pytorch-fid's layers as they are (each convolution, then its batch
norm); the variants change how the same float32 arithmetic is laid out. Timing is interleaved (A, B,
C, A, B, C, ...) and repeated, and each variant's figure is the median over repeats of its time
against the reference's in the same round: the machine is shared, and load that hits one round hits
all variants of it alike. Agreement: every variant's features of the same images against the
reference's (largest difference, absolute and relative to the largest feature), and for each, FID
between two real image sets (Fashion-MNIST train and test) against the reference's FID: a variant
is adoptable where that relative difference is within 1e-4.
"""
import time
from dataclasses import dataclass

import numpy as np
import torch

from bench.metrics import frechet_distance, statistics
from bench.metrics.extractors import FIDInception, features
from bench.metrics.inception_weights import find_weights
from bench.metrics.onnx_engine import on_onnxruntime

FID_TOLERANCE = 1e-4  # relative; what "the same FID" means here (issue 21)


@dataclass(frozen=True)
class Variant:
    name: str
    fold_batch_norm: bool
    batch_size: int
    threads: int
    engine: str = "torch"  # or "onnxruntime": the same folded layers exported (bench/metrics/onnx_engine.py)


def variants(batch_size: int, threads: int) -> list:
    """The reference first, then the adopted default, then the settings it was chosen over."""
    found = [Variant("pytorch-fid's layers (batch norm apart)", False, batch_size, threads),
             Variant("batch norm folded, ONNX Runtime (the CPU default)", True, batch_size, threads, "onnxruntime"),
             Variant("batch norm folded, torch (the GPU default)", True, batch_size, threads),
             Variant(f"batch norm folded, batch {max(1, batch_size // 2)}", True, max(1, batch_size // 2), threads)]
    if threads > 1:  # fewer threads than cores: less waiting at each layer's barrier on a loaded machine
        found.append(Variant(f"batch norm folded, {threads - 1} thread(s)", True, batch_size, threads - 1))
    return found


def timed_features(net, variant: Variant, images, device) -> tuple:
    """(seconds, features) of images through net with the variant's batch size and threads."""
    before = torch.get_num_threads()
    torch.set_num_threads(variant.threads)
    try:
        started = time.perf_counter()
        feats = features(net, images, variant.batch_size, device)
        return time.perf_counter() - started, feats
    finally:
        torch.set_num_threads(before)


def tuning_benchmark(state_dict, first, second, batch_size, weights_tag: str, device="cpu", repeats=3,
                     graph_folder=None) -> list:
    """Times each variant on the image set first (uint8 N x C x H x W), repeats times, interleaved; then
    scores FID(first, second) with each. Returns perf rows, prints a table of ratios. ONNX Runtime's graph
    of the weights (weights_tag names it) is kept in graph_folder (default: the torch hub's checkpoints)."""
    found = [v for v in variants(batch_size, torch.get_num_threads()) if v.engine == "torch" or device == "cpu"]

    def net(v: Variant):
        torch_net = FIDInception(state_dict, fold_batch_norm=v.fold_batch_norm).to(device)
        return torch_net if v.engine == "torch" else on_onnxruntime(torch_net, weights_tag, graph_folder)

    nets = {}
    for v in found:  # one network per (batch norm, engine): the variants of batch size and threads share it
        if (v.fold_batch_norm, v.engine) not in nets:
            nets[v.fold_batch_norm, v.engine] = net(v)
    for network in nets.values():  # warm-up: oneDNN picks its kernels, ONNX Runtime makes its session
        features(network, first[:2], 2, device)
    seconds, feats = {v: [] for v in found}, {}
    for _ in range(repeats):
        for v in found:
            t, feats[v] = timed_features(nets[v.fold_batch_norm, v.engine], v, first, device)
            seconds[v].append(t)
    reference, fid_ref, rows = found[0], None, []
    print(f"FID Inception settings: {len(first)} images {tuple(first.shape[1:])} timed per variant, {repeats} "
          f"interleaved rounds; FID between {len(first)} and {len(second)} images; device {device}, "
          f"{torch.get_num_threads()} threads")
    print(f"  {'variant':52s} {'images/s (median)':>17s} {'ratio':>6s} {'max |df|':>9s} {'rel':>9s} "
          f"{'FID rel diff':>12s}")
    for v in found:
        rounds = np.array(seconds[reference]) / np.array(seconds[v])
        ratio = float(np.median(rounds))
        diff = np.abs(feats[v] - feats[reference]).max()
        relative = diff / np.abs(feats[reference]).max()
        second_feats = features(nets[v.fold_batch_norm, v.engine], second, v.batch_size, device)
        fid = frechet_distance(*statistics(feats[v]), *statistics(second_feats))
        fid_ref = fid if v is reference else fid_ref
        fid_relative = abs(fid - fid_ref) / abs(fid_ref)
        print(f"  {v.name:52s} {len(first) / np.median(seconds[v]):17.2f} {ratio:6.3f} {diff:9.2e} {relative:9.2e} "
              f"{fid_relative:12.2e}   FID {fid:.6f}; rounds {' '.join(f'{r:.3f}' for r in rounds)}")
        if v is not reference:
            rows.append({"measure": f"FID Inception, {v.name}: images/s / pytorch-fid's layers' (median ratio)",
                         "value": ratio, "target": None,
                         "note": f"features within {relative:.1e} (relative), FID within {fid_relative:.1e}"})
            rows.append({"measure": f"FID Inception, {v.name}: FID relative difference", "value": fid_relative,
                         "target": ["<=", FID_TOLERANCE], "note": f"FID {fid:.6g} vs {fid_ref:.6g}"})
    return rows


def fid_tuning_rows(args) -> list:
    """The tuning benchmark on the FID weights (found as the engine finds them) and Fashion-MNIST's
    first args.n training images against its first args.n test images."""
    from svae.data import load_images
    weights = find_weights(None)
    state_dict = torch.load(weights.path, map_location="cpu", weights_only=True)
    n = args.n or 100
    first = load_images("fashion-mnist", "train").images[:n]
    second = load_images("fashion-mnist", "test").images[:n]
    return tuning_benchmark(state_dict, first, second, args.batch_size, weights.tag, args.device)
