"""Figures over epochs: quality against epochs (every model and seed), the quantities that compare
across models (reconstruction MSE, KL, gamma), and each model's own objective on its own axis.

Trials record their training history per epoch (metrics.csv); since Settings.curve_every they also
score their own sampler's outputs during training (bench/trial.py CurveScores: metrics.csv's
<output>_<metric> columns, a quicker score than the final one). A calibration run (bench/curve.py,
calibration/curve.csv) scores one seed per model every few epochs, beyond the run's epochs.
reports/budget.py reads the same histories to say whether a curve had levelled off.
"""
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from reports.plotting import fit_title, set_scale, value_scale
from reports.rundir import Run
from svae.contract import metric_label

# (metrics.csv column, title, scale): these compare across models; the loss does not (each model's
# likelihood and regulariser differ), so it gets objective_figure's panel per model.
CURVES = (("recon_mse", "reconstruction MSE", "log"), ("kl", "KL", "linear"), ("gamma", "gamma", "log"))
FIRST_STAGE = ("main", "stage1")  # the two-stage VAE's second stage trains another network
MARKERS, DASHES = ("o", "s", "^", "D", "v", "P"), ("-", "--", "-.", ":")


def histories(run: Run, dataset: str, stages=FIRST_STAGE) -> dict:
    """model -> its trials' metrics.csv rows of `stages` (None: all), a seed column added; models
    without any left out."""
    found = {}
    for model in run.models:
        frames = [m.assign(seed=seed) for seed, m in ((s, run.metrics(t)) for s, t in run.trials(dataset, model))
                  if m is not None]
        if frames:
            history = pd.concat(frames)
            found[model] = history if stages is None else history[history["stage"].isin(stages)]
    return found


def quality_curves(run: Run, dataset: str) -> tuple:
    """(metric, model -> its trials' scored epochs as metrics.csv rows with a seed column): the trials'
    own quality against epochs (x_hat_<metric>, the run's deciding metric first where several); (None,
    {}) for trials that did not score during training."""
    found = histories(run, dataset, stages=None)
    columns = sorted({c for h in found.values() for c in h.columns if c.startswith("x_hat_")},
                     key=lambda c: (c != f"x_hat_{run.deciding_metric}", c))
    if not columns:
        return None, {}
    column = columns[0]
    curves = {m: h[h[column].notna()] for m, h in found.items() if column in h.columns and h[column].notna().any()}
    return column.removeprefix("x_hat_"), curves


def curve_label(run: Run, model: str, rows) -> str:
    """A model's name in a quality-against-epochs legend; the two-stage VAE scores its second stage's epochs."""
    stages = set(rows["stage"])
    return run.label(model) + ("" if stages <= set(FIRST_STAGE) else f" (its {', '.join(sorted(stages))}'s epochs)")


def calibration_curves(run: Run, dataset: str) -> dict:
    """model -> (epochs, values) of the deciding metric at its own sampler's x_hat, from the calibration
    run; {} without one. The calibration file holds one dataset: the run's first."""
    curve = run.calibration()
    if curve is None or dataset != run.datasets[0]:
        return {}
    rows = curve[(curve["metric"] == run.deciding_metric) & (curve["output"] == "x_hat")]
    found = {}
    for model in run.models:
        own = rows[(rows["model"] == model) & (rows["sampler"] == run.compared_at(model))].sort_values("epoch")
        if len(own):
            found[model] = (own["epoch"].tolist(), own["value"].tolist())
    return found


def _style(i: int) -> dict:
    # Each later line thinner, with smaller markers: a line on top of another leaves it showing.
    return {"marker": MARKERS[i % len(MARKERS)], "linestyle": DASHES[i % len(DASHES)],
            "linewidth": max(3.0 - 0.6 * i, 1.0), "markersize": max(8.0 - 1.5 * i, 3.0)}


def _epoch_axis(ax) -> None:
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("epoch")


def epochs_figure(run: Run, dataset: str):
    """Quality against epochs, one line per model and seed: the trials' own scores where they scored
    during training, else their training reconstruction MSE; beside it the deciding metric by epoch of
    the calibration run where there is one, the run's epochs marked."""
    metric, curves = quality_curves(run, dataset)
    calibration = calibration_curves(run, dataset)
    if curves:
        found, column = curves, f"x_hat_{metric}"
        settings = run.config.get("settings", {}).get(dataset, {})
        samples = min(settings.get("curve_samples") or 0, settings.get("fid_samples") or 0)  # Settings.curve_n
        title = f"{metric_label(metric)} of x_hat by epoch, every seed" + (f" ({samples:,} samples)" if samples else "")
    else:
        found = {m: h for m, h in histories(run, dataset).items() if "recon_mse" in h.columns}
        column, title = "recon_mse", "reconstruction MSE (training), every seed"
    if not found:
        return None
    figure = Figure(figsize=(5.2 * (1 + bool(calibration)) + 2.2, 3.8), layout="constrained")
    axes = np.atleast_1d(figure.subplots(1, 1 + bool(calibration)))
    for i, (model, history) in enumerate(found.items()):
        for j, (_, rows) in enumerate(history.groupby("seed")):
            axes[0].plot(rows["epoch"], rows[column], marker=MARKERS[i % len(MARKERS)], color=f"C{i}", linewidth=1,
                         markersize=4, alpha=0.7, label=curve_label(run, model, history) if j == 0 else None)
    set_scale(axes[0], "y", value_scale(pd.concat(h[column] for h in found.values())))
    axes[0].set_title(title, fontsize=10)
    _epoch_axis(axes[0])
    if calibration:
        epochs = run.config.get("settings", {}).get(dataset, {}).get("epochs")
        for i, model in enumerate(found):
            if model in calibration:
                axes[1].plot(*calibration[model], color=f"C{i}", **_style(i))
        if epochs:
            axes[1].axvline(epochs, color="grey", linestyle=":", label=f"this run's {epochs} epochs")
        axes[1].set_title(f"{run.metric} by epoch (calibration run, one seed)", fontsize=10)
        _epoch_axis(axes[1])
    figure.legend(*axes[0].get_legend_handles_labels(), loc="outside right center", fontsize=8, frameon=False)
    missing = "" if curves or calibration else f"; the trials record no {run.metric} per epoch"
    fit_title(figure, f"{run.dataset_label(dataset)}: quality against epochs{missing}")
    return figure


