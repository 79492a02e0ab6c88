"""Figures (figures/*.png and *.pdf): the headline, the claims' forest plot, the deciding metric per
sampler, precision-recall, sample grids, reconstructions, samples beside their nearest training images,
interpolations, split decompositions, quality against epochs and training curves (the last three in
reports/history_figures.py).

Each plotting function returns a matplotlib Figure (tests read its axes); `render_figures` saves
them. Figures are built on matplotlib.figure.Figure, not pyplot, so no GUI backend or global state
is involved, and saved without timestamps so re-rendering gives the same bytes. Titles carry display
names from the manifest (never a path).
"""
import io

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from reports.claims import HIGH_FREQUENCY, SYNTACTIC_SHARE, split_kind
from reports.forest import forest_plot
from reports.headline import headline
from reports.history_figures import epochs_figure, objective_figure, split_outputs_figure, training_curves
from reports.plotting import dataset_panels, fit_title, set_scale, value_scale
from reports.rundir import GENERATORS, Run
from reports.tables import row_label
from svae.preview import ENDS, INTERPOLATION, NEAREST

GRID_COLUMNS = 8  # images per row of a sample grid
DECOMPOSITION = ("sigma", "x1", "x2", "x_hat")
SPLIT_COLOUR, OTHER_COLOUR = "#e6550d", "#3182bd"
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")
PRDC = (("recall", "precision"), ("coverage", "density"))  # (x, y) of each panel
EQUATION = "x_hat = sigma * x1 + (1 - sigma) * x2"
SHARE_CAPTION = (f"High-frequency share: the part of sigma's spectral energy above {HIGH_FREQUENCY} cycles per "
                 f"pixel (wavelengths under {1 / HIGH_FREQUENCY:g} pixels), mean over these maps; "
                 f"{SYNTACTIC_SHARE} or more: a syntactic split (pixel-level), below: semantic (object parts).")
# No software name or dates in the files: identical inputs give identical bytes.
METADATA = {"png": {"Software": None}, "pdf": {"Creator": None, "Producer": None, "CreationDate": None}}


def render_figures(run: Run, write) -> list:
    """Save every figure through write(relative_path, bytes); returns the PNG paths, in order."""
    figures = [("headline", headline_figure(run)), ("forest", forest_plot(run))]
    finished = run.finished_ids()
    for dataset in run.datasets:
        figures.append((f"{run.deciding_metric}_{dataset}", metric_by_sampler(run, dataset)))
        figures.append((f"prdc_{dataset}", prdc_scatter(run, dataset)))
        figures.append((f"samples_{dataset}", sample_grid(run, dataset)))
        figures.append((f"recon_{dataset}", reconstructions(run, dataset)))
        figures.append((f"nearest_{dataset}", nearest_training_images(run, dataset)))
        figures.append((f"interpolation_{dataset}", interpolations(run, dataset)))
        for model in run.models:
            for seed, trial_id in run.trials(dataset, model):  # split models: every seed's decomposition
                if trial_id not in finished:
                    continue
                sampler, preview = run.generated(trial_id)
                if preview is not None and all(k in preview.images[sampler] for k in DECOMPOSITION):
                    figures.append((f"split_{dataset}_{model}_s{seed}", decomposition_grid(
                        preview.images[sampler], preview.sigma_shares[sampler],
                        f"{run.dataset_label(dataset)}, {run.label(model)} seed {seed}")))
        figures.append((f"epochs_{dataset}", epochs_figure(run, dataset)))
        figures.append((f"outputs_{dataset}", split_outputs_figure(run, dataset)))
        figures.append((f"curves_{dataset}", training_curves(run, dataset)))
        figures.append((f"objective_{dataset}", objective_figure(run, dataset)))
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


