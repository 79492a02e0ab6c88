"""GPUs per trial, per dataset (bench/resources.py): the flag's forms, its bad inputs, Ray's request."""
import pytest

import bench.cost.projection
import bench.dryrun
import bench.run
from bench.cost.projection import paper_plan
from bench.resources import describe, gpu_shares, trial_resources
from svae.errors import HarnessError

PAPER = ["mnist", "cifar10", "celeba"]


def test_one_number_applies_to_every_dataset_and_names_override_it():
    assert gpu_shares(None, PAPER) is None  # not given: decided once Ray knows the cluster
    assert gpu_shares(["0.5"], PAPER) == {"mnist": 0.5, "cifar10": 0.5, "celeba": 0.5}
    assert gpu_shares(["mnist=0.25", "cifar10=0.25", "celeba=1"], PAPER) == {"mnist": 0.25, "cifar10": 0.25,
                                                                             "celeba": 1.0}
    assert gpu_shares(["0.25", "celeba=1"], PAPER) == {"mnist": 0.25, "cifar10": 0.25, "celeba": 1.0}
    assert gpu_shares(["celeba=2", "0"], PAPER) == {"mnist": 0.0, "cifar10": 0.0, "celeba": 2.0}


@pytest.mark.parametrize("words, message", [
    (["mnist=0.25"], "gives no share for cifar10, celeba; add cifar10=GPUS"),
    (["mnist=x", "1"], "'x' is not a number"),
    (["svhn=1", "1"], "unknown dataset 'svhn'"),
    (["fashion-mnist=1", "1"], "fashion-mnist is not among --datasets (mnist, cifar10, celeba)"),
    (["mnist=1", "mnist=0.5", "1"], "names mnist twice"),
    (["1", "0.5"], "has 2 plain numbers (1, 0.5)"),
    (["celeba=1.5", "1"], "more than one GPU must be a whole number"),
    (["mnist=-1", "1"], "must be finite and not negative (got -1)"),
    ([], "--gpus-per-trial is empty")])
def test_bad_shares_are_refused_naming_the_fix(words, message):
    with pytest.raises(HarnessError) as e:
        gpu_shares(words, PAPER)
    assert message in str(e.value)


def test_describe_groups_the_datasets_by_share():
    assert describe({"mnist": 0.25, "cifar10": 0.25, "celeba": 1.0}) == "0.25 GPU (mnist, cifar10), 1 GPU (celeba)"
    assert describe({"mnist": 1.0, "celeba": 1.0}) == "1 GPU"
    assert describe({"mnist": 0.0}) == "no GPU"


def test_a_trial_asks_ray_for_its_datasets_share():
    shares = {"mnist": 0.25, "celeba": 1.0, "cifar10": 0.0}
    def request(dataset):
        return trial_resources({"trial": {"dataset": dataset}}, 2.0, shares).bundles
    assert request("mnist") == [{"CPU": 2.0, "GPU": 0.25}]
    assert request("celeba") == [{"CPU": 2.0, "GPU": 1.0}]
    assert request("cifar10") == [{"CPU": 2.0}]  # no GPU: Ray places it on any node with the CPUs


def test_the_dry_run_of_the_paper_grid_prints_the_packed_projection(tmp_path, monkeypatch, capsys):
    # the plan's counts without the probe (paper-size networks on CPUs take minutes); the shares pass through
    monkeypatch.setattr(bench.run, "make_plan", lambda grid, preset, settings, cpus, gpus, *a, **k:
                        paper_plan(list(settings), 5, gpus))
    monkeypatch.setattr(bench.run, "start_ray", lambda *a: pytest.fail("Ray was started"))
    monkeypatch.setattr(bench.dryrun, "missing_inputs", lambda *a: [])  # no paper data here
    common = ["--datasets", *PAPER, "--out", str(tmp_path / "run"), "--dry-run", "--gpus-per-trial"]
    assert bench.run.main([*common, "1"]) == 0
    whole = capsys.readouterr().out
    assert bench.run.main([*common, "mnist=0.25", "cifar10=0.25", "celeba=1"]) == 0
    packed = capsys.readouterr().out
    assert "projection on" in packed and "0.25 GPU (mnist, cifar10), 1 GPU (celeba) per trial" in packed

    def at_once(out, gpus):
        return int(out.split(f"  {gpus:4d} GPUs (")[1].split(" trials")[0])

    def busy(out, gpus):
        return float(out.split(f"  {gpus:4d} GPUs (")[1].split("), ")[1].split(" GPU hours")[0])
    assert at_once(whole, 32) == 32
    # 25 CelebA trials on a GPU each would leave 7 GPUs for 28 quarter-GPU trials: more than 32 at once
    assert 32 < at_once(packed, 32) <= 75
    assert at_once(packed, 8) > 8
    # the H200 measured 1.68x the throughput with four small trials on a GPU: fewer GPU hours busy
    assert busy(packed, 8) < busy(whole, 8)
    assert not (tmp_path / "run").exists()


def test_the_projection_command_takes_per_dataset_shares(capsys):
    assert bench.cost.projection.main(["--gpus-per-trial", "mnist=0.25", "cifar10=0.25", "celeba=1"]) == 0
    assert "0.25 GPU (mnist, cifar10), 1 GPU (celeba) per trial" in capsys.readouterr().out
