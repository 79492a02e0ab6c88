"""The run's scale beside its verdicts, and whether the curves that decide them had levelled off.

A verdict from a narrow network trained a few epochs, scored with a stand-in metric, says what holds
at that budget; report.md carries the scale next to the verdicts (it travels alone) and words a
verdict "... at this budget" where a model it rests on was still improving at the run's last epoch.

Levelled off: the deciding metric (from a calibration run, calibration/curve.csv, where it scored the
model beyond the run's epochs) improved by less than LEVELLED of its value over the next scored
epochs; where the calibration run ends at the run's last epoch, by less than LEVELLED in its last
scored step; without either, the training reconstruction MSE (every trial's metrics.csv, mean over
seeds) improved by less than LEVELLED in the run's last epoch.
"""
from dataclasses import dataclass

from reports.history_figures import calibration_curves, histories
from reports.rundir import Run
from svae.backbone import BackboneConfig
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
    """model -> Levelling, for the models with a calibration curve or a training history."""
    epochs = run.config.get("settings", {}).get(dataset, {}).get("epochs")
    sign = 1 if run.higher_is_better(run.deciding_metric) else -1
    found = {}
    for model, (xs, values) in calibration_curves(run, dataset).items():
        at = [i for i, x in enumerate(xs) if epochs is None or x <= epochs]
        if at and at[-1] + 1 < len(xs):  # scored beyond the run's last epoch
            gain, when = later_gain(values, at[-1], sign), f"after epoch {xs[at[-1]]}"
        elif len(at) > 1 and xs[at[-1]] == epochs:  # ends at the run's last epoch: its last step
            gain = sign * (values[at[-1]] - values[at[-2]]) / abs(values[at[-2]])
            when = f"from epoch {xs[at[-2]]} to {xs[at[-1]]}"
        else:
            continue
        found[model] = Levelling(model, gain < LEVELLED, f"{run.label(model)}'s {run.metric} "
                                 f"{'still improved' if gain >= LEVELLED else 'changed'} by {gain:.0%} {when} "
                                 "in the calibration run")
    for model, history in histories(run, dataset).items():
        if model in found or "recon_mse" not in history.columns:
            continue
        mean = history.groupby("epoch")["recon_mse"].mean()
        if len(mean) < 2:
            continue
        gain = (mean.iloc[-2] - mean.iloc[-1]) / mean.iloc[-2]
        found[model] = Levelling(model, gain < LEVELLED, f"{run.label(model)}'s training reconstruction MSE "
                                 f"fell {gain:.0%} in its last epoch")
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
