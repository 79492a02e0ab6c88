"""This CPU's float32 peak, and a network's convolution FLOPs: the ceiling that `bench.cost.perf fid`
reports the Inception engine against.

Peak = cores x clock x float32 FLOPs per cycle per core. Cores: the CPUs this process may run on;
clock: /proc/cpuinfo's "cpu MHz" (the current clock, as the kernel reports it; turbo may run above
it); FLOPs per cycle: the widest vector the flags name (avx512f: 16 float32 lanes, avx2/avx: 8, sse: 4),
x 2 for a fused multiply-add (fma flag), x 2 FMA units per core. The unit count is not in
/proc/cpuinfo: two is what server cores since Intel Haswell and AMD Zen 2 have (Zen 1 and some
Xeons with one AVX-512 unit have half), so the peak is an upper bound where that is wrong.
"""
import os
from pathlib import Path

import torch
from torch import nn

FMA_UNITS = 2


def fp32_peak(cpuinfo: str | None = None) -> dict:
    """{"cores", "ghz", "lanes", "flops_per_cycle", "gflops", "how"} from /proc/cpuinfo's text."""
    text = cpuinfo if cpuinfo is not None else Path("/proc/cpuinfo").read_text()
    fields = dict(line.split(":", 1) for line in text.splitlines() if ":" in line)
    fields = {k.strip(): v.strip() for k, v in fields.items()}
    flags = set(fields.get("flags", "").split())
    lanes = 16 if "avx512f" in flags else 8 if {"avx2", "avx"} & flags else 4
    fma = 2 if "fma" in flags or "avx512f" in flags else 1
    cores = len(os.sched_getaffinity(0))
    ghz = float(fields.get("cpu MHz", "nan")) / 1000
    per_cycle = lanes * fma * FMA_UNITS
    return {"cores": cores, "ghz": ghz, "lanes": lanes, "flops_per_cycle": per_cycle, "gflops": cores * ghz * per_cycle,
            "how": f"{cores} cores x {ghz:.3f} GHz (cpu MHz) x {lanes} float32 lanes x {fma} (FMA) x {FMA_UNITS} "
                   f"FMA units per core (assumed)"}


def conv_flops_per_image(net: nn.Module, example: torch.Tensor) -> float:
    """2 x multiply-adds of every convolution and linear layer for one image of example's shape
    (batch norm, pooling and ReLU add under 1% to Inception's and are left out)."""
    total = []

    def count(module, inputs, output):
        if isinstance(module, nn.Conv2d):
            k = module.in_channels // module.groups * module.kernel_size[0] * module.kernel_size[1]
        else:
            k = module.in_features
        total.append(2 * output[0].numel() * k)

    hooks = [m.register_forward_hook(count) for m in net.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    try:
        with torch.inference_mode():
            net(example[:1])
    finally:
        for h in hooks:
            h.remove()
    return float(sum(total))