def _interval_rows(ax, rows: list, colours: list, scale: str) -> None:
    """Horizontal rows (label, seed values): mean ± sample std as a bar with caps, seeds as dots."""
    for i, ((_, values), colour) in enumerate(zip(rows, colours)):
        mean = float(np.mean(values))
        std = float(np.std(values, ddof=1)) if len(values) > 1 else 0.0
        # On a log axis a bar reaching below 0 is cut at the smallest seed's half: it is off the scale.
        low = min(std, mean - min(values) / 2) if scale == "log" else std
        ax.errorbar(mean, i, xerr=[[low], [std]], fmt="|", color=colour, capsize=4, markersize=14,
                    elinewidth=2.5, alpha=0.8)
        spread = np.linspace(-0.2, 0.2, len(values)) if len(values) > 1 else np.zeros(1)
        ax.plot(values, i + spread, "o", color="black", markersize=3)
    set_scale(ax, "x", scale)
    ax.set_yticks(np.arange(len(rows)), [label for label, _ in rows])
    ax.set_ylim(len(rows) - 0.5, -0.5)  # the first row on top
    ax.grid(axis="x", which="both", alpha=0.3)


def headline_figure(run: Run):
    """A panel per dataset: each model at its own sampler, best on top, its mean ± std beside its name;
    the split model's outputs in one colour; dots the seeds; a log axis when the values span decades."""
    figure, panels = dataset_panels(((d, [e for e in headline(run, d) if e.n]) for d in run.datasets), 6.5, 1.9, 0.45)
    if figure is None:
        return None
    for ax, (dataset, entries) in panels:
        scale = value_scale(v for e in entries for v in e.values)
        rows = [(f"{e.label} ({e.sampler})\n{e.text()}", e.values) for e in entries]
        _interval_rows(ax, rows, [SPLIT_COLOUR if e.split else OTHER_COLOUR for e in entries], scale)
        ax.tick_params(axis="y", labelsize=8)
        ax.set_xlabel(_better(run) + (", log scale" if scale == "log" else ""))
        ax.set_title(run.dataset_label(dataset))
    split = run.split_model
    if split is not None and any(e.split for _, (_, entries) in panels for e in entries):
        figure.legend(handles=[Patch(color=SPLIT_COLOUR, alpha=0.8, label=f"{run.label(split)} outputs"),
                               Patch(color=OTHER_COLOUR, alpha=0.8, label="other models")],
                      loc="outside lower center", ncols=2, frameon=False)
    fit_title(figure, ("" if run.is_fid else "fd_domain, NOT FID: ")
              + "each model at its own sampler (in brackets), best on top")
    return figure


def metric_by_sampler(run: Run, dataset: str):
    """The deciding metric, one panel per sampler on one shared scale: mean ± sample std per
    model/output, seeds as dots."""
    panels = []
    for sampler in run.samplers:
        rows = [(row_label(run, m, o), list(run.seed_fids(sampler, dataset, m, o).values()))
                for m, o in run.rows(sampler)]
        rows = [(label, fids) for label, fids in rows if fids]
        if rows:
            panels.append((sampler, rows))
    if not panels:
        return None
    scale = value_scale(v for _, rows in panels for _, fids in rows for v in fids)
    height = 1.6 + 0.3 * max(len(rows) for _, rows in panels)
    figure = Figure(figsize=(3.6 * len(panels), height), layout="constrained")
    axes = figure.subplots(1, len(panels), squeeze=False, sharex=True)[0]
    for ax, (sampler, rows) in zip(axes, panels):
        _interval_rows(ax, rows, [OTHER_COLOUR] * len(rows), scale)
        ax.set_title(sampler)
        ax.set_xlabel(_better(run) + (", log" if scale == "log" else ""), fontsize=8)
    fit_title(figure, f"{run.dataset_label(dataset)}: {run.metric} by sampler, model and output"
              + ("" if run.is_fid else " (fd_domain, NOT FID)"))
    return figure


