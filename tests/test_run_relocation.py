"""A run directory is self-contained: a copy resumes on its own and leaves the original as it was.
Also the data it was trained on: a resume on other files is refused. Real sweeps: marked slow."""
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from tests.process_tree import kill_process_tree
from tests.result_counts import assert_row_counts

ARGS = ["--preset", "smoke", "--datasets", "synthetic", "--fid-samples", "200", "--models", "vae", "--seeds", "2",
        "--max-concurrent", "1",  # one trial at a time: a kill after the first leaves the second unfinished
        "--checkpoint-every", "0",  # a checkpoint every epoch, as the lost-checkpoint race needs
        "--set", "train_subset=256",  # 8 steps an epoch: what these tests prove needs epochs, not learning
        "--no-reports"]  # these tests read results.csv and the trials' files: rendering is another test's


def start_sweep(run_dir: Path, *extra, env=None):
    return subprocess.Popen([sys.executable, "-m", "bench.run", *ARGS, "--out", str(run_dir), *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, **(env or {})})


def sweep(run_dir: Path, *extra, env=None):
    return subprocess.run([sys.executable, "-m", "bench.run", *ARGS, "--out", str(run_dir), *extra],
                          capture_output=True, text=True, timeout=1200, env={**os.environ, **(env or {})})


def finished(run_dir: Path) -> set:
    return {p.parent.name for p in run_dir.glob("trials/*/status.json")
            if json.loads(p.read_text())["status"] == "finished"}


def kill_after_first_trial(run_dir: Path, *extra, env=None):
    driver = start_sweep(run_dir, *extra, env=env)
    deadline = time.time() + 1200
    while not finished(run_dir) and time.time() < deadline and driver.poll() is None:
        time.sleep(0.5)
    assert driver.poll() is None, driver.communicate()[0][-3000:]  # ended on its own: say why
    kill_process_tree(driver.pid)
    driver.wait()
    assert len(finished(run_dir)) == 1


def assert_same_results(run_dir: Path, reference: Path) -> None:
    timing = ["train_seconds"]  # the only column allowed to differ between two runs of one sweep
    pd.testing.assert_frame_equal(pd.read_csv(run_dir / "results.csv").drop(columns=timing),
                                  pd.read_csv(reference / "results.csv").drop(columns=timing))


def snapshot(folder: Path) -> dict:
    return {p.relative_to(folder): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.slow
def test_a_copied_run_directory_resumes_alone_and_the_original_is_untouched(tmp_path, reference_sweep):
    original = tmp_path / "original"
    kill_after_first_trial(original)
    manifest = json.loads((original / "manifest.json").read_text())
    assert manifest["config"]["storage"] == "ray"  # inside the run directory: relative to it
    used = {k: v for k, v in manifest["config"].items() if k != "command"}  # the command is a record, not used
    assert str(original) not in json.dumps(used)
    copy = tmp_path / "copy"
    shutil.copytree(original, copy, symlinks=True)
    before = snapshot(original)

    out = sweep(copy, "--resume")
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    # Ray's restore would send the unfinished trial's checkpoints to the original's storage: not used
    assert "unfinished trials start again from their beginning" in out.stdout, out.stdout[-3000:]
    assert list((copy / "ray").glob("sweep-before-move-*/experiment_state-*.json"))  # kept, not deleted
    assert finished(copy) == {"synthetic-vae-s0", "synthetic-vae-s1"}
    assert_row_counts(copy / "results.csv", 2 * 3 * 6)  # vae: gmm, prior, recon x x_hat x 6 smoke figures
    assert_same_results(copy, reference_sweep)
    assert snapshot(original) == before  # not a byte of the original changed, nor a file added
    assert json.loads((copy / "ray" / "owner.json").read_text())["run_dir"] == str(copy)


@pytest.mark.slow
def test_external_storage_of_a_copy_is_refused_and_a_fresh_one_accepted(tmp_path):
    original, storage = tmp_path / "original", tmp_path / "shared"
    kill_after_first_trial(original, "--storage", str(storage))
    assert json.loads((original / "manifest.json").read_text())["config"]["storage"] == str(storage)
    copy = tmp_path / "copy"
    shutil.copytree(original, copy, symlinks=True)
    before = snapshot(storage)
    out = sweep(copy, "--resume")
    assert out.returncode == 2 and f"is a copy of {original}" in out.stderr, out.stderr
    assert snapshot(storage) == before
    out = sweep(copy, "--resume", "--storage", str(tmp_path / "fresh"))
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert snapshot(storage) == before and len(finished(copy)) == 2
    assert json.loads((copy / "manifest.json").read_text())["config"]["storage"] == str(tmp_path / "fresh")


def test_storage_inside_a_copied_run_directory_is_known_to_hold_ray_state_of_the_old_path(tmp_path):
    """choose_storage tells the sweep when Ray's saved state was written from another path (a copy
    or a move), and not when the run directory is where it was."""
    from bench.rundir import choose_storage
    old = {"run_id": "r1", "config": {"storage": "ray"}}
    for run_dir, owner_dir, elsewhere in ((tmp_path / "copy", tmp_path / "original", True),
                                          (tmp_path.resolve() / "same", tmp_path.resolve() / "same", False)):
        (run_dir / "ray").mkdir(parents=True)
        (run_dir / "ray" / "owner.json").write_text(json.dumps({"run_id": "r1", "run_dir": str(owner_dir)}))
        assert choose_storage(None, run_dir.resolve(), old) == (str(run_dir.resolve() / "ray"), elsewhere)


@pytest.mark.slow
def test_a_trial_whose_checkpoint_ray_lost_starts_again_and_the_resume_completes(tmp_path, reference_sweep):
    """Ray's snapshot of a killed sweep can name a checkpoint that num_to_keep=1 has since deleted
    (seen in the 75-trial simulation); Ray then cannot restore that trial. The resume must start it
    again from its beginning and finish with the same results as a sweep never killed."""
    run_dir = tmp_path / "run"
    driver = start_sweep(run_dir)
    deadline = time.time() + 1200
    while time.time() < deadline and driver.poll() is None and not (
            finished(run_dir) and list(run_dir.glob("ray/sweep/synthetic-vae-s1/checkpoint_*"))):
        time.sleep(0.2)
    assert driver.poll() is None, driver.communicate()[0][-3000:]
    kill_process_tree(driver.pid)  # its trial worker killed too: no checkpoint may follow the removal
    driver.wait()
    for checkpoint in run_dir.glob("ray/sweep/synthetic-vae-s1/checkpoint_*"):
        shutil.rmtree(checkpoint)  # what the race leaves: the snapshot names a checkpoint that is gone
    out = sweep(run_dir, "--resume")
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert "they start again from their beginning" in out.stdout, out.stdout[-3000:]
    assert finished(run_dir) == {"synthetic-vae-s0", "synthetic-vae-s1"}
    assert_same_results(run_dir, reference_sweep)
