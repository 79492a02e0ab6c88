import json
import math
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

import bench.run
import bench.rundir
from bench.models import MODELS
from svae.samplers import samplers_for

SMALL = ["--preset", "smoke", "--datasets", "synthetic", "--fid-samples", "200"]
# the small sweep's trials: one epoch on 256 images, since its tests read what the sweep writes, not how well it learns
SWEEP = [*SMALL, "--set", "epochs=1", "train_subset=256"]
OPTIONS = ["--datasets", "--seeds", "--models", "--preset", "--out", "--address", "--storage", "--cpus-per-trial",
           "--gpus-per-trial", "--max-concurrent", "--fid-samples", "--fid-weights", "--amp", "--data-root",
           "--download", "--resume", "--checkpoint-every", "--no-reports"]


def run_cli(args, **kwargs):
    return subprocess.run([sys.executable, "-m", "bench.run", *args], capture_output=True, text=True,
                          timeout=1800, **kwargs)


def test_help_lists_every_option_with_its_default():
    out = run_cli(["--help"])
    assert out.returncode == 0
    for option in OPTIONS:
        assert option in out.stdout
    assert "default: 5" in out.stdout and "svae" in out.stdout and "default: paper" in out.stdout


@pytest.mark.parametrize("args, message", [
    (["--datasets", "imagenet"], "unknown dataset 'imagenet'; choose from mnist"),
    (["--models", "gan"], "unknown model 'gan'; choose from svae"),
    (["--datasets"], "--datasets is empty"),
    (["--seeds", "0"], "--seeds must be at least 1"),
    (["--preset", "huge"], "unknown preset 'huge'"),
    (["--cpus-per-trial", "0"], "--cpus-per-trial must be positive"),
    (["--fid-samples", "501"], "larger than synthetic's test split (500 images)"),
    (["--address", "ray://10.0.0.1:10001"], "--address needs --storage"),
    (["--checkpoint-every", "-1"], "--checkpoint-every must be 0 or more seconds"),
])
def test_bad_input_is_rejected_before_ray_starts(args, message, tmp_path, monkeypatch, capsys):
    def no_ray(_args):
        raise AssertionError("Ray was started")

    monkeypatch.setattr(bench.run, "start_ray", no_ray)
    out = tmp_path / "run"
    code = bench.run.main([*SMALL, "--seeds", "1", "--out", str(out), *args])
    err = capsys.readouterr().err
    assert code == 2
    assert message in err and err.startswith("error: ") and err.count("\n") == 1
    assert not (out / "manifest.json").exists()