def prdc_scatter(run: Run, dataset: str):
    """Precision against recall and density against coverage: a point per seed, each model (at its own
    sampler, x_hat) its own marker; None where the run scored neither."""
    models = [(m, run.compared_at(m)) for m in run.models]
    panels = [(x, y) for x, y in PRDC
              if any(run.seed_values(x, s, dataset, m, "x_hat") for m, s in models)]
    if not panels:
        return None
    figure = Figure(figsize=(4.2 * len(panels) + 1.6, 3.8), layout="constrained")
    axes = np.atleast_1d(figure.subplots(1, len(panels)))
    for ax, (x, y) in zip(axes, panels):
        for i, (model, sampler) in enumerate(models):
            xs = run.seed_values(x, sampler, dataset, model, "x_hat")
            ys = run.seed_values(y, sampler, dataset, model, "x_hat")
            seeds = sorted(set(xs) & set(ys))
            if seeds:
                ax.plot([xs[s] for s in seeds], [ys[s] for s in seeds], MARKERS[i % len(MARKERS)],
                        linestyle="none", alpha=0.8, label=f"{run.label(model)} ({sampler})")
        ax.set_xlabel(f"{x} (higher is better)")
        ax.set_ylabel(f"{y} (higher is better)")
        # All four lie in [0, 1] but density, which can pass 1: the whole range, with room for the markers.
        ax.set_xlim(0, 1.05 * max(1.0, ax.dataLim.xmax))
        ax.set_ylim(0, 1.05 * max(1.0, ax.dataLim.ymax))
        ax.grid(alpha=0.3)
    figure.legend(*axes[0].get_legend_handles_labels(), loc="outside right center", fontsize=8, frameon=False)
    fit_title(figure, f"{run.dataset_label(dataset)}: fidelity against diversity, a point per seed")
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


def decomposition_grid(samples: dict, sigma_shares: list, title: str):
    """sigma, x1, x2 and x_hat of the same latent samples, one row each (the paper's figure); sigma on
    a colour scale from 0 to 1, the composition written out, the high-frequency share (of every saved
    sigma map: sigma_shares) explained."""
    kind, share = split_kind(sigma_shares)
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
    """(sampler, images) at the model's own sampler when the trial saved it, else its first generator;
    (None, None) where it saved neither."""
    preview = run.preview(trial_id)
    if preview is None:
        return None, None
    found = sampler if sampler in preview.images else preview.first_of(GENERATORS)
    return (found, preview.images[found]) if found is not None else (None, None)


def _images(run: Run, trial_id: str, name: str):
    """{output: images} of one of a trial's preview sets (a sampler), or None where it has none."""
    preview = run.preview(trial_id)
    return preview.images.get(name) if preview is not None else None


def sample_grid(run: Run, dataset: str):
    """Real test images once, then a row per model (and the split model's components): generated at
    each model's own sampler by its lowest finished seed; each row names the sampler and the seed."""
    finished = run.finished_ids()
    rows, real = [], None
    for model in run.models:
        trials = [(s, t) for s, t in run.trials(dataset, model) if t in finished]
        for seed, trial_id in trials[:1]:
            sampler, samples = _generated(run, trial_id, run.compared_at(model))
            recon = _images(run, trial_id, "recon")
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
    fit_title(figure, f"{run.dataset_label(dataset)}: samples, each model at its own sampler")
    return figure


def reconstructions(run: Run, dataset: str):
    """Per model (lowest finished seed): test images and their reconstructions, row by row; None where
    no trial saved its recon sampler's outputs."""
    finished = run.finished_ids()
    rows = []
    for model in run.models:
        for seed, trial_id in [(s, t) for s, t in run.trials(dataset, model) if t in finished][:1]:
            recon = _images(run, trial_id, "recon")
            if recon is not None and "original" in recon and "x_hat" in recon:
                rows.append((np.concatenate([recon["original"][:GRID_COLUMNS], recon["x_hat"][:GRID_COLUMNS]]),
                             f"{run.label(model)}, seed {seed}"))
    if not rows:
        return None
    figure = Figure(figsize=(7, 0.4 + 1.9 * len(rows)), layout="constrained")
    for ax, (images, title) in zip(np.atleast_1d(figure.subplots(len(rows), 1)), rows):
        _show(ax, images, f"{title}: test images (top row), their reconstructions (bottom row)")
    fit_title(figure, f"{run.dataset_label(dataset)}: reconstructions of test images")
    return figure


