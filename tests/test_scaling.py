"""The paper grid (75 trials) on a simulated 4-node, 32-GPU Ray cluster, with a stand-in for every
trial's training and scoring (bench/cost/simulate.py). Each trial asks for 4 GPUs, so 8 run at once,
two per node: every process a trial starts costs seconds of the two cores' time (Ray's worker and the
harness's imports), and 32 at once measured the cores more than the harness. Minutes: marked slow."""
import json

import pandas as pd
import pytest

from bench.models import MODELS
from bench.cost.simulate import GPUS_PER_NODE, NODES, PAPER_DATASETS, measure
from svae.samplers import samplers_for

pytestmark = pytest.mark.slow

SEEDS = 5
TRIALS = len(PAPER_DATASETS) * len(MODELS) * SEEDS  # 75
GPUS_PER_TRIAL = 4.0  # 8 trials at once on the 32 GPUs, two per node


def expected_rows() -> int:
    """datasets x seeds x every model's samplers x scored outputs, from the registries."""
    return len(PAPER_DATASETS) * SEEDS * sum(len(samplers_for(m)) * len(e.outputs) for m, e in MODELS.items())


def test_paper_grid_on_a_simulated_cluster_killed_at_half_resumes_without_rerunning_finished_trials(tmp_path):
    """One 75-trial sweep, end to end: the driver is SIGKILLed with half the grid finished and --resume
    completes it (one cluster, one grid: the uninterrupted case adds nothing the resumed one lacks)."""
    figures = measure(tmp_path, seeds=SEEDS, gpus=GPUS_PER_TRIAL, seconds=2, checkpoint_bytes=100_000,
                      kill_at_half=True)
    print(json.dumps({k: v for k, v in figures.items() if k not in ("utilisation_series", "output_tail")}))
    assert figures["returncode"] == 0, figures["output_tail"]
    assert figures["trials"] == TRIALS and figures["finished"] == TRIALS
    assert TRIALS // 2 <= figures["killed_with_finished"] < TRIALS
    assert figures["rerun_after_resume"] == 0  # every finished trial kept its attempt id
    results = pd.read_csv(tmp_path / "run" / "results.csv")
    assert len(results) == expected_rows() and results["trial_id"].nunique() == TRIALS
    assert results.groupby(["dataset", "model"])["seed"].nunique().eq(SEEDS).all()
    assert len(results.groupby(["dataset", "model"])) == len(PAPER_DATASETS) * len(MODELS)
    for name in ("report.md", "table.md", "claims.md"):
        assert (tmp_path / "run" / name).exists(), name
    # The resumed driver ran trials on several nodes at once (more than one node's trials). How many of
    # the 8 slots fill at the peak depends on how fast the workers start here: not asserted.
    assert figures["slots"] == 8
    assert figures["utilisation_peak"] > (GPUS_PER_NODE / GPUS_PER_TRIAL) / figures["slots"]
    # the head has CPUs but no GPU: trials reported only from the GPU nodes' addresses, each node some
    assert set(figures["trials_per_node_ip"]) == {f"127.0.0.{2 + i}" for i in range(NODES)}


def test_per_dataset_gpu_shares_pack_small_trials_and_the_cpu_only_head_gets_no_gpu_trial(tmp_path):
    """15 trials on 2 nodes of 2 logical GPUs beside a CPU-only head: a quarter GPU for MNIST and CIFAR-10
    trials, a whole one for CelebA's (bench/resources.py)."""
    shares = {"mnist": 0.25, "cifar10": 0.25, "celeba": 1.0}
    figures = measure(tmp_path, seeds=1, gpus=shares, seconds=4, checkpoint_bytes=100_000, kill_at_half=False,
                      nodes=2, gpus_per_node=2)
    print(json.dumps({k: v for k, v in figures.items() if k not in ("utilisation_series", "output_tail")}))
    assert figures["returncode"] == 0, figures["output_tail"]
    assert figures["finished"] == len(PAPER_DATASETS) * len(MODELS)
    assert "--gpus-per-trial mnist=0.25 cifar10=0.25 celeba=1" in " ".join(figures["command"])
    # 4 GPUs: 10 quarter-GPU trials fill two and a half, a CelebA trial takes the fourth whole: 11 at once
    assert figures["slots"] == 11
    assert max(figures["utilisation_series"]) > 4  # more trials at once than GPUs: packed
    ran = figures["trials_per_node_ip"]
    assert set(ran) == {"127.0.0.2", "127.0.0.3"}, ran  # never the head's address
