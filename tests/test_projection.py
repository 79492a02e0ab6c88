"""The GPU projection's arithmetic (bench/cost/projection.py) on hand-worked numbers, and its measured rates."""
from dataclasses import replace

import pytest
import torch

import bench.cost.projection
from bench.cost.gpus import GPU, RATES_DIR, Job, MeasuredGPU, Rates, TrialWork, counted_flops, settings_key
from bench.cost.projection import default_gpu, makespan, paper_plan, project
from bench.presets import settings_for


def whole(*seconds):
    return [(s, 1) for s in seconds]


def test_makespan_packs_the_longest_trials_first_onto_free_gpus():
    # GPUs: 10 | 10, then 10 -> 20 on the first, 5 -> 15 on the second
    assert makespan(whole(10, 10, 10, 5), 2) == (20, 2)
    # 7 | 5, 4 -> 9 on the second, 3 -> 10 on the first, 1 -> 10 on the second
    assert makespan(whole(1, 3, 4, 5, 7), 2) == (10, 2)
    assert makespan(whole(3, 4), 8) == (4, 2)  # more GPUs than trials: the longest trial


def test_makespan_packs_fractional_shares_onto_one_gpu_and_whole_ones_alone():
    # one GPU: the whole-GPU 10 s trial alone, then the half and two quarters together (8 s the longest)
    assert makespan([(10, 1), (8, 0.5), (6, 0.25), (4, 0.25)], 1) == (18, 1)
    # two GPUs: 10 s on the first; 8 s and 6 s share the second; at 6 s two quarter trials take the freed
    # half (to 10 s), at 8 s the last two (to 12 s)
    assert makespan([(10, 1), (8, 0.5), (6, 0.5)] + [(4, 0.25)] * 4, 2) == (12, 3)
    # a 2-GPU trial waits for two free GPUs: 5 | 3, then it runs from 5 s to 9 s
    assert makespan([(4, 2), (5, 1), (3, 1)], 2) == (9, 2)


def test_project_counts_wall_time_and_busy_and_held_gpu_hours():
    p = project([(10, 0.5)] * 4, gpus=2, overhead_seconds=2)
    assert p.slots == 4  # 2 GPUs / 0.5
    assert p.wall_seconds == 12  # four 12 s trials at once
    assert p.busy_gpu_hours == pytest.approx(4 * 12 * 0.5 / 3600)
    assert p.held_gpu_hours == pytest.approx(12 * 2 / 3600)
    p = project(whole(*[3600] * 10), gpus=8)
    assert p.wall_seconds == 7200 and p.busy_gpu_hours == 10 and p.held_gpu_hours == 16


def test_per_dataset_shares_pack_small_trials_four_to_a_gpu_beside_whole_gpu_ones():
    # 8 GPUs: 4 CelebA trials of 100 s on a GPU each; 16 MNIST trials of 40 s at a quarter share fill the
    # other 4 GPUs at once
    p = project([(100, 1)] * 4 + [(40, 0.25)] * 16, gpus=8)
    assert (p.slots, p.wall_seconds) == (20, 100)
    assert p.busy_gpu_hours == pytest.approx((4 * 100 + 16 * 40 * 0.25) / 3600)


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
    p = project(whole(10, 10, 10, 10), gpus=2, searches=[whole(5, 5, 5), whole(3)])
    assert p.search_wall_seconds == 13 and p.wall_seconds == 33
    assert p.busy_gpu_hours == pytest.approx((40 + 15 + 3) / 3600)
    assert p.held_gpu_hours == pytest.approx(33 * 2 / 3600)


def measured(packing=None) -> MeasuredGPU:
    return MeasuredGPU("test GPU", "hand-worked", {"mnist": settings_key(settings_for("paper", "mnist"))},
                       {("mnist", "two-stage"): Rates(train=(100.0, 1000.0), forward=50.0, features=25.0)},
                       packing or {})