def _labelled_columns(ax, images: np.ndarray, columns: int, labels: list, title: str) -> None:
    """images tiled `columns` to a row, a label under each column."""
    ax.imshow(tile(images, columns=columns), cmap="gray", vmin=0, vmax=255, interpolation="nearest")
    width = images.shape[-1]
    ax.set_xticks([i * (width + 1) + (width - 1) / 2 for i in range(columns)], labels, fontsize=7)
    ax.set_yticks([])
    ax.tick_params(length=0)
    for side in ax.spines.values():
        side.set_visible(False)
    ax.set_title(title, loc="left", fontsize=9)


def _recorded(run: Run, dataset: str, holds) -> list:
    """(model, seed, preview) per model: its lowest finished seed whose preview `holds` what a figure needs."""
    finished, found = run.finished_ids(), []
    for model in run.models:
        previews = ((seed, run.preview(t)) for seed, t in run.trials(dataset, model) if t in finished)
        first = next(((seed, p) for seed, p in previews if p is not None and holds(p)), None)
        found += [(model, *first)] if first else []
    return found


def nearest_training_images(run: Run, dataset: str):
    """Per model (lowest finished seed whose preview recorded them): its first samples at its own sampler
    over the training images nearest to them in pixels, each pair's distance and the training image's
    index under it; None where no trial recorded them (trials from before the record)."""
    rows = [(preview, f"{run.label(model)}: {preview.nearest['sampler']} sampler, seed {seed}")
            for model, seed, preview in _recorded(run, dataset, lambda p: p.nearest is not None)]
    if not rows:
        return None
    figure = Figure(figsize=(7, 0.5 + 2.3 * len(rows)), layout="constrained")
    for ax, (preview, title) in zip(np.atleast_1d(figure.subplots(len(rows), 1)), rows):
        pairs, found = preview.images[NEAREST], preview.nearest
        _labelled_columns(ax, np.concatenate([pairs["sample"], pairs["train"]]), len(pairs["sample"]),
                          [f"{d:.2f}\n#{i}" for d, i in zip(found["distance"], found["train_index"])],
                          f"{title}: samples (top), nearest training images (bottom)")
    figure.supxlabel("under each pair: pixel L2 distance (pixels in [0, 1]), #index of the training image",
                     fontsize=8)
    fit_title(figure, f"{run.dataset_label(dataset)}: samples beside their nearest training images")
    return figure


def interpolations(run: Run, dataset: str):
    """Per model (lowest finished seed whose preview holds one): two test images at the ends of a row, and
    between them x_hat decoded along the straight line between their posterior means; None where no
    trial recorded one."""
    rows = [(np.concatenate([p.images[ENDS]["original"][:1], p.images[INTERPOLATION]["x_hat"],
                             p.images[ENDS]["original"][1:]]), f"{run.label(model)}, seed {seed}")
            for model, seed, p in _recorded(run, dataset, lambda p: INTERPOLATION in p.images)]
    if not rows:
        return None
    figure = Figure(figsize=(8, 0.6 + 1.25 * len(rows)), layout="constrained")
    for ax, (images, title) in zip(np.atleast_1d(figure.subplots(len(rows), 1)), rows):
        _labelled_columns(ax, images, len(images),
                          ["test"] + [f"{t:.2f}" for t in np.linspace(0, 1, len(images) - 2)] + ["test"], title)
    figure.supxlabel("t: the position on the line from the first test image's posterior mean (0) to the "
                     "second's (1), decoded", fontsize=8)
    fit_title(figure, f"{run.dataset_label(dataset)}: interpolations between two test images")
    return figure
