"""Metrics reach Ray Tune's loggers (CSV, TensorBoard) and, with --tracker mlflow wandb, an MLflow file store
and offline Weights & Biases runs."""
import json
import os
import subprocess
import sys
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from tests.wandb_records import offline_runs

SMALL = ["--preset", "smoke", "--datasets", "synthetic", "--fid-samples", "200"]
# each trial's epochs: one; the two-stage VAE's second stage trains stage2_epoch_factor (2) times as many
STAGES = {"synthetic-vae-s0": ["main"], "synthetic-two-stage-s0": ["stage1", "stage2", "stage2"]}


@pytest.fixture(scope="module")
def tracked_sweep(tmp_path_factory):
    """Two one-epoch trials on synthetic data with both trackers, as users run them."""
    pytest.importorskip("mlflow", reason="the mlflow extra is not installed: pip install -e '.[mlflow]'")
    pytest.importorskip("wandb", reason="the wandb extra is not installed: pip install -e '.[wandb]'")
    run_dir = tmp_path_factory.mktemp("tracked") / "run"
    out = subprocess.run([sys.executable, "-m", "bench.run", *SMALL, "--models", "vae", "two-stage", "--seeds", "1",
                          "--set", "epochs=1", "--tracker", "mlflow", "wandb", "--out", str(run_dir)],
                         capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-3000:]
    return run_dir, out


def expected_scores(run_dir, trial_id):
    """results.csv's scores of a trial, under the names the trackers use."""
    table = pd.read_csv(run_dir / "results.csv")
    rows = table[table["trial_id"] == trial_id]
    return {f"{r.sampler}/{r.output}/{r.metric}": r.value for r in rows.itertuples()}


@pytest.mark.slow  # a two-trial sweep through Ray (about a minute)
def test_ray_tune_logs_hold_every_epoch_and_every_final_score(tracked_sweep):
    run_dir, out = tracked_sweep
    for trial_id, stages in STAGES.items():
        folder = run_dir / "ray" / "sweep" / trial_id
        # progress.csv: Ray's CSV logger keeps the columns of the first result, an epoch's metrics
        progress = pd.read_csv(folder / "progress.csv")
        epochs = progress.dropna(subset=["stage_epochs"])
        assert list(epochs["stage"]) == stages
        assert epochs["loss"].notna().all() and (epochs["images_per_s"] > 0).all()
        # result.json: every result whole, the last one with the scores
        final = json.loads((folder / "result.json").read_text().splitlines()[-1])
        for name, value in expected_scores(run_dir, trial_id).items():
            assert final[name] == pytest.approx(value)
        events = [p for p in folder.iterdir() if p.name.startswith("events.out.tfevents")]
        assert events and events[0].stat().st_size > 0
    assert "epoch 1/1: loss" in out.stdout


@pytest.mark.slow
def test_a_trial_that_learns_gamma_records_its_gamma_check_and_the_report_shows_it(tracked_sweep):
    from bench.gamma import AT_LIMIT, TRACKS

    run_dir, _ = tracked_sweep
    results = pd.read_csv(run_dir / "results.csv")
    (check,) = set(results.loc[results["model"] == "two-stage", "gamma_check"])
    assert check in (AT_LIMIT, TRACKS)
    assert results.loc[results["model"] == "vae", "gamma_check"].isna().all()  # the VAE's gamma is fixed
    memorisation = (run_dir / "report.md").read_text().split("## Memorisation")[1].split("\n## ")[0]
    (row,) = [line for line in memorisation.splitlines() if "| two-stage VAE |" in line]
    assert row.endswith(f"| {check} (1 of 1 seeds) |"), row


@pytest.mark.slow
def test_mlflow_store_has_one_run_per_trial_with_its_metrics_and_tags(tracked_sweep):
    from mlflow.tracking import MlflowClient

    run_dir, _ = tracked_sweep
    os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
    client = MlflowClient(tracking_uri=(run_dir / "mlflow").as_uri())
    experiment = client.get_experiment_by_name(run_dir.name)
    runs = client.search_runs([experiment.experiment_id])
    reports_runs = [r for r in runs if r.data.tags.get("kind") == "reports"]  # bench.tracking log_reports
    artifacts = {a.path for a in client.list_artifacts(reports_runs[0].info.run_id)}
    assert len(reports_runs) == 1 and "report.md" in artifacts
    runs = [r for r in runs if r not in reports_runs]
    assert sorted(r.data.tags["trial_name"] for r in runs) == sorted(STAGES)
    grid = {t["trial_id"]: t for t in json.loads((run_dir / "manifest.json").read_text())["grid"]}
    for run in runs:
        trial = grid[run.data.tags["trial_name"]]
        assert {k: run.data.tags[k] for k in ("dataset", "model", "seed")} == {
            "dataset": trial["dataset"], "model": trial["model"], "seed": str(trial["seed"])}
        losses = client.get_metric_history(run.info.run_id, "loss")
        assert len(losses) == len(STAGES[trial["trial_id"]])  # every epoch of every stage
        for name, value in expected_scores(run_dir, trial["trial_id"]).items():
            assert run.data.metrics[name] == pytest.approx(value)


