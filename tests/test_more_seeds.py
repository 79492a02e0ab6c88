"""`--resume --seeds N` with a larger N: seeds 0..N-1, the finished trials kept (bench/more_seeds.py)."""
import json
import subprocess
import sys

import pandas as pd
import pytest

from bench.more_seeds import grown_manifest, seeds_added
from bench.trial import TrialSpec
from svae.errors import HarnessError

SMALL = ["--preset", "smoke", "--datasets", "synthetic", "--fid-samples", "100", "--models", "vae", "rae",
         "--set", "epochs=1", "train_subset=300", "--no-reports"]  # the test reads results.csv and the trials


def test_more_seeds_on_resume_are_allowed_fewer_are_an_error_and_other_changes_stay_refused():
    old, more = {"seeds": 2}, {"seeds": 4}
    assert seeds_added("seeds", old, more, resume=True)
    assert not seeds_added("seeds", old, more, resume=False)  # a new sweep in the same --out: refused
    assert not seeds_added("models", old, more, resume=True)
    with pytest.raises(HarnessError, match="--seeds 1 is fewer than this sweep's 2; .* pass --seeds 2 or more"):
        seeds_added("seeds", old, {"seeds": 1}, resume=True)


def test_the_grown_manifest_keeps_the_old_grid_and_appends_the_new_seeds():
    grid = [TrialSpec("synthetic", m, s) for m in ("vae", "rae") for s in range(3)]
    def entry(s):
        return {"trial_id": s.trial_id, "dataset": s.dataset, "model": s.model, "seed": s.seed}
    old = {"config": {"seeds": 1, "seeds_list": [0], "storage": "ray"}, "grid": [entry(grid[0]), entry(grid[3])],
           "sessions": [{"wall_s": 1.0}]}
    grown = grown_manifest(old, {"seeds": 3}, grid, "elsewhere")
    assert grown["grid"][:2] == old["grid"] and sorted(t["trial_id"] for t in grown["grid"]) == \
        sorted(s.trial_id for s in grid)
    assert (grown["config"]["seeds"], grown["config"]["seeds_list"], grown["config"]["storage"]) == (3, [0, 1, 2],
                                                                                                    "elsewhere")
    assert grown["sessions"] == old["sessions"]
    same = grown_manifest(old, {"seeds": 1}, [grid[0], grid[3]], "ray")
    assert same == old


def run_cli(args):
    return subprocess.run([sys.executable, "-m", "bench.run", *args], capture_output=True, text=True, timeout=1800,
                          check=False)


@pytest.mark.slow
def test_adding_seeds_to_a_finished_sweep_keeps_its_finished_trials(tmp_path):
    run_dir = tmp_path / "run"
    first = run_cli([*SMALL, "--seeds", "1", "--out", str(run_dir)])
    assert first.returncode == 0, first.stderr[-3000:]
    kept = {p.relative_to(run_dir): p.read_bytes() for p in (run_dir / "trials").rglob("*") if p.is_file()}
    before = pd.read_csv(run_dir / "results.csv")

    more = run_cli([*SMALL, "--seeds", "2", "--out", str(run_dir), "--resume"])
    assert more.returncode == 0, more.stderr[-3000:]
    for path, content in kept.items():  # the finished trials: not retrained, not rewritten
        assert (run_dir / path).read_bytes() == content, path
    after = pd.read_csv(run_dir / "results.csv")
    assert set(after["seed"]) == {0, 1} and set(after["model"]) == {"vae", "rae"}
    old_rows = after[after["seed"] == 0].sort_values(["model", "sampler", "output", "metric"]).reset_index(drop=True)
    assert old_rows["value"].tolist() == \
        before.sort_values(["model", "sampler", "output", "metric"]).reset_index(drop=True)["value"].tolist()
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["config"]["seeds"] == 2 and len(manifest["grid"]) == 4 and len(manifest["sessions"]) == 2
    assert len(after) == 2 * len(before)
