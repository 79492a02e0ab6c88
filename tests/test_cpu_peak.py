"""The float32 peak from /proc/cpuinfo's text and the convolution FLOP count that bench.cost.perf fid
reports against."""
import os

import pytest
import torch
from torch import nn

from bench.cost.cpu_peak import conv_flops_per_image, fp32_peak


@pytest.mark.parametrize("flags, per_cycle", [("sse sse2 avx avx2 fma", 32), ("avx avx2 fma avx512f", 64),
                                              ("sse sse2", 8)])
def test_peak_is_cores_times_clock_times_lanes_fma_and_units(flags, per_cycle):
    peak = fp32_peak(f"processor\t: 0\ncpu MHz\t\t: 2500.000\nflags\t\t: {flags}\n")
    cores = len(os.sched_getaffinity(0))
    assert peak["flops_per_cycle"] == per_cycle
    assert peak["gflops"] == pytest.approx(cores * 2.5 * per_cycle)
    assert f"{cores} cores x 2.500 GHz" in peak["how"]


def test_flops_count_every_multiply_add_of_convolutions_and_linear_layers():
    net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 8, 1, groups=2), nn.Flatten(),
                        nn.Linear(8 * 5 * 5, 10))
    # 2 x (5x5x4 outputs x 3x3x3 inputs + 5x5x8 outputs x 2 inputs + 10 outputs x 200 inputs)
    assert conv_flops_per_image(net, torch.zeros(7, 3, 5, 5)) == 2 * (100 * 27 + 200 * 2 + 10 * 200)
