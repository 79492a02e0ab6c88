"""A run directory is untrusted input (users copy, share and download them): opening one runs none of
its code, --out adopts only a run directory, and a torn Ray state file does not stop a resume.
Issue 23, findings 1, 2 and 6; no Ray cluster is started here."""
import errno
import json
import pickle
import sys
from pathlib import Path
from typing import ClassVar

import pytest

import bench.run
import bench.sweep
from bench.sweep import SweepPlan, run_sweep
from bench.sweep_storage import EXPERIMENT, last_checkpoints
from bench.trial import Evaluation, TrialSpec

SMALL = ["--preset", "smoke", "--datasets", "synthetic", "--fid-samples", "200", "--seeds", "1"]


class Payload:
    """A pickle that, when loaded, writes a file: what a hostile tuner.pkl does (with a shell command)."""
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return exec, (f"open({str(self.marker)!r}, 'w').write('ran')",)


def plant_hostile_ray_state(experiment: Path, marker: Path) -> None:
    """Ray's saved state of an interrupted sweep, crafted: every pickle runs code, the searcher's state is
    torn (what a full disk left: finding 6), and one trial has checkpoints of two sessions."""
    experiment.mkdir(parents=True)
    for name in ("tuner.pkl", "trainable.pkl"):
        (experiment / name).write_bytes(pickle.dumps(Payload(marker)))
    (experiment / "experiment_state-2026-01-01_00-00-00.json").write_text(
        json.dumps({"trial_data": [[pickle.dumps(Payload(marker)).hex(), "{}"]]}))
    (experiment / "basic-variant-state-2026-01-01_00-00-00.json").write_text("")  # torn


def test_checkpoints_are_found_by_name_newest_session_first(tmp_path):
    storage = tmp_path / "ray"
    plant_hostile_ray_state(storage / EXPERIMENT, tmp_path / "ran")
    for folder in ("sweep/a/checkpoint_000002", "sweep/a/checkpoint_000010", "sweep/b/checkpoint_000007",
                   "sweep-resumed-20260102T000000-abcdef/b/checkpoint_000001",
                   "sweep-before-move-1234abcd/c/checkpoint_000003",  # set aside: not this storage's state
                   "sweep/d/not-a-checkpoint"):
        (storage / folder).mkdir(parents=True)
    found = last_checkpoints(str(storage), ["a", "b", "c", "d", "e"])
    assert found == {"a": f"{storage}/sweep/a/checkpoint_000010",  # numbers, not text: 10 after 2
                     "b": f"{storage}/sweep-resumed-20260102T000000-abcdef/b/checkpoint_000001"}
    assert not (tmp_path / "ran").exists()


class NoTraining(bench.sweep.tune.Tuner):
    """Ray's Tuner, restore included, except that a new one records its experiment and trains nothing."""
    started: ClassVar[list] = []

    def __init__(self, function, param_space, tune_config, run_config):
        self.started.append(run_config.name)

    def fit(self):
        return []


def test_resume_runs_no_pickle_of_the_run_directory_and_survives_a_torn_state_file(tmp_path, monkeypatch):
    run_dir, marker = tmp_path / "run", tmp_path / "ran"
    storage = run_dir / "ray"
    plant_hostile_ray_state(storage / EXPERIMENT, marker)
    (storage / EXPERIMENT / "synthetic-vae-s0" / "checkpoint_000003").mkdir(parents=True)
    monkeypatch.setattr(bench.sweep.tune, "Tuner", NoTraining)
    NoTraining.started.clear()
    grid = [TrialSpec("synthetic", "vae", 0), TrialSpec("synthetic", "vae", 1)]
    plan = SweepPlan(run_dir=run_dir, storage=str(storage), grid=grid, settings={}, evaluation=Evaluation(),
                     cpus_per_trial=1, gpus_per_trial=0, max_concurrent=None, resume=True)
    run_sweep(plan)
    assert not marker.exists()
    [experiment] = NoTraining.started
    assert experiment.startswith(f"{EXPERIMENT}-resumed-")  # a new experiment: the old state is left unread
    log = (run_dir / "logs" / "driver.log").read_text()
    assert "resuming 2 trials: 1 from their last checkpoint, 1 without one" in log


# ---------------------------------------------------------------- --out adopts only a run directory

def test_out_on_an_ordinary_folder_is_refused_and_its_files_untouched(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(bench.run, "start_ray", lambda _args: pytest.fail("Ray was started"))
    folder = tmp_path / "papers"
    (folder / "figures").mkdir(parents=True)
    files = {folder / "report.md": b"my report", folder / "results.csv": b"a,b\n1,2\n",
             folder / "figures" / "headline.png": b"\x89PNG my figure"}
    for path, data in files.items():
        path.write_bytes(data)
    for extra in ([], ["--dry-run"]):
        assert bench.run.main([*SMALL, "--out", str(folder), *extra]) == 2
        err = capsys.readouterr().err
        assert err.startswith("error: ") and err.count("\n") == 1
        assert "not a run directory" in err and "choose a new or empty folder for --out" in err
    assert {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()} == files


def test_out_on_a_file_is_refused(tmp_path, capsys):
    path = tmp_path / "notes.txt"
    path.write_text("mine")
    assert bench.run.main([*SMALL, "--out", str(path), "--dry-run"]) == 2
    assert "is a file, not a folder" in capsys.readouterr().err and path.read_text() == "mine"


# ---------------------------------------------------------------- file-system faults

def test_a_full_disk_is_one_line_with_the_cause_and_the_resume_command(tmp_path, monkeypatch, capsys):
    """Ray wraps the driver's own errors (a callback's write): the fault is found in the chain."""
    def disk_full(_args, _seams):
        try:
            raise OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "run" / "results.csv"))
        except OSError as e:
            raise RuntimeError("Tune callback failed") from e

    monkeypatch.setattr(bench.run, "run", disk_full)
    monkeypatch.setattr(sys, "argv", ["bench.run", *SMALL, "--out", str(tmp_path / "run")])
    assert bench.run.main(SMALL) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: the disk is full (") and "results.csv" in err and err.count("\n") == 1
    assert err.rstrip().endswith("--resume")


def test_other_errors_keep_their_traceback(monkeypatch):
    monkeypatch.setattr(bench.run, "run", lambda _args, _seams: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        bench.run.main(SMALL)


# ---------------------------------------------------------------- names that become paths

@pytest.mark.parametrize("entry", [
    {"trial_id": "../../outside", "dataset": "mnist", "model": "vae", "seed": 0},  # an id that is not its names'
    {"trial_id": "../x-vae-s0", "dataset": "../x", "model": "vae", "seed": 0},  # a dataset of no registry
    {"trial_id": "mnist-vae-s0", "dataset": "mnist", "model": "vae"},
])
def test_a_crafted_grid_entry_is_refused_before_rescore_touches_a_file(tmp_path, capsys, entry):
    import bench.rescore
    run_dir = tmp_path / "a" / "b" / "run"
    run_dir.mkdir(parents=True)
    (run_dir / "manifest.json").write_text(json.dumps({"config": {}, "grid": [entry]}))
    before = sorted(tmp_path.rglob("*"))
    assert bench.rescore.main([str(run_dir)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: manifest.json has a grid entry that is not a trial") and err.count("\n") == 1
    assert sorted(tmp_path.rglob("*")) == before
