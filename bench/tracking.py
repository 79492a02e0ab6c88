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

`--tracker wandb` adds Ray's Weights & Biases callback, one W&B run per trial (named by its trial id,
its dataset, model and seed in the run's config), written offline under <out>/wandb unless the user
sets WANDB_MODE (online uploads; `wandb sync <out>/wandb/offline-run-*` uploads later), and a
"reports" run with the same files as an artifact and the figures as images. Both trackers may be
given at once.
"""
import importlib.util
import os
from pathlib import Path

from svae.errors import HarnessError

TRACKERS = ("none", "mlflow", "wandb")
EXTRAS = {"mlflow": "MLflow: pip install -e '.[mlflow]' (or mlflow-skinny)",
          "wandb": "Weights & Biases: pip install -e '.[wandb]'"}
REPORT_FILES = ("report.md", "claims.md", "table.md", "table.tex", "table.csv", "results.csv", "manifest.json")


def check_trackers(names: list) -> None:
    """Fail before anything runs on "none" beside a tracker, or when a tracker's package is missing."""
    if "none" in names and len(set(names)) > 1:
        raise HarnessError(f"--tracker none cannot be combined with {' '.join(n for n in names if n != 'none')}; "
                           "drop none")
    for name in names:
        if name in EXTRAS and importlib.util.find_spec(name) is None:
            raise HarnessError(f"--tracker {name} needs {EXTRAS[name]}, or drop it from --tracker")


def final_metrics(rows: list) -> dict:
    """A trial's scores as flat metrics, "<sampler>/<output>/<metric>" (e.g. gmm/x_hat/fid): one per row."""
    return {f"{r['sampler']}/{r['output']}/{r['metric']}": r["value"] for r in rows}


def mlflow_uri(run_dir: Path) -> str:
    return (Path(run_dir).resolve() / "mlflow").as_uri()


def tracker_callbacks(names: list, run_dir: Path, experiment: str) -> list:
    """The Ray Tune callbacks for the trackers ("none": Ray Tune's default loggers only)."""
    makers = {"mlflow": _mlflow_callback, "wandb": _wandb_callback}
    return [makers[name](run_dir, experiment) for name in dict.fromkeys(names) if name in makers]


def _wandb_mode() -> str:
    return os.environ.setdefault("WANDB_MODE", "offline")  # no account or network needed; the user's setting wins


def _wandb_callback(run_dir: Path, experiment: str):
    from ray.air.integrations.wandb import WandbLoggerCallback

    # W&B writes into <dir>/wandb/
    return WandbLoggerCallback(project=experiment, dir=str(Path(run_dir).resolve()), mode=_wandb_mode())


def _mlflow_callback(run_dir: Path, experiment: str):
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

    return TrialTaggedMLflowCallback(tracking_uri=mlflow_uri(run_dir), experiment_name=experiment, save_artifact=False)


def log_reports(run_dir: Path, trackers: list) -> None:
    """For each tracker: the run directory's reports and figures in a run named "reports" of the sweep's
    experiment or project (named after the run directory, as the trials' runs are)."""
    if "mlflow" in trackers:
        _mlflow_reports(Path(run_dir))
    if "wandb" in trackers:
        _wandb_reports(Path(run_dir))


def _report_files(run_dir: Path) -> list:
    return [run_dir / name for name in REPORT_FILES if (run_dir / name).is_file()]


def _wandb_reports(run_dir: Path) -> None:
    import wandb

    run = wandb.init(project=run_dir.name, name="reports", job_type="reports", dir=str(run_dir.resolve()),
                     mode=_wandb_mode())
    try:
        artifact = wandb.Artifact(f"{run_dir.name}-reports", type="reports")
        for file in _report_files(run_dir):
            artifact.add_file(str(file))
        figures = sorted((run_dir / "figures").glob("*.png"))
        for figure in figures:
            artifact.add_file(str(figure), name=f"figures/{figure.name}")
        run.log_artifact(artifact)
        run.log({f"figures/{f.stem}": wandb.Image(str(f)) for f in figures})
    finally:
        run.finish()


def _mlflow_reports(run_dir: Path) -> None:
    import mlflow

    os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
    client = mlflow.MlflowClient(tracking_uri=mlflow_uri(run_dir))
    experiment = client.get_experiment_by_name(run_dir.name)
    experiment_id = experiment.experiment_id if experiment else client.create_experiment(run_dir.name)
    run = client.create_run(experiment_id, run_name="reports", tags={"kind": "reports"})
    for file in _report_files(run_dir):
        client.log_artifact(run.info.run_id, str(file))
    if (run_dir / "figures").is_dir():
        client.log_artifacts(run.info.run_id, str(run_dir / "figures"), artifact_path="figures")
    client.set_terminated(run.info.run_id)
