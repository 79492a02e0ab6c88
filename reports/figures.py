"""Figures (figures/*.png and *.pdf): the headline, per-sampler bars, split decompositions, sample
grids and training curves.

Each plotting function returns a matplotlib Figure (tests read its axes); `render_figures` saves
them. Figures are built on matplotlib.figure.Figure, not pyplot, so no GUI backend or global state
is involved, and saved without timestamps so re-rendering gives the same bytes. Titles carry display
names from the manifest (never a path).
"""
import io

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from matplotlib.ticker import MaxNLocator

from reports.claims import HIGH_FREQUENCY, SYNTACTIC_SHARE, split_kind
from reports.headline import headline
from reports.rundir import Run
from reports.tables import row_label

GRID_COLUMNS = 8  # images per row of a sample grid
DECOMPOSITION = ("sigma", "x1", "x2", "x_hat")
# (metrics.csv column, title, scale): the reconstruction MSE compares across models (the loss's
# likelihood differs between them); losses and gamma span decades.
CURVES = (("recon_mse", "reconstruction MSE", "log"), ("loss", "loss", "log"), ("kl", "KL", "linear"),
          ("gamma", "gamma", "log"))
FIRST_STAGE = ("main", "stage1")  # the two-stage VAE's second stage trains another network
SPLIT_COLOUR, OTHER_COLOUR = "#e6550d", "#3182bd"
MARKERS, DASHES = ("o", "s", "^", "D", "v", "P"), ("-", "--", "-.", ":")
EQUATION = "x_hat = sigma * x1 + (1 - sigma) * x2"
SHARE_CAPTION = (f"High-frequency share: the part of sigma's spectral energy above {HIGH_FREQUENCY} cycles per "
                 f"pixel (wavelengths under {1 / HIGH_FREQUENCY:g} pixels), mean over these maps; "
                 f"{SYNTACTIC_SHARE} or more: a syntactic split (pixel-level), below: semantic (object parts).")
# No software name or dates in the files: identical inputs give identical bytes.
METADATA = {"png": {"Software": None}, "pdf": {"Creator": None, "Producer": None, "CreationDate": None}}


def render_figures(run: Run, write) -> list:
    """Save every figure through write(relative_path, bytes); returns the PNG paths, in order."""
    figures = [("headline", headline_figure(run))]
    finished = run.finished_ids()
    for dataset in run.datasets:
        figures.append((f"samples_{dataset}", sample_grid(run, dataset)))
        figures.append((f"fid_{dataset}", fid_bars(run, dataset)))
        for model in run.models:
            for seed, trial_id in run.trials(dataset, model):  # split models: every seed's decomposition
                if trial_id not in finished:
                    continue
                _, samples = run.generated(trial_id)
                if samples is not None and all(k in samples for k in DECOMPOSITION):
                    figures.append((f"split_{dataset}_{model}_s{seed}", decomposition_grid(
                        samples, f"{run.dataset_label(dataset)}, {run.label(model)} seed {seed}")))
        figures.append((f"curves_{dataset}", training_curves(run, dataset)))
    written = []
    for name, figure in figures:
        if figure is None:
            continue
        for fmt in ("png", "pdf"):
            buffer = io.BytesIO()
            figure.savefig(buffer, format=fmt, dpi=100, metadata=METADATA[fmt])
            write(f"figures/{name}.{fmt}", buffer.getvalue())
        written.append(f"figures/{name}.png")
    return written


def _better(run: Run) -> str:
    return f"{run.metric} ({'higher' if run.higher_is_better(run.deciding_metric) else 'lower'} is better)"


