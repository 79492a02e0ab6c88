"""Helpers every figure shares: the axis scale the data call for, titles that fit their canvas,
and the caption that says what to look for in each figure.

A linear axis lets one far-off value set the range and squash the rest (the committed study's
SVAE x2 at ~224 beside models at 8-16); `value_scale` puts such data on a log axis, and
`difference_scale` puts signed differences that span decades on a symmetric-log axis.
"""
import textwrap

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import LogFormatter

LOG_RATIO = 10  # positive values spanning more than this factor go on a log axis
SYMLOG_RATIO = 10  # signed differences: the largest |bound| over the median |bound| beyond which symlog
CHAR_WIDTH = 0.62  # a character's mean width in ems (DejaVu Sans, with room to spare)


def value_scale(values) -> str:
    """"log" when every value is positive and they span more than LOG_RATIO, else "linear"."""
    v = np.asarray([x for x in values if x is not None and np.isfinite(x)], dtype=float)
    return "log" if len(v) and (v > 0).all() and v.max() / v.min() > LOG_RATIO else "linear"


class PlainLogFormatter(LogFormatter):
    """Log-axis labels as plain numbers (0.3, 2, 300): matplotlib's default writes 3x10^-1, whose
    neighbours overlap on an axis spanning about a decade. Which ticks get a label is LogFormatter's rule."""

    def __call__(self, x, pos=None):
        return f"{x:g}" if super().__call__(x, pos) else ""


def set_scale(ax, which: str, scale: str) -> None:
    """ax's "x" or "y" axis on scale ("linear", "log"); a log axis labelled in plain numbers."""
    (ax.set_xscale if which == "x" else ax.set_yscale)(scale)
    if scale == "log":
        axis = ax.xaxis if which == "x" else ax.yaxis
        axis.set_major_formatter(PlainLogFormatter(labelOnlyBase=False))
        axis.set_minor_formatter(PlainLogFormatter(labelOnlyBase=False))


def difference_scale(bounds) -> tuple:
    """("symlog", linear threshold) when signed bounds span decades, else ("linear", None)."""
    b = np.abs(np.asarray([x for x in bounds if x is not None and np.isfinite(x)], dtype=float))
    b = b[b > 0]
    if not len(b) or b.max() / np.median(b) <= SYMLOG_RATIO:
        return "linear", None
    return "symlog", float(10 ** np.round(np.log10(np.median(b))))  # a round threshold: ticks at ±10^k


def fitted(text: str, width_inches: float, fontsize: float) -> str:
    """text wrapped (at spaces, keeping its own line breaks) to lines that fit width_inches."""
    chars = max(20, int(width_inches * 72 / (fontsize * CHAR_WIDTH)))
    return "\n".join(textwrap.fill(line, chars) for line in text.split("\n"))


def fit_title(figure, text: str, fontsize: float = 11) -> None:
    """The figure's title, wrapped to the canvas width (a long title is cut at the edges otherwise)."""
    figure.suptitle(fitted(text, figure.get_figwidth() * 0.95, fontsize), fontsize=fontsize)


def dataset_panels(panels, width: float, base: float, per_row: float) -> tuple:
    """(figure, [(ax, (dataset, rows))]): a panel side by side per (dataset, rows) that has rows, its
    height fitting the longest; (None, []) when none has any."""
    panels = [(d, rows) for d, rows in panels if rows]
    if not panels:
        return None, []
    figure = Figure(figsize=(width * len(panels), base + per_row * max(len(rows) for _, rows in panels)),
                    layout="constrained")
    return figure, list(zip(figure.subplots(1, len(panels), squeeze=False)[0], panels))


CAPTIONS = {  # figure name's first part -> what to look for
    "headline": "Each model at its own sampler, best on top: a dot per seed, the bar the mean ± sample std. "
                "Look at whether the intervals overlap; claims.md and the forest plot say which differences "
                "are significant. A log axis is used when the values span more than a factor of "
                f"{LOG_RATIO}.",
    "forest": "Each claim's deciding differences (left of 0: the SVAE output or component is better). The "
              "thick pale bar is the interval the verdict used: claim 1's 95% t-interval, claim 2's "
              "Holm-corrected Welch interval (it crosses 0 exactly when the corrected verdict is \"no "
              "significant difference\"); the thin line inside it is the uncorrected 95% interval, which for "
              "claim 2 can clear 0 where the verdict does not. The colour is the verdict; rows \"beyond claim "
              "2\" compare models outside the paper's claim and decide nothing.",
    "metric": "Every sampler, model and output on one scale: compare within a panel (the same sampler); "
              "a panel per sampler shows what the sampler, rather than the model, changes.",
    "prdc": "Precision (fidelity: share of generated images near real ones) against recall (diversity: "
            "share of real images near generated ones), and density against coverage, one point per "
            "seed. Top right is best; low recall with high precision means the model covers few modes.",
    "samples": "Real test images, then each model's samples at its own sampler (lowest finished seed). "
               "Look for blur, repeated shapes and missing classes.",
    "recon": "Test images (top of each pair) and their reconstructions: what the scored reconstruction "
             "MSE looks like. Blur here is the decoder's, not the sampler's.",
    "nearest": "Each model's first samples at its own sampler (top of each pair) over the training image "
               "nearest to each in pixels (bottom), with their distance. A copied training image shows as a "
               "pair that looks the same, at a distance near 0; a model that generalises draws samples "
               "unlike any one training image. The Memorisation section measures this over 1,000 samples.",
    "interpolation": "Two test images at the ends of each row and, between them, what the model decodes "
                     "along the straight line between their latent means. Smooth, plausible images all the "
                     "way mean a latent space without holes; a jump or a blur in the middle, one the GMM "
                     "or prior sampler may fall into.",
    "split": "The split model's sigma map and its two components for the same latents: a semantic split "
             "weights object parts, a syntactic one texture or edges.",
    "epochs": "Quality against epochs for every model and seed: the trials' own score during training where "
              "they scored it (a quick score: at most as many images as the tables', the GMM fitted on as "
              "many latents, the run's first scoring network; its level is not the tables'), else their "
              "training reconstruction MSE. Where a curve still falls at the last epoch, the model had not "
              "levelled off: its verdicts hold at this budget only.",
    "outputs": "The split model's outputs scored during training (the trials' own quick score: compare "
               "shapes and order, not levels, with the tables): whether x1 or x2 scored better than x_hat "
               "throughout training or only at some epochs.",
    "curves": "Quantities that compare across models (reconstruction MSE, KL, gamma) by epoch: the line "
              "is the mean over seeds, the band their min-max.",
    "objective": "Each model's own training objective by epoch, on its own axis: objectives differ "
                 "between models (the RAE's is near 0, the two-stage VAE's can be negative), so only "
                 "the shape of each curve means anything. With gamma balancing (the SVAE, the VAE) the "
                 "objective rises while training goes well: its reconstruction term is divided by gamma, "
                 "which falls with the reconstruction MSE.",
}


def caption(png_path: str) -> str:
    """What to look for in a figure, from its file name (figures/<kind>_...png)."""
    name = png_path.rsplit("/", 1)[-1].removesuffix(".png")
    kind = name.split("_")[0]
    return CAPTIONS.get(kind, CAPTIONS["metric"] if name.startswith(("fid_", "fd_", "kid_")) else "")
