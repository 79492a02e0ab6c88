"""The forest plot: every comparison of claims 1 and 2 with the interval its verdict used, per dataset.

The rows are claims.md's, from the same computation (reports/comparisons.py): claim 1's paired
t-intervals of x1 - x_hat and x2 - x_hat (uncorrected: an intersection-union test needs none), claim
2's Welch comparisons of each fixed SVAE output minus each baseline, drawn thick at their Holm-corrected
level (the interval that agrees with the Holm-corrected verdict) over a thin uncorrected 95% interval.
Baselines beyond the paper's claim (not purely variational) form a family of their own, labelled so.
Claim 3 reuses claim 1's rule on a subset of seeds and is not drawn.
"""
from dataclasses import dataclass

from matplotlib.lines import Line2D
from matplotlib.ticker import FuncFormatter

from reports.claims import claims_sampler, decomposition
from reports.comparisons import DECIDING, fixed_outputs, paired, scope_families, welch_family
from reports.plotting import dataset_panels, difference_scale, fit_title
from reports.rundir import Run
from reports.stats import CONTRADICTED, NO_DIFFERENCE, SUPPORTED

VERDICT_COLOURS = {SUPPORTED: "#31a354", CONTRADICTED: "#de2d26", NO_DIFFERENCE: "#636363"}
TOO_FEW_COLOUR = "#bdbdbd"
THICK, THIN = 6.0, 1.2  # line widths: the deciding interval (pale), the uncorrected 95% one over it
PALE = 0.35  # the deciding interval's opacity: the uncorrected interval inside it stays visible


@dataclass(frozen=True)
class Row:
    label: str
    mean: float
    deciding: tuple | None  # the interval the verdict used: claim 1's 95%, claim 2's Holm-corrected
    uncorrected: tuple | None  # the 95% interval before correction (claim 1: the deciding one itself)
    verdict: str


def claim_intervals(run: Run, dataset: str) -> list:
    """[Row] of claims 1 and 2 (and the comparisons beyond claim 2's scope), in claims.md's order."""
    sampler = claims_sampler(run)
    rows = [Row(f"claim 1: {p.name}", p.mean, p.interval, p.interval, p.verdict)
            for p in paired(decomposition(run, sampler, dataset)) if p.name in DECIDING and p.mean is not None]
    svae = fixed_outputs(run, sampler, dataset)
    for prefix, baselines in zip(("claim 2", "beyond claim 2"), scope_families(run)):
        rows += [Row(f"{prefix}: SVAE {c.output} - {run.label(c.baseline)}", c.diff, c.corrected, c.interval,
                     c.verdict)
                 for c in welch_family(run, sampler, dataset, svae, baselines) if c.diff is not None]
    return rows


def forest_plot(run: Run):
    """A panel per dataset: each comparison's mean difference, the interval its verdict used (thick,
    pale) and the uncorrected 95% interval (thin), coloured by verdict, 0 marked; a symmetric-log axis
    when the intervals span decades. None without any interval."""
    if run.split_model is None:
        return None
    figure, panels = dataset_panels(((d, claim_intervals(run, d)) for d in run.datasets), 7.5, 1.8, 0.32)
    if figure is None:
        return None
    for ax, (dataset, rows) in panels:
        bounds = [b for r in rows for b in (r.deciding or ()) + (r.uncorrected or ()) + (r.mean,)]
        scale, threshold = difference_scale(bounds)
        for i, row in enumerate(rows):
            colour = VERDICT_COLOURS.get(row.verdict, TOO_FEW_COLOUR)
            if row.deciding is not None:
                ax.plot(row.deciding, [i, i], color=colour, linewidth=THICK, alpha=PALE, solid_capstyle="butt")
            if row.uncorrected is not None:
                ax.plot(row.uncorrected, [i, i], "|-", color=colour, linewidth=THIN, markersize=7)
            ax.plot([row.mean], [i], "o", color=colour, markersize=5)
        ax.axvline(0, color="black", linewidth=0.8)
        low, high = min(bounds + [0.0]), max(bounds + [0.0])
        if scale == "symlog":
            ax.set_xscale("symlog", linthresh=threshold)
            ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
            # Room beyond the outermost bounds, in the axis's own (logarithmic) terms.
            ax.set_xlim(low * 1.5 if low < -threshold else low - 0.1 * threshold,
                        high * 1.5 if high > threshold else high + 0.1 * threshold)
        ax.set_yticks(range(len(rows)), [r.label for r in rows], fontsize=8)
        ax.set_ylim(len(rows) - 0.5, -0.5)
        ax.grid(axis="x", which="both", alpha=0.3)
        ax.set_xlabel(f"difference in {run.metric} (below 0: the SVAE side is better)"
                      + (f"; log scale beyond ±{threshold:g}" if scale == "symlog" else ""), fontsize=8)
        ax.set_title(run.dataset_label(dataset))
    figure.legend(handles=[Line2D([], [], color=c, linewidth=THICK, label=v) for v, c in VERDICT_COLOURS.items()]
                  + [Line2D([], [], color=TOO_FEW_COLOUR, linewidth=THICK, label="too few seeds"),
                     Line2D([], [], color="black", linewidth=THICK, alpha=PALE, solid_capstyle="butt",
                            label="thick: the interval the verdict used (claim 2: Holm-corrected)"),
                     Line2D([], [], color="black", linewidth=THIN, marker="|", markersize=7,
                            label="thin: 95% uncorrected (claim 1: the same)")],
                  loc="outside lower center", ncols=3, frameon=False, fontsize=8)
    fit_title(figure, ("" if run.is_fid else "fd_domain, NOT FID: ")
              + "the claims' comparisons: mean difference and the interval each verdict used")
    return figure