def headline_figure(run: Run):
    """A panel per dataset: each model at its own sampler, best on top; the split model's outputs in
    one colour; bars are means, error bars sample stds, dots the seeds."""
    panels = [(d, [e for e in headline(run, d) if e.n]) for d in run.datasets]
    panels = [(d, entries) for d, entries in panels if entries]
    if not panels:
        return None
    height = 1.2 + 0.4 * max(len(entries) for _, entries in panels)
    figure = Figure(figsize=(4.5 * len(panels), height), layout="constrained")
    for ax, (dataset, entries) in zip(figure.subplots(1, len(panels), squeeze=False)[0], panels):
        y = np.arange(len(entries))
        colours = [SPLIT_COLOUR if e.split else OTHER_COLOUR for e in entries]
        ax.barh(y, [e.mean for e in entries], xerr=[e.std or 0.0 for e in entries], capsize=3,
                color=colours, alpha=0.6, edgecolor=colours)
        for i, e in enumerate(entries):
            spread = np.linspace(-0.2, 0.2, e.n) if e.n > 1 else np.zeros(1)
            ax.plot(e.values, i + spread, "o", color="black", markersize=3)
        ax.set_yticks(y, [f"{e.label} ({e.sampler})" for e in entries])
        ax.invert_yaxis()  # the best on top
        ax.set_xlabel(_better(run))
        ax.set_title(run.dataset_label(dataset))
    split = run.split_model
    if split is not None and any(e.split for _, entries in panels for e in entries):
        figure.legend(handles=[Patch(color=SPLIT_COLOUR, alpha=0.6, label=f"{run.label(split)} outputs"),
                               Patch(color=OTHER_COLOUR, alpha=0.6, label="other models")],
                      loc="outside lower center", ncols=2, frameon=False)
    figure.suptitle("Headline: each model at its own sampler (sampler in brackets), best on top"
                    + ("" if run.is_fid else "; fd_domain, NOT FID"))
    return figure


def fid_bars(run: Run, dataset: str):
    """One panel per sampler on one shared scale: mean over seeds per model/output, sample-std error
    bars, seeds as dots."""
    panels = []
    for sampler in run.samplers:
        rows = [(row_label(run, m, o), list(run.seed_fids(sampler, dataset, m, o).values()))
                for m, o in run.rows(sampler)]
        rows = [(label, fids) for label, fids in rows if fids]
        if rows:
            panels.append((sampler, rows))
    if not panels:
        return None
    figure = Figure(figsize=(4 * len(panels), 4), layout="constrained")
    axes = figure.subplots(1, len(panels), squeeze=False, sharey=True)[0]
    axes[0].set_ylabel(_better(run))
    for ax, (sampler, rows) in zip(axes, panels):
        x = np.arange(len(rows))
        means = [np.mean(f) for _, f in rows]
        stds = [np.std(f, ddof=1) if len(f) > 1 else 0.0 for _, f in rows]
        ax.bar(x, means, yerr=stds, capsize=3, color="#9ecae1", edgecolor="#3182bd")
        for i, (_, fids) in enumerate(rows):
            # Spread the seed dots evenly across the bar: deterministic, unlike random jitter.
            spread = np.linspace(-0.2, 0.2, len(fids)) if len(fids) > 1 else np.zeros(1)
            ax.plot(i + spread, fids, "o", color="black", markersize=3)
        ax.set_xticks(x, [label for label, _ in rows], rotation=45, ha="right")
        ax.set_title(sampler)
    figure.suptitle(f"{run.dataset_label(dataset)}: {run.metric} by sampler, model and output"
                    + ("" if run.is_fid else " (fd_domain, NOT FID)"))
    return figure


