"""The run's scale beside its verdicts, and whether the curves that decide them had levelled off.

A verdict from a narrow network trained a few epochs, scored with a stand-in metric, says what holds
at that budget; report.md carries the scale next to the verdicts (it travels alone) and words a
verdict "... at this budget" where a model it rests on was still improving at the run's last epoch.

Levelled off, from the first of these evidences a model has:
1. a calibration run (calibration/curve.csv) that scored the model beyond the run's epochs: the
   deciding metric improved by less than LEVELLED of its value over the later scored epochs;
2. the trials' own scores during training (metrics.csv's x_hat_<metric>, mean over seeds): by less
   than LEVELLED in the last scored step;
3. a calibration run that ends at the run's last epoch: by less than LEVELLED in its last step;
4. the training reconstruction MSE (metrics.csv, mean over seeds): by less than LEVELLED in the last epoch.
"""
from dataclasses import dataclass

from reports.history_figures import FIRST_STAGE, calibration_curves, histories, quality_curves
from reports.rundir import Run
from svae.backbone import BackboneConfig
from svae.contract import metric_label
from svae.data import PAPER_DATASETS, SPECS

LEVELLED = 0.05  # a last step that improves the curve by less than this share: levelled off
PAPER_WIDTH = BackboneConfig().base_width  # the reference network's base width


@dataclass(frozen=True)
class Levelling:
    model: str
    levelled: bool
    evidence: str  # what the curve did, one clause


def scale_line(run: Run, dataset: str) -> str:
    """The settings that bound what a verdict can say: width, epochs, metric, dataset, seeds."""
    settings = run.config.get("settings", {}).get(dataset, {})
    width = settings.get("model", {}).get("backbone", {}).get("base_width")
    epochs = settings.get("epochs")
    spec = SPECS.get(dataset)
    parts = []
    if width is not None:
        parts.append(f"network base width {width} (the paper's {PAPER_WIDTH})")
    if epochs is not None:
        parts.append(f"{epochs} epochs" + (f" (the paper preset's {spec.epochs})" if spec else ""))
    metric = run.metric + ("" if run.is_fid else " (a stand-in, NOT FID)")
    parts += [f"scored with {metric}", f"{max(run.asked(dataset, m) for m in run.models)} seeds"]
    elsewhere = "" if dataset in PAPER_DATASETS else " (not one of the paper's datasets)"
    return f"Scale of this run on {run.dataset_label(dataset)}{elsewhere}: " + ", ".join(parts) + "."


def later_gain(values, i: int, sign: int) -> float:
    """How much the best of the values after position i improves on values[i], as a share of it
    (sign 1: higher is better, -1: lower)."""
    best = max(values[i + 1:], key=lambda v: sign * v)
    return sign * (best - values[i]) / abs(values[i])


def levelled_epoch(epochs, values, sign: int):
    """The first scored epoch that no later one improves on by LEVELLED or more: where the curve levels
    off; None where it was still improving at its second-last point."""
    return next((epochs[i] for i in range(len(epochs) - 1) if later_gain(values, i, sign) < LEVELLED), None)


def levelling(run: Run, dataset: str) -> dict:
    """model -> Levelling, for the models with any of the module's evidences, the first that applies."""
    found = {}
    for evidence in (calibration_beyond, trial_curves, calibration_last_step, training_mse):
        for model, level in evidence(run, dataset).items():
            found.setdefault(model, level)
    return found


def _run_epochs(run: Run, dataset: str):
    return run.config.get("settings", {}).get(dataset, {}).get("epochs")


def _sign(run: Run, metric: str) -> int:
    return 1 if run.higher_is_better(metric) else -1


def _last_step(run: Run, model: str, epochs: list, values: list, sign: int, what: str, where: str) -> Levelling:
    gain = sign * (values[-1] - values[-2]) / abs(values[-2])
    return Levelling(model, gain < LEVELLED, f"{run.label(model)}'s {what} {_moved(gain)} by {_share(gain)} from epoch "
                     f"{epochs[-2]} to {epochs[-1]}{where}")


def _share(gain: float) -> str:
    return f"{round(gain, 2) + 0.0:.0%}"  # + 0.0: a rounded -0.0 prints as 0%


def _moved(gain: float) -> str:
    return "still improved" if gain >= LEVELLED else "changed"


