"""Metrics to the tools people already use, through Ray Tune's loggers.

Every trial reports each epoch's training metrics and, at its end, every final score; Ray Tune's
default loggers write them to <storage>/sweep/<trial_id>/: a TensorBoard event file and result.json
hold all of them; progress.csv keeps the first result's columns, so only the per-epoch metrics.
`--tracker mlflow` adds Ray's own MLflow callback, which keeps one MLflow
run per trial, tagged with its dataset, model and seed, in a file store at <out>/mlflow: offline,
and readable without a server (MLflow 3 keeps that store in maintenance mode and asks for
MLFLOW_ALLOW_FILE_STORE=true, which this module sets for the driver). Once the reports are rendered,
`log_reports` adds one more run, "reports", holding report.md, claims.md, the tables and every
figure (the sample grids among them) as artifacts.
"""
import importlib.util
import os
from pathlib import Path

from svae.errors import HarnessError

TRACKERS = ("none", "mlflow")
REPORT_FILES = ("report.md", "claims.md", "table.md", "table.tex", "table.csv", "results.csv", "manifest.json")


def check_tracker(name: str) -> None:
    """Fail before anything runs when the tracker's package is missing."""
    if name == "mlflow" and importlib.util.find_spec("mlflow") is None:
        raise HarnessError("--tracker mlflow needs MLflow: pip install -e '.[mlflow]' (or mlflow-skinny), "
                           "or drop --tracker")


def final_metrics(rows: list) -> dict:
    """A trial's scores as flat metrics, "<sampler>/<output>/<metric>" (e.g. gmm/x_hat/fid): one per row."""
    return {f"{r['sampler']}/{r['output']}/{r['metric']}": r["value"] for r in rows}


def mlflow_uri(run_dir: Path) -> str:
    return (Path(run_dir).resolve() / "mlflow").as_uri()


def tracker_callbacks(name: str, run_dir: Path, experiment: str) -> list:
    """The Ray Tune callbacks for a tracker ("none": Ray Tune's default loggers only)."""
    if name != "mlflow":
        return []
    from ray.air.integrations.mlflow import MLflowLoggerCallback

    os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")

    class TrialTaggedMLflowCallback(MLflowLoggerCallback):
        """Ray's MLflow callback, with each trial's run tagged by its dataset, model and seed."""

        def log_trial_start(self, trial):
            shared, spec = self.tags, trial.config["trial"]
            self.tags = {**shared, "dataset": spec["dataset"], "model": spec["model"], "seed": str(spec["seed"])}
            try:
                super().log_trial_start(trial)
            finally:
                self.tags = shared

    return [TrialTaggedMLflowCallback(tracking_uri=mlflow_uri(run_dir), experiment_name=experiment,
                                      save_artifact=False)]


def log_reports(run_dir: Path, tracker: str) -> None:
    """With the MLflow tracker: the run directory's reports and figures as artifacts of a run named
    "reports" in the sweep's experiment (named after the run directory, as the trials' runs are)."""
    if tracker != "mlflow":
        return
    import mlflow

    os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
    run_dir = Path(run_dir)
    client = mlflow.MlflowClient(tracking_uri=mlflow_uri(run_dir))
    experiment = client.get_experiment_by_name(run_dir.name)
    experiment_id = experiment.experiment_id if experiment else client.create_experiment(run_dir.name)
    run = client.create_run(experiment_id, run_name="reports", tags={"kind": "reports"})
    for name in REPORT_FILES:
        if (run_dir / name).is_file():
            client.log_artifact(run.info.run_id, str(run_dir / name))
    if (run_dir / "figures").is_dir():
        client.log_artifacts(run.info.run_id, str(run_dir / "figures"), artifact_path="figures")
    client.set_terminated(run.info.run_id)
