"""Metrics reach Ray Tune's loggers (CSV, TensorBoard) and, with --tracker mlflow, an MLflow file store."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

SMALL = ["--preset", "smoke", "--datasets", "synthetic", "--fid-samples", "200"]
# each trial's epochs: one; the two-stage VAE's second stage trains stage2_epoch_factor (2) times as many
STAGES = {"synthetic-vae-s0": ["main"], "synthetic-two-stage-s0": ["stage1", "stage2", "stage2"]}


@pytest.fixture(scope="module")
def tracked_sweep(tmp_path_factory):
    """Two one-epoch trials on synthetic data with the MLflow tracker, as users run it."""
    pytest.importorskip("mlflow")
    run_dir = tmp_path_factory.mktemp("tracked") / "run"
    out = subprocess.run([sys.executable, "-m", "bench.run", *SMALL, "--models", "vae", "two-stage", "--seeds", "1",
                          "--set", "epochs=1", "--tracker", "mlflow", "--out", str(run_dir)],
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


def test_mlflow_reports_run_holds_the_reports_and_figures_as_artifacts(tmp_path):
    pytest.importorskip("mlflow", reason="the mlflow extra is not installed: pip install -e '.[mlflow]'")
    from mlflow.tracking import MlflowClient

    from bench.tracking import REPORT_FILES, log_reports, mlflow_uri

    run_dir = tmp_path / "run"
    (run_dir / "figures").mkdir(parents=True)
    for name in REPORT_FILES:
        (run_dir / name).write_text(name)
    (run_dir / "figures" / "samples_mnist.png").write_bytes(b"\x89PNG grid")
    log_reports(run_dir, "none")
    assert not (run_dir / "mlflow").exists()  # no tracker: nothing logged
    log_reports(run_dir, "mlflow")
    client = MlflowClient(tracking_uri=mlflow_uri(run_dir))
    (run,) = client.search_runs([client.get_experiment_by_name("run").experiment_id])
    assert run.info.run_name == "reports" and run.info.status == "FINISHED"
    names = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert names == set(REPORT_FILES) | {"figures"}
    assert [a.path for a in client.list_artifacts(run.info.run_id, "figures")] == ["figures/samples_mnist.png"]
    local = client.download_artifacts(run.info.run_id, "figures/samples_mnist.png", str(tmp_path))
    assert Path(local).read_bytes() == b"\x89PNG grid"