def tile(images: np.ndarray, columns: int = GRID_COLUMNS, fill=255) -> np.ndarray:
    """N x C x H x W images -> one H' x W' (x C) image with up to `columns` images per row, `fill` between."""
    n, c, h, w = images.shape
    rows = -(-n // columns)
    canvas = np.full((rows * (h + 1) - 1, columns * (w + 1) - 1, c), fill,
                     dtype=np.result_type(images.dtype, np.asarray(fill).dtype))
    for i, image in enumerate(images):
        r, col = divmod(i, columns)
        canvas[r * (h + 1):r * (h + 1) + h, col * (w + 1):col * (w + 1) + w] = image.transpose(1, 2, 0)
    return canvas[..., 0] if c == 1 else canvas


def _show(ax, images: np.ndarray, title: str) -> None:
    ax.imshow(tile(images), cmap="gray", vmin=0, vmax=255, interpolation="nearest")
    ax.set_title(title, loc="left", fontsize=9)
    ax.set_axis_off()


def decomposition_grid(samples: dict, title: str):
    """sigma, x1, x2 and x_hat of the same latent samples, one row each (the paper's figure); sigma on
    a colour scale from 0 to 1, the composition written out, the high-frequency share explained."""
    kind, share = split_kind(samples["sigma"])
    figure = Figure(figsize=(8, 5.6), layout="constrained")
    axes = figure.subplots(len(DECOMPOSITION), 1)
    for ax, name in zip(axes, DECOMPOSITION):
        if name == "sigma":
            sigma = samples["sigma"][:GRID_COLUMNS].astype(np.float64) / 255
            image = ax.imshow(tile(sigma, fill=np.nan), cmap="viridis", vmin=0, vmax=1, interpolation="nearest")
            ax.set_title("sigma (weight of x1)", loc="left", fontsize=9)
            ax.set_axis_off()
            figure.colorbar(image, ax=ax, ticks=[0, 0.5, 1], label="sigma", shrink=0.9)
        else:
            _show(ax, samples[name][:GRID_COLUMNS], name)
    figure.suptitle(f"{title}: {kind} split" + ("" if share is None else f" (high-frequency share {share:.2f})")
                    + f"\n{EQUATION}")
    figure.supxlabel(SHARE_CAPTION, fontsize=8, wrap=True)
    return figure


def _generated(run: Run, trial_id: str, sampler: str) -> tuple:
    """(sampler, samples) at the model's own sampler when the trial saved it, else its first generator."""
    samples = run.samples(trial_id, sampler)
    return (sampler, samples) if samples is not None else run.generated(trial_id)


def sample_grid(run: Run, dataset: str):
    """Real test images once, then a row per model (and the split model's components): generated at
    each model's own sampler by its lowest finished seed; each row names the sampler and the seed."""
    finished = run.finished_ids()
    rows, real = [], None
    for model in run.models:
        trials = [(s, t) for s, t in run.trials(dataset, model) if t in finished]
        for seed, trial_id in trials[:1]:
            sampler, samples = _generated(run, trial_id, run.compared_at(model))
            recon = run.samples(trial_id, "recon")
            if real is None and recon is not None and "original" in recon:
                real = recon["original"]
            if samples is None:
                continue
            outputs = ["x_hat"] + (["x1", "x2"] if model == run.split_model else [])
            rows += [(samples[o], f"{row_label(run, model, o)}: {sampler} sampler, seed {seed}")
                     for o in outputs if o in samples]
    if not rows:
        return None
    if real is not None:
        rows.insert(0, (real, "real test images"))
    figure = Figure(figsize=(7, 0.15 + 1.05 * len(rows)), layout="constrained")
    for ax, (images, title) in zip(np.atleast_1d(figure.subplots(len(rows), 1)), rows):
        _show(ax, images[:GRID_COLUMNS], title)
    figure.suptitle(f"{run.dataset_label(dataset)}: samples, each model at its own sampler")
    return figure


def training_curves(run: Run, dataset: str):
    """Reconstruction MSE, loss, KL and gamma by epoch: one line per model (mean over seeds), min-max
    over seeds shaded; each model its own marker and dash, so lines that coincide stay visible."""
    histories = {}
    for model in run.models:
        frames = [m for m in (run.metrics(t) for _, t in run.trials(dataset, model)) if m is not None]
        if frames:
            history = pd.concat(frames)
            histories[model] = history[history["stage"].isin(FIRST_STAGE)]
    if not histories:
        return None
    curves = [c for c in CURVES if any(c[0] in h.columns for h in histories.values())]
    figure = Figure(figsize=(3.3 * len(curves), 3.5), layout="constrained")
    for ax, (column, name, scale) in zip(np.atleast_1d(figure.subplots(1, len(curves))), curves):
        for i, (model, history) in enumerate(histories.items()):
            if column not in history.columns:
                continue
            # Per epoch over the seeds that reached it; pandas skips missing (NaN) values.
            spread = history.groupby("epoch")[column].agg(["mean", "min", "max"])
            # Each later line thinner, with smaller markers: a line on top of another leaves it showing.
            line, = ax.plot(spread.index, spread["mean"], marker=MARKERS[i % len(MARKERS)],
                            linestyle=DASHES[i % len(DASHES)], linewidth=max(3.0 - 0.6 * i, 1.0),
                            markersize=max(8.0 - 1.5 * i, 3.0), label=run.label(model))
            ax.fill_between(spread.index, spread["min"], spread["max"], color=line.get_color(), alpha=0.15)
        # A log scale needs positive values: a Gaussian NLL loss may be negative, the RAE has no KL.
        ax.set_yscale(scale if scale == "linear" or (ax.has_data() and ax.dataLim.ymin > 0) else "linear")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("epoch")
        ax.set_title(name + (" (log scale)" if ax.get_yscale() == "log" else ""))
    figure.axes[0].legend(fontsize=8)
    figure.suptitle(f"{run.dataset_label(dataset)}: training (first stage for the two-stage VAE)")
    return figure
