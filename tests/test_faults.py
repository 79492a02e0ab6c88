"""Faults a sweep must survive. Each runs real sweeps on synthetic data: minutes, so marked slow."""
import json
import os
import signal
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import pandas as pd
import psutil
import pytest

from bench.rundir import TIME_FORMAT
from tests.process_tree import assert_all_gone
from tests.result_counts import assert_row_counts

pytestmark = pytest.mark.slow

ARGS = ["--preset", "smoke", "--datasets", "synthetic", "--fid-samples", "200", "--models", "svae", "vae",
        "--seeds", "2", "--checkpoint-every", "0",  # a checkpoint every epoch: retries resume mid-stage
        "--set", "train_subset=256",  # 8 steps an epoch: what these tests prove needs epochs, not learning
        "--no-reports"]  # rendered only where a test reads the reports (the failed trial's missing cell)
TIMING = ["train_seconds"]  # the only column allowed to differ between two runs of one sweep


def sweep(run_dir: Path, *extra, env=None, timeout=900):
    return subprocess.run([sys.executable, "-m", "bench.run", *ARGS, "--out", str(run_dir), *extra],
                          capture_output=True, text=True, timeout=timeout, env={**os.environ, **(env or {})})


def start_sweep(run_dir: Path, *extra, env=None):
    return subprocess.Popen([sys.executable, "-m", "bench.run", *ARGS, "--out", str(run_dir), *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, **(env or {})})


def results(run_dir: Path) -> pd.DataFrame:
    return pd.read_csv(run_dir / "results.csv").drop(columns=TIMING)


def statuses(run_dir: Path) -> dict:
    return {p.parent.name: json.loads(p.read_text()) for p in run_dir.glob("trials/*/status.json")}


def wait_until(condition, timeout=600, what="the condition"):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if condition():
            return
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("reference") / "run"
    out = sweep(run_dir)
    assert out.returncode == 0, out.stderr[-2000:]
    return results(run_dir)


def test_driver_sigkill_then_resume_equals_an_uninterrupted_sweep(tmp_path, uninterrupted):
    run_dir = tmp_path / "run"
    driver = start_sweep(run_dir)
    # Kill the driver (and only the driver) once a trial has finished and others have not.
    wait_until(lambda: any(s["status"] == "finished" for s in statuses(run_dir).values()), what="a finished trial")
    driver.send_signal(signal.SIGKILL)
    driver.wait()
    attempts = {t: s["attempt_id"] for t, s in statuses(run_dir).items() if s["status"] == "finished"}
    assert 0 < len(attempts) < 4

    out = sweep(run_dir, "--resume")
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    # Every trial draws a fresh attempt id when it trains; a finished trial that kept its id was not rerun.
    for trial_id, attempt in attempts.items():
        assert statuses(run_dir)[trial_id]["attempt_id"] == attempt, trial_id
    pd.testing.assert_frame_equal(results(run_dir), uninterrupted)
    assert not (run_dir / "report.md").exists() and f"python -m reports {run_dir}" in out.stdout  # --no-reports
    # the killed session's time is unknown, and the manifest says so; it counts up to its finished trial
    manifest = json.loads((run_dir / "manifest.json").read_text())
    killed, resumed = manifest["sessions"]
    assert killed["wall_s"] is None and killed["last_seen"] >= killed["started"] and resumed["wall_s"] > 0
    assert manifest["sessions_unmeasured"] == 1
    seen, started = (datetime.strptime(killed[k], TIME_FORMAT) for k in ("last_seen", "started"))
    assert manifest["wall_time_s"] == round(resumed["wall_s"] + (seen - started).total_seconds(), 1)
    assert seen > started  # a trial takes seconds to finish


def test_worker_killed_mid_training_is_retried_from_its_checkpoint(tmp_path, uninterrupted):
    run_dir = tmp_path / "run"
    out = sweep(run_dir, env={"SVAE_BENCH_FAULT": "kill:synthetic-svae-s0:2"})  # SIGKILL after epoch 2 of 3
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    assert "retrying synthetic-svae-s0 from its last checkpoint" in out.stdout
    history = pd.read_csv(run_dir / "trials" / "synthetic-svae-s0" / "metrics.csv")
    assert history["epoch"].tolist() == [1, 2, 3]  # epochs 1-2 restored, not retrained
    pd.testing.assert_frame_equal(results(run_dir), uninterrupted)


def test_non_finite_loss_fails_that_trial_only(tmp_path):
    run_dir = tmp_path / "run"
    out = sweep(run_dir, "--reports", env={"SVAE_BENCH_FAULT": "nan:synthetic-vae-s1"})
    assert out.returncode == 1
    assert "synthetic-vae-s1: failed" in out.stderr and "non-finite loss at epoch 1" in out.stderr
    assert out.stdout.count("retrying synthetic-vae-s1") == 2  # two retries, then it is given up
    table = results(run_dir)
    assert set(table["trial_id"]) == {"synthetic-svae-s0", "synthetic-svae-s1", "synthetic-vae-s0"}
    assert "to resume:" in out.stderr
    report = (run_dir / "report.md").read_text()
    assert "synthetic-vae-s1" in report.split("## Missing cells")[1]
    assert "(n=1)" in (run_dir / "table.md").read_text()  # the VAE cell holds one seed of two


def test_ctrl_c_saves_state_and_resume_completes(tmp_path, uninterrupted):
    run_dir = tmp_path / "run"
    driver = start_sweep(run_dir)
    wait_until(lambda: list(run_dir.glob("ray/sweep/*/checkpoint_*")), what="a first trial checkpoint")
    processes = psutil.Process(driver.pid).children(recursive=True)
    driver.send_signal(signal.SIGINT)
    output, _ = driver.communicate(timeout=300)
    assert driver.returncode == 1 and "Traceback" not in output, output[-2000:]
    assert "did not finish" in output and "to resume: python -m bench.run" in output, output[-2000:]
    assert output.split("to resume:")[1].strip().endswith("--resume")
    assert len(processes) > 2  # Ray's servers and the trial's worker were there, and none outlives the command
    assert_all_gone(processes)
    out = sweep(run_dir, "--resume")
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    pd.testing.assert_frame_equal(results(run_dir), uninterrupted)
    sessions = json.loads((run_dir / "manifest.json").read_text())["sessions"]
    assert len(sessions) == 2 and all(s["wall_s"] > 0 for s in sessions)  # Ctrl-C: that session's time counts


def test_lost_worker_node_reschedules_its_trials(tmp_path):
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0})  # trials run on workers only
    try:
        worker = cluster.add_node(num_cpus=2)
        run_dir = tmp_path / "run"
        driver = start_sweep(run_dir, "--address", cluster.address, "--storage", str(tmp_path / "storage"))
        wait_until(lambda: list((tmp_path / "storage").glob("sweep/*/checkpoint_*")), what="a first checkpoint")
        cluster.remove_node(worker)  # the node running the trials is gone
        cluster.add_node(num_cpus=2)
        output, _ = driver.communicate(timeout=900)
        assert driver.returncode == 0, output[-3000:]
        assert "retrying" in output
        assert_row_counts(run_dir / "results.csv", 2 * (12 + 3) * 6)  # x 6 smoke figures
    finally:
        cluster.shutdown()
