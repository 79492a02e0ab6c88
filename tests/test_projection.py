"""The GPU projection's arithmetic (bench/projection.py) on hand-worked numbers."""
import pytest
import torch

from bench.projection import GPU, TrialWork, counted_flops, makespan, project


def test_makespan_packs_the_longest_trials_first_onto_free_slots():
    # slots: 10 | 10, then 10 -> 20 on the first, 5 -> 15 on the second
    assert makespan([10, 10, 10, 5], 2) == 20
    # 7 | 5, 4 -> 9 on the second, 3 -> 10 on the first, 1 -> 10 on the second
    assert makespan([1, 3, 4, 5, 7], 2) == 10
    assert makespan([3, 4], 8) == 4  # more slots than trials: the longest trial


def test_project_counts_wall_time_and_busy_and_held_gpu_hours():
    p = project([10] * 4, gpus=2, gpus_per_trial=0.5, overhead_seconds=2)
    assert p.slots == 4  # 2 GPUs / 0.5
    assert p.wall_seconds == 12  # four 12 s trials at once
    assert p.busy_gpu_hours == pytest.approx(4 * 12 * 0.5 / 3600)
    assert p.held_gpu_hours == pytest.approx(12 * 2 / 3600)
    p = project([3600] * 10, gpus=8, gpus_per_trial=1)
    assert p.wall_seconds == 7200 and p.busy_gpu_hours == 10 and p.held_gpu_hours == 16


def test_trial_seconds_are_its_flops_over_the_gpus_effective_rate():
    gpu = GPU("test", peak_flops=1e13, utilisation=0.3, source="hand-worked")
    work = TrialWork(train_flops=4e12, sample_flops=1.5e12, score_flops=0.5e12)
    assert work.seconds(gpu) == pytest.approx(6e12 / 3e12)  # 2 s
    assert work.seconds(gpu, gpus_per_trial=0.25) == pytest.approx(8)  # a quarter of the GPU


def test_counted_flops_of_a_linear_layer_is_two_multiply_adds_per_weight_and_row():
    layer = torch.nn.Linear(3, 4, bias=False)
    assert counted_flops(lambda: layer(torch.rand(2, 3))) == 2 * 2 * 3 * 4


def test_searches_run_one_after_another_before_the_grid_on_the_same_slots():
    # 2 slots: search one (5, 5, 5) takes 10 s, search two (3) 3 s, then the grid (10 x 4) 20 s.
    p = project([10] * 4, gpus=2, gpus_per_trial=1, searches=[[5, 5, 5], [3]])
    assert p.search_wall_seconds == 13 and p.wall_seconds == 33
    assert p.busy_gpu_hours == pytest.approx((40 + 15 + 3) / 3600)
    assert p.held_gpu_hours == pytest.approx(33 * 2 / 3600)