@pytest.mark.slow
def test_wandb_offline_runs_hold_every_trials_epochs_scores_and_spec_and_the_reports(tracked_sweep):
    run_dir, _ = tracked_sweep
    runs = {run.name: run for run in offline_runs(run_dir / "wandb")}
    assert sorted(runs) == sorted([*STAGES, "reports"]) and {r.project for r in runs.values()} == {run_dir.name}
    grid = {t["trial_id"]: t for t in json.loads((run_dir / "manifest.json").read_text())["grid"]}
    for trial_id, stages in STAGES.items():
        run = runs[trial_id]
        assert {k: run.config["trial"][k] for k in ("dataset", "model", "seed")} == {
            k: grid[trial_id][k] for k in ("dataset", "model", "seed")}
        # every epoch of every stage (W&B keeps the numbers: the stage's name is in Ray's own logs)
        progress = pd.read_csv(run_dir / "ray" / "sweep" / trial_id / "progress.csv").dropna(subset=["stage_epochs"])
        assert [step["loss"] for step in run.history if "loss" in step] == pytest.approx(list(progress["loss"]))
        assert len(progress) == len(stages)
        for name, value in expected_scores(run_dir, trial_id).items():
            assert run.history[-1][name] == pytest.approx(value)
    (files,) = runs["reports"].artifacts.values()
    assert "report.md" in files and any(f.startswith("figures/samples_") for f in files)


def rendered_reports(tmp_path):
    """A run directory holding every report file (its name as its text) and one figure, an 8 x 8 PNG."""
    from bench.tracking import REPORT_FILES

    run_dir = tmp_path / "run"
    (run_dir / "figures").mkdir(parents=True)
    for name in REPORT_FILES:
        (run_dir / name).write_text(name)
    plt.imsave(run_dir / "figures" / "samples_mnist.png", np.zeros((8, 8)))
    return run_dir


def test_without_a_tracker_the_reports_go_nowhere(tmp_path):
    from bench.tracking import REPORT_FILES, log_reports

    run_dir = rendered_reports(tmp_path)
    log_reports(run_dir, ["none"])
    assert sorted(p.name for p in run_dir.iterdir()) == sorted(["figures", *REPORT_FILES])  # no mlflow/, wandb/


def test_wandb_reports_run_holds_the_reports_and_the_figures(tmp_path):
    pytest.importorskip("wandb", reason="the wandb extra is not installed: pip install -e '.[wandb]'")
    from bench.tracking import REPORT_FILES, log_reports

    run_dir = rendered_reports(tmp_path)
    log_reports(run_dir, ["wandb"])
    (run,) = offline_runs(run_dir / "wandb")
    assert (run.name, run.project) == ("reports", "run")
    assert {name: sorted(files) for name, files in run.artifacts.items()} == {
        "run-reports": sorted([*REPORT_FILES, "figures/samples_mnist.png"])}
    (step,) = run.history  # the figures as images, one step
    assert step["figures/samples_mnist/_type"] == "image-file" and step["figures/samples_mnist/width"] == 8


def test_mlflow_reports_run_holds_the_reports_and_figures_as_artifacts(tmp_path):
    pytest.importorskip("mlflow", reason="the mlflow extra is not installed: pip install -e '.[mlflow]'")
    from mlflow.tracking import MlflowClient

    from bench.tracking import REPORT_FILES, log_reports, mlflow_uri

    run_dir = rendered_reports(tmp_path)
    log_reports(run_dir, ["mlflow"])
    client = MlflowClient(tracking_uri=mlflow_uri(run_dir))
    (run,) = client.search_runs([client.get_experiment_by_name("run").experiment_id])
    assert run.info.run_name == "reports" and run.info.status == "FINISHED"
    names = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert names == set(REPORT_FILES) | {"figures"}
    assert [a.path for a in client.list_artifacts(run.info.run_id, "figures")] == ["figures/samples_mnist.png"]
    local = client.download_artifacts(run.info.run_id, "figures/samples_mnist.png", str(tmp_path))
    assert Path(local).read_bytes() == (run_dir / "figures" / "samples_mnist.png").read_bytes()