def test_a_measured_gpu_costs_a_job_by_its_images_over_the_measured_rates():
    job = Job("mnist", "two-stage", settings_for("paper", "mnist"), stages=((10, 1000), (20, 1000)),
              forward_images=500, featurised=250)
    # 10 x 1000 / 100 + 20 x 1000 / 1000 + 500 / 50 + 250 / 25 = 100 + 20 + 10 + 10
    assert measured().seconds(job) == pytest.approx(140)
    # a quarter of the GPU: four times as long, less what packing four trials onto one GPU gained
    assert measured().seconds(job, gpus_per_trial=0.25) == pytest.approx(560)
    assert measured({"mnist": {4: 2.0}}).seconds(job, gpus_per_trial=0.25) == pytest.approx(280)
    assert measured({"mnist": {4: 2.0}}).seconds(job, gpus_per_trial=0.5) == pytest.approx(280)  # 2 not measured


def test_measured_rates_round_trip_through_their_file_and_a_bad_file_is_one_line(tmp_path, capsys):
    gpu = measured({"mnist": {4: 1.5}})
    gpu.save(tmp_path / "rates.json")
    assert MeasuredGPU.load(tmp_path / "rates.json") == gpu
    (tmp_path / "bad.json").write_text('{"name": "x"}')
    assert bench.cost.projection.main(["--rates", str(tmp_path / "bad.json")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "cannot read GPU rates" in err and "--measure" in err


def test_rates_hold_only_for_the_settings_they_were_measured_at(tmp_path, capsys):
    plan = paper_plan(["mnist"], 1, 1.0)
    gpu = measured()
    assert not gpu.covers(plan)  # one cell of five measured
    full = replace(gpu, rates={cell: Rates((100.0, 1000.0), 50.0, 25.0) for cell in plan.cells})
    assert full.covers(plan)
    mnist = plan.settings["mnist"]
    plan.settings["mnist"] = replace(mnist, model=replace(mnist.model, beta=1.0), lr=1e-3)  # loss weights, lr
    assert full.covers(plan)
    plan.settings["mnist"] = replace(mnist, batch_size=64)
    assert not full.covers(plan)
    full.save(tmp_path / "rates.json")
    assert bench.cost.projection.main(["--datasets", "cifar10", "--rates", str(tmp_path / "rates.json")]) == 2
    assert "measured at other settings" in capsys.readouterr().err


def test_the_committed_h200_rates_cost_the_paper_grid_and_the_counted_flops_stay_the_fallback(capsys):
    """bench/cost/rates holds the H200's measurement at the paper preset; if the preset changes, the
    projection falls back to counted FLOPs (and this test asks for a new measurement)."""
    plan = paper_plan(["mnist", "cifar10", "celeba"], 5, 1.0)
    gpu = default_gpu(plan)
    assert isinstance(gpu, MeasuredGPU) and "H200" in gpu.name, \
        f"re-measure on an H200: python -m bench.cost.projection --measure {RATES_DIR}/h200.json"
    assert all(r.forward > 0 and r.features > 0 and all(t > 0 for t in r.train) for r in gpu.rates.values())
    assert bench.cost.projection.main([]) == 0
    assert "measured on one NVIDIA H200" in capsys.readouterr().out
    smoke = replace(plan, settings={d: settings_for("smoke", d) for d in plan.settings})
    assert default_gpu(smoke) is bench.cost.projection.H200


@pytest.mark.parametrize("args, message", [(["--seeds", "0"], "--seeds must be from 1"),
                                           (["--seeds", "1000000000000"], "--seeds must be from 1 to 1,000,000"),
                                           (["--gpus-per-trial", "0"], "--gpus-per-trial must be above 0"),
                                           (["--gpus-per-trial", "1e300"], "--gpus-per-trial must be above 0"),
                                           (["--overhead-seconds", "nan"], "--overhead-seconds must be a finite"),
                                           (["--datasets", "imagenet"], "unknown dataset 'imagenet'")])
def test_bad_arguments_are_one_line_and_exit_2(args, message, capsys):
    assert bench.cost.projection.main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and message in err