def _calibration_at_run_epochs(run: Run, dataset: str):
    """(model, epochs, values, positions of the epochs within the run's) of each calibration curve."""
    epochs = _run_epochs(run, dataset)
    for model, (xs, values) in calibration_curves(run, dataset).items():
        yield model, xs, values, [i for i, x in enumerate(xs) if epochs is None or x <= epochs]


def calibration_beyond(run: Run, dataset: str) -> dict:
    sign, found = _sign(run, run.deciding_metric), {}
    for model, xs, values, at in _calibration_at_run_epochs(run, dataset):
        if at and at[-1] + 1 < len(xs):
            gain = later_gain(values, at[-1], sign)
            found[model] = Levelling(model, gain < LEVELLED, f"{run.label(model)}'s {run.metric} {_moved(gain)} by "
                                     f"{_share(gain)} after epoch {xs[at[-1]]} in the calibration run")
    return found


def calibration_last_step(run: Run, dataset: str) -> dict:
    sign, epochs, found = _sign(run, run.deciding_metric), _run_epochs(run, dataset), {}
    for model, xs, values, at in _calibration_at_run_epochs(run, dataset):
        if len(at) > 1 and xs[at[-1]] == epochs:
            found[model] = _last_step(run, model, xs[:at[-1] + 1], values[:at[-1] + 1], sign, run.metric,
                                      " in the calibration run")
    return found


def trial_curves(run: Run, dataset: str) -> dict:
    """A model scored in a later stage only (the two-stage VAE's second) has levelled off where that
    curve and its first stage's training MSE both have."""
    metric, curves = quality_curves(run, dataset)
    first_stages, found = training_mse(run, dataset), {}
    for model, rows in curves.items():
        mean = rows.groupby("epoch")[f"x_hat_{metric}"].mean()
        if len(mean) < 2:
            continue
        later = not set(rows["stage"]) <= set(FIRST_STAGE)
        level = _last_step(run, model, list(mean.index), list(mean), _sign(run, metric),
                           f"{metric_label(metric)} of x_hat", " during training (the trials' own, mean over seeds"
                           + (f"; {', '.join(sorted(set(rows['stage'])))}'s epochs)" if later else ")"))
        first = first_stages.get(model)
        if first is not None and later:
            level = Levelling(model, level.levelled and first.levelled,
                              f"{level.evidence}, and in its first stage, {first.evidence}")
        found[model] = level
    return found


def training_mse(run: Run, dataset: str) -> dict:
    found = {}
    for model, history in histories(run, dataset).items():
        if "recon_mse" in history.columns:
            mean = history.groupby("epoch")["recon_mse"].mean()
            if len(mean) > 1:
                found[model] = _last_step(run, model, list(mean.index), list(mean), -1,
                                          "training reconstruction MSE", " (mean over seeds)")
    return found


def still_improving(run: Run, dataset: str, models) -> list:
    """The Levelling of those of `models` that had not levelled off, registry order."""
    found = levelling(run, dataset)
    return [found[m] for m in run.models if m in models and m in found and not found[m].levelled]


def rests_on(run: Run, claim: str) -> list:
    """The models a claim's verdict compares: all of them for the comparison with the baselines,
    else the split model alone."""
    return list(run.models) if "baseline" in claim else [run.split_model]


def budget_notes(run: Run, verdicts: list) -> tuple:
    """({(dataset, claim): " at this budget"} for verdicts that rest on a model still improving,
    [per dataset: its scale line and one sentence on the curves]) for report.md's verdict section."""
    suffixes, lines = {}, []
    for dataset in run.datasets:
        improving = still_improving(run, dataset, run.models)
        lines.append(scale_line(run, dataset))
        if improving:
            lines.append(f"The curves had not levelled off ({'; '.join(c.evidence for c in improving)}), "
                         "so a verdict resting on these models holds at this budget only: longer training "
                         "could change it.")
        else:
            lines.append("The deciding curves had levelled off by the run's last epoch (see the epochs figure).")
        names = {level.model for level in improving}
        for v in verdicts:
            # "too few seeds" says nothing the budget could change
            if v.dataset == dataset and names & set(rests_on(run, v.claim)) and not v.verdict.startswith("too few"):
                suffixes[dataset, v.claim] = " at this budget"
    return suffixes, lines
