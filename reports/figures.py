"""Figures (figures/*.png and *.pdf): FID bars, SVAE decompositions, sample grids, training curves.

Each plotting function returns a matplotlib Figure (tests read its axes titles); `render_figures`
saves them. Figures are built on matplotlib.figure.Figure, not pyplot, so no GUI backend or global
state is involved, and saved without timestamps so re-rendering gives the same bytes.
"""
import io

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from reports.claims import split_kind
from reports.rundir import Run
from reports.tables import row_label

GRID_COLUMNS = 8  # images per row of a sample grid
DECOMPOSITION = ("sigma", "x1", "x2", "x_hat")
CURVES = (("loss", "loss", "linear"), ("kl", "KL", "linear"), ("gamma", "gamma", "log"))  # gamma spans decades
FIRST_STAGE = ("main", "stage1")  # the two-stage VAE's second stage trains another network
# No software name or dates in the files: identical inputs give identical bytes.
METADATA = {"png": {"Software": None}, "pdf": {"Creator": None, "Producer": None, "CreationDate": None}}


def render_figures(run: Run, write) -> list:
    """Save every figure through write(relative_path, bytes); returns the PNG paths, in order."""
    figures = []
    finished = run.finished_ids()
    for dataset in run.datasets:
        figures.append((f"fid_{dataset}", fid_bars(run, dataset)))
        for model in run.models:
            trials = [(s, t) for s, t in run.trials(dataset, model) if t in finished]
            for seed, trial_id in trials:  # split models: every seed's decomposition
                _, samples = run.generated(trial_id)
                if samples is not None and all(k in samples for k in DECOMPOSITION):
                    figures.append((f"split_{dataset}_{model}_s{seed}", decomposition_grid(
                        samples, f"{dataset}, {run.label(model)} seed {seed}")))
            if trials:
                # One seed (the lowest finished) stands for the model in the sample grids.
                seed, trial_id = trials[0]
                figures.append((f"samples_{dataset}_{model}", sample_grid(
                    run.generated(trial_id)[1], run.samples(trial_id, "recon"),
                    f"{dataset}, {run.label(model)} seed {seed}")))
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


def fid_bars(run: Run, dataset: str):
    """One panel per sampler: mean over seeds per model/output, sample-std error bars, seeds as dots."""
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
    for ax, (sampler, rows) in zip(figure.subplots(1, len(panels), squeeze=False)[0], panels):
        x = np.arange(len(rows))
        means = [np.mean(f) for _, f in rows]
        stds = [np.std(f, ddof=1) if len(f) > 1 else 0.0 for _, f in rows]
        ax.bar(x, means, yerr=stds, capsize=3, color="#9ecae1", edgecolor="#3182bd")
        for i, (_, fids) in enumerate(rows):
            # Spread the seed dots evenly across the bar: deterministic, unlike random jitter.
            spread = np.linspace(-0.2, 0.2, len(fids)) if len(fids) > 1 else np.zeros(1)
            ax.plot(i + spread, fids, "o", color="black", markersize=3)
        ax.set_xticks(x, [label for label, _ in rows], rotation=45, ha="right")
        ax.set_ylabel(run.metric)
        ax.set_title(sampler)
    figure.suptitle(f"{dataset}: {run.metric} by model and output"
                    + ("" if run.is_fid else " (fd_domain, NOT FID)"))
    return figure


def tile(images: np.ndarray, columns: int = GRID_COLUMNS) -> np.ndarray:
    """N x C x H x W uint8 -> one H' x W' (x 3) image with up to `columns` images per row."""
    n, c, h, w = images.shape
    rows = -(-n // columns)
    canvas = np.full((rows * (h + 1) - 1, columns * (w + 1) - 1, c), 255, dtype=np.uint8)
    for i, image in enumerate(images):
        r, col = divmod(i, columns)
        canvas[r * (h + 1):r * (h + 1) + h, col * (w + 1):col * (w + 1) + w] = image.transpose(1, 2, 0)
    return canvas[..., 0] if c == 1 else canvas


def _show(ax, images: np.ndarray, title: str) -> None:
    ax.imshow(tile(images), cmap="gray", vmin=0, vmax=255, interpolation="nearest")
    ax.set_title(title)
    ax.set_axis_off()


def decomposition_grid(samples: dict, title: str):
    """sigma, x1, x2 and x_hat of the same latent samples, one row each (the paper's figure)."""
    kind, share = split_kind(samples["sigma"])
    figure = Figure(figsize=(8, 5), layout="constrained")
    for ax, name in zip(figure.subplots(len(DECOMPOSITION), 1), DECOMPOSITION):
        _show(ax, samples[name][:GRID_COLUMNS], name)
    figure.suptitle(f"{title}: {kind} split"
                    + ("" if share is None else f" (high-frequency share {share:.2f})"))
    return figure


def sample_grid(samples, recon, title: str):
    """Generated samples, and reconstructions beside the test images they reconstruct."""
    panels = []
    if samples is not None:
        panels.append((samples["x_hat"], "samples (x_hat)"))
    if recon is not None:
        panels += [(recon["original"], "originals"), (recon["x_hat"], "reconstructions")]
    if not panels:
        return None
    figure = Figure(figsize=(4 * len(panels), 4.5), layout="constrained")
    for ax, (images, name) in zip(figure.subplots(1, len(panels), squeeze=False)[0], panels):
        _show(ax, images[:GRID_COLUMNS * GRID_COLUMNS], name)
    figure.suptitle(title)
    return figure


def training_curves(run: Run, dataset: str):
    """Loss, KL and gamma by epoch: one line per model (mean over seeds), min-max over seeds shaded."""
    histories = {}
    for model in run.models:
        frames = [m for m in (run.metrics(t) for _, t in run.trials(dataset, model)) if m is not None]
        if frames:
            history = pd.concat(frames)
            histories[model] = history[history["stage"].isin(FIRST_STAGE)]
    if not histories:
        return None
    figure = Figure(figsize=(12, 3.5), layout="constrained")
    for ax, (column, name, scale) in zip(figure.subplots(1, len(CURVES)), CURVES):
        for model, history in histories.items():
            # Per epoch over the seeds that reached it; pandas skips missing (NaN) values.
            spread = history.groupby("epoch")[column].agg(["mean", "min", "max"])
            line, = ax.plot(spread.index, spread["mean"], label=run.label(model))
            ax.fill_between(spread.index, spread["min"], spread["max"], color=line.get_color(),
                            alpha=0.2)
        # A model without the term (the RAE has no KL or gamma) draws an empty line: no log scale on none.
        ax.set_yscale(scale if ax.dataLim.ymin > 0 or scale == "linear" else "linear")
        ax.set_xlabel("epoch")
        ax.set_title(name)
    figure.axes[0].legend()
    figure.suptitle(f"{dataset}: training (first stage for the two-stage VAE)")
    return figure