def split_outputs_figure(run: Run, dataset: str):
    """The split model's outputs scored during training (x_hat, and x1 and x2 named as the tables name
    them: reports/rundir.py Run.metrics): the mean over seeds by epoch, min-max shaded; None without
    such scores."""
    metric, curves = quality_curves(run, dataset)
    rows = curves.get(run.split_model)
    if rows is None:
        return None
    figure = Figure(figsize=(7.6, 3.8), layout="constrained")
    ax = figure.subplots()
    for i, output in enumerate(o for o in run.outputs(run.split_model) if f"{o}_{metric}" in rows.columns):
        spread = rows.groupby("epoch")[f"{output}_{metric}"].agg(["mean", "min", "max"])
        line, = ax.plot(spread.index, spread["mean"], label=output, **_style(i))
        ax.fill_between(spread.index, spread["min"], spread["max"], color=line.get_color(), alpha=0.15)
    set_scale(ax, "y", value_scale([v for line in ax.lines for v in line.get_ydata()]))
    ax.set_ylabel(metric_label(metric) + (" (log scale)" if ax.get_yscale() == "log" else ""))
    _epoch_axis(ax)
    ax.legend(fontsize=8)
    fit_title(figure, f"{run.dataset_label(dataset)}: {run.label(run.split_model)}'s outputs during training "
              f"(mean over {rows['seed'].nunique()} seed(s), min-max shaded)")
    return figure


def training_curves(run: Run, dataset: str):
    """Reconstruction MSE, KL and gamma by epoch: one line per model (mean over seeds), min-max over
    seeds shaded; each model its own marker and dash, so lines that coincide stay visible."""
    found = histories(run, dataset)
    if not found:
        return None
    curves = [c for c in CURVES if any(c[0] in h.columns for h in found.values())]
    figure = Figure(figsize=(3.5 * len(curves), 3.6), layout="constrained")
    for ax, (column, name, scale) in zip(np.atleast_1d(figure.subplots(1, len(curves))), curves):
        for i, (model, history) in enumerate(found.items()):
            if column not in history.columns:
                continue
            # Per epoch over the seeds that reached it; pandas skips missing (NaN) values.
            spread = history.groupby("epoch")[column].agg(["mean", "min", "max"])
            line, = ax.plot(spread.index, spread["mean"], label=run.label(model), **_style(i))
            ax.fill_between(spread.index, spread["min"], spread["max"], color=line.get_color(), alpha=0.15)
        # A log scale needs positive values: the RAE has no KL.
        set_scale(ax, "y", scale if scale == "linear" or (ax.has_data() and ax.dataLim.ymin > 0) else "linear")
        _epoch_axis(ax)
        ax.set_title(name + (" (log scale)" if ax.get_yscale() == "log" else ""))
    figure.axes[0].legend(fontsize=8)
    fit_title(figure, f"{run.dataset_label(dataset)}: training (first stage for the two-stage VAE)")
    return figure


def objective_figure(run: Run, dataset: str):
    """Each model's training loss by epoch on its own axis, a line per seed; a model that trains two
    networks (the two-stage VAE) gets a panel per stage, since each stage has its own objective."""
    panels = [(model, stage, rows) for model, history in histories(run, dataset, stages=None).items()
              for stage, rows in history.groupby("stage", sort=False)]
    if not panels:
        return None
    figure = Figure(figsize=(2.7 * len(panels), 3.2), layout="constrained")
    for i, (ax, (model, stage, rows)) in enumerate(zip(np.atleast_1d(figure.subplots(1, len(panels))), panels)):
        for _, by_seed in rows.groupby("seed"):
            ax.plot(by_seed["epoch"], by_seed["loss"], color=f"C{i}", alpha=0.7, linewidth=1, marker=".")
        _epoch_axis(ax)
        staged = sum(1 for m, _, _ in panels if m == model) > 1
        ax.set_title(run.label(model) + (f" ({stage})" if staged else ""), fontsize=10)
    figure.axes[0].set_ylabel("training loss (its own objective)")
    fit_title(figure, f"{run.dataset_label(dataset)}: each model's objective, a line per seed; "
              "objectives differ, so compare shapes, not heights")
    return figure
