"""--resume with a corrected scoring setting: a sweep whose trials trained and then failed while
scoring or sampling (a GMM that cannot be fitted, a reference too small) keeps its trained weights.

The settings below never reach a trial's weights: they act after its last epoch, or in the scores a
trial takes during training (Settings.curve_every, bench/trial.py CurveScores), which leave its
weights as they were. A resumed sweep may change them, so long as no trial has finished with the old
ones (its figures would not be comparable with the rest; re-score those with bench.rescore instead).
A trial resumed mid-training keeps the scores its earlier epochs took with the old setting; after a
changed fid_backbone they sit in another column (x_hat_fd_domain beside x_hat_fid), and the reports
draw the deciding metric's. Ray restores each failed trial
from its last checkpoint, which holds every epoch, so the trial goes straight to sampling and
scoring with the corrected setting (bench/sweep.py trainable: the settings come from the driver on
every start).
"""
from pathlib import Path

from svae.errors import HarnessError
from svae.io import read_status

# bench.run's defining config keys, and --set keys, that act only after training
SCORING_CONFIG = ("fid_samples", "fid_backbone", "gmm_fit_on", "reference_split")
SCORING_SETTINGS = ("fid_samples", "fid_backbone", "metrics", "grid_samples", "gmm.components", "gmm.covariance",
                    "gmm.max_iter", "gmm.fit_on", "gmm.fit_n", "curve_every", "curve_samples")


def training_part(overrides: dict) -> dict:
    """The --set overrides that reach the weights."""
    return {k: v for k, v in (overrides or {}).items() if k not in SCORING_SETTINGS}


def scoring_only(changed: list, old: dict, new: dict) -> bool:
    """Whether every changed defining key (old: the manifest's config, new: this command's) acts only
    after training."""
    return all(key in SCORING_CONFIG or
               (key == "overrides" and training_part(old.get("overrides")) == training_part(new.get("overrides")))
               for key in changed)


def finished_trials(run_dir: Path, grid: list) -> list:
    """The trial ids of the manifest's grid that have finished."""
    return [e["trial_id"] for e in grid if isinstance(e, dict) and "trial_id" in e
            and (read_status(run_dir / "trials" / str(e["trial_id"])) or {}).get("status") == "finished"]


def corrected_sweep(run_dir: Path, manifest: dict, config: dict, changed: list) -> dict:
    """The manifest of a sweep resumed with corrected scoring settings: its config holds the new values
    (the protocol follows in bench.run); refused once a trial has finished with the old ones."""
    from bench.trial import settings_json
    finished = finished_trials(run_dir, manifest.get("grid") or [])
    if finished:
        raise HarnessError(f"{run_dir}: {len(finished)} trials (first: {finished[0]}) finished with the recorded "
                           f"{', '.join(changed)}; keep them for this --resume, and re-score the finished run with "
                           f"python -m bench.rescore {run_dir} (or start a new sweep in another --out)")
    new = {k: config[k] for k in changed}
    settings = {d: settings_json(s) for d, s in config["settings"].items()}
    return {**manifest, "config": {**manifest["config"], **new, "settings": settings}}