def test_the_kill_fault_is_refused_without_a_checkpoint_every_epoch(tmp_path, monkeypatch, capsys):
    # it kills a trial right after an epoch's checkpoint: with none at that epoch every retry would die
    monkeypatch.setenv("SVAE_BENCH_FAULT", "kill:synthetic-svae-s0:2")
    monkeypatch.setattr(bench.run, "start_ray", lambda _args: pytest.fail("Ray was started"))
    assert bench.run.main([*SMALL, "--seeds", "1", "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "needs --checkpoint-every 0" in err
    assert not (tmp_path / "run").exists()


def test_amp_flag_turns_on_the_presets_bf16_autocast_and_defines_the_sweep():
    on = bench.run.check_args(bench.run.parse_args([*SMALL, "--amp"]))
    off = bench.run.check_args(bench.run.parse_args(SMALL))
    assert on["settings"]["synthetic"].amp is True and off["settings"]["synthetic"].amp is False
    assert "amp" in bench.rundir.DEFINING and on["amp"] != off["amp"]


def read_results(run_dir: Path) -> pd.DataFrame:
    return pd.read_csv(run_dir / "results.csv")


FIGURES = ("fd_domain", "kd_domain", "precision", "recall", "density", "coverage")  # the smoke preset's


def expected_rows(seeds: int) -> int:
    """models x their samplers x their scored outputs x the figures x seeds, from the registries, and
    one memorisation row per model, sampler and seed (its x_hat)."""
    scored = len(FIGURES) * sum(len(samplers_for(name)) * len(entry.outputs) for name, entry in MODELS.items())
    return seeds * (scored + sum(len(samplers_for(name)) for name in MODELS))


@pytest.fixture(scope="module")
def small_sweep(tmp_path_factory):
    """Every registered model, two seeds, on synthetic data: the sweep as users run it, in a subprocess."""
    run_dir = tmp_path_factory.mktemp("sweep") / "run"
    started = time.time()
    out = run_cli([*SWEEP, "--seeds", "2", "--out", str(run_dir)])
    return run_dir, out, time.time() - started


def test_a_trial_checkpoints_at_each_stages_end_at_its_end_and_otherwise_at_most_every_interval():
    from bench.sweep import checkpoint_due
    epoch = {"epoch": 3, "stage_epochs": 10, "done": False}
    assert not checkpoint_due(epoch, seconds_since_last=299, every=300)
    assert checkpoint_due(epoch, seconds_since_last=300, every=300)
    assert checkpoint_due(epoch, seconds_since_last=0, every=0)  # --checkpoint-every 0: every epoch
    assert checkpoint_due({**epoch, "epoch": 10}, seconds_since_last=1, every=300)  # the stage's last epoch
    assert checkpoint_due({"done": True, "attempt_id": "a"}, seconds_since_last=1, every=300)  # the trial's end


def test_small_sweep_writes_a_complete_results_table(small_sweep):
    run_dir, out, _ = small_sweep
    assert out.returncode == 0, out.stderr[-3000:]
    table = read_results(run_dir)
    assert len(table) == expected_rows(2)
    assert set(table["model"]) == set(MODELS) and set(table["seed"]) == {0, 1}
    assert all(math.isfinite(v) and v >= 0 for v in table["value"])
    assert set(table["metric"]) == set(FIGURES) | {"nn_train_share"}  # fd_domain, never labelled FID
    assert set(table["extractor"]) - {"pixels"} == {"domain-synthetic-v3"}
    assert (table.loc[table["metric"] == "kd_domain", "settings"] == "subsets=100,subset_size=200,kernel=poly3").all()
    assert (table["n_samples"] == 200).all()
    svae = table[(table["model"] == "svae") & (table["sampler"] == "gmm")]
    assert sorted(svae["output"].unique()) == ["mix", "x1", "x2", "x_hat"]
    two_stage = table[table["model"] == "two-stage"]
    assert "second-stage" in set(two_stage["sampler"])
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert len(manifest["grid"]) == 2 * len(MODELS) and manifest["config"]["seeds"] == 2
    assert [m["name"] for m in manifest["registry"]["models"]] == list(MODELS)  # in registry order
    [session] = manifest["sessions"]
    assert session["wall_s"] > 0 and manifest["wall_time_s"] == session["wall_s"]
    assert manifest["sessions_unmeasured"] == 0
    for trial in manifest["grid"]:
        folder = run_dir / "trials" / trial["trial_id"]
        assert json.loads((folder / "status.json").read_text())["status"] == "finished"
        assert (folder / "metrics.csv").exists() and (folder / "samples" / "gmm.npz").exists()
    assert (run_dir / "report.md").exists() and (run_dir / "table.md").exists()


def test_progress_lines_and_quiet_console(small_sweep):
    run_dir, out, _ = small_sweep
    trials = 2 * len(MODELS)
    assert out.stdout.count("started ") >= trials and out.stdout.count("finished ") >= trials
    assert f"{trials}/{trials} trials done" in out.stdout
    assert "Trial status" not in out.stdout  # Ray's own tables stay out of the console
    assert (run_dir / "logs" / "driver.log").read_text().count("finished ") >= trials


def test_same_command_again_refuses_and_changes_nothing(small_sweep):
    run_dir, _, _ = small_sweep
    before = {p: p.read_bytes() for p in run_dir.glob("*.*")}
    out = run_cli([*SWEEP, "--seeds", "2", "--out", str(run_dir)])
    assert out.returncode == 2 and "pass --resume" in out.stderr
    out = run_cli([*SWEEP, "--seeds", "1", "--out", str(run_dir), "--resume"])  # more seeds are allowed, fewer not
    assert out.returncode == 2 and "--seeds 1 is fewer than this sweep's 2" in out.stderr
    out = run_cli([*SWEEP, "--seeds", "2", "--models", "vae", "--out", str(run_dir), "--resume"])
    assert out.returncode == 2 and "holds a different sweep (models:" in out.stderr
    assert {p: p.read_bytes() for p in run_dir.glob("*.*")} == before


def test_a_trial_runs_without_ray_and_a_finished_one_is_not_redone(tmp_path):
    from dataclasses import replace

    from bench.presets import settings_for
    from bench.trial import Evaluation, TrialSpec, run_trial

    settings = replace(settings_for("smoke", "synthetic"), epochs=1, train_subset=200, fid_samples=100)
    evaluation = Evaluation(fid_cache=str(tmp_path / "cache"))
    reports = []
    rows = run_trial(TrialSpec("synthetic", "svae", 0), settings, evaluation, tmp_path / "trial",
                     lambda metrics, folder: reports.append(metrics))
    assert [r["done"] for r in reports] == [False, True]  # one epoch checkpoint, then the final one
    assert {(r["sampler"], r["output"], r["metric"]) for r in rows} == {
        (s, o, m) for s in ("gmm", "prior", "recon") for o in ("x_hat", "x1", "x2", "mix") for m in FIGURES} | {
        (s, "x_hat", "nn_train_share") for s in ("gmm", "prior", "recon")}
    facts = json.loads((tmp_path / "trial" / "sampler_facts.json").read_text())
    assert {r["gmm_components"] for r in rows} == {facts["gmm_components"]}  # chosen on held-out likelihood
    scores = facts["gmm_heldout_loglik"]  # JSON: the counts are strings
    assert facts["gmm_components"] == int(max(scores, key=scores.get)) and "1" in scores
    assert {r["gamma_check"] for r in rows} == {None}  # the SVAE balances gamma, it does not learn it
    samples = np.load(tmp_path / "trial" / "samples" / "recon.npz")
    assert samples["sigma"].shape == (64, 1, 32, 32) and samples["original"].dtype == np.uint8
    orientation = json.loads((tmp_path / "trial" / "orientation.json").read_text())
    assert orientation["swapped"] == (orientation["mean_sigma"] < 0.5)  # x1 named by the fixed rule
    status = json.loads((tmp_path / "trial" / "status.json").read_text())
    final = torch.load(tmp_path / "trial" / "checkpoint-main.pt", weights_only=True)
    assert set(final) == {"model", "epoch", "history"}  # a finished trial keeps its weights, not its optimizer
    again = run_trial(TrialSpec("synthetic", "svae", 0), settings, evaluation, tmp_path / "trial",
                      lambda metrics, folder: reports.append(metrics))
    assert again == json.loads(json.dumps(rows)) and reports[-1]["attempt_id"] == status["attempt_id"]
