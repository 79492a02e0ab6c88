"""The forest plot: every deciding comparison of claims 1 and 2 with its 95% interval, per dataset.

The intervals and verdicts are claims.md's, computed with the same public pieces (reports/claims.py
decomposition and baseline_sampler, reports/stats.py): claim 1's paired t-intervals of x1 - x_hat and
x2 - x_hat, claim 2's Welch intervals of each fixed SVAE output minus each baseline, whose verdicts
use Holm-corrected p-values. Claim 3 reuses claim 1's rule on a subset of seeds and is not drawn.
"""
from matplotlib.lines import Line2D
from matplotlib.ticker import FuncFormatter

from reports.claims import (
    DECIDING,
    DIFFERENCES,
    FIXED_OUTPUTS,
    baseline_sampler,
    claims_sampler,
    decomposition,
)
from reports.plotting import dataset_panels, difference_scale, fit_title
from reports.rundir import Run
from reports.stats import (
    CONTRADICTED,
    NO_DIFFERENCE,
    SUPPORTED,
    decide_interval,
    decide_p,
    holm,
    t_interval,
    welch_interval,
    welch_p,
)

VERDICT_COLOURS = {SUPPORTED: "#31a354", CONTRADICTED: "#de2d26", NO_DIFFERENCE: "#636363"}
TOO_FEW_COLOUR = "#bdbdbd"


def claim_intervals(run: Run, dataset: str) -> list:
    """[(label, mean difference, (low, high) or None, verdict)] of claims 1 and 2, claims.md's order."""
    sampler = claims_sampler(run)
    rows = []
    per_seed = decomposition(run, sampler, dataset)
    for name in DECIDING:
        diffs = [DIFFERENCES[name](f) for f in per_seed.values()]
        mean, interval = t_interval(diffs)
        if mean is not None:
            rows.append((f"claim 1: {name}", mean, interval, decide_interval(len(diffs), interval)))
    svae = {o: list(run.seed_fids(sampler, dataset, run.split_model, o).values()) for o in FIXED_OUTPUTS}
    comparisons = []
    for baseline in (m for m in run.models if m != run.split_model):
        theirs = list(run.seed_fids(baseline_sampler(run, sampler, dataset, baseline), dataset, baseline,
                                    "x_hat").values())
        for output, ours in svae.items():
            diff, interval = welch_interval(ours, theirs)
            if diff is not None:
                comparisons.append((f"claim 2: SVAE {output} - {run.label(baseline)}", diff, interval,
                                    min(len(ours), len(theirs)), welch_p(ours, theirs)))
    adjusted = holm([c[-1] for c in comparisons])
    rows += [(label, diff, interval, decide_p(n, p, diff))
             for (label, diff, interval, n, _), p in zip(comparisons, adjusted)]
    return rows


def forest_plot(run: Run):
    """A panel per dataset: each comparison's mean difference and 95% interval, coloured by verdict,
    0 marked; a symmetric-log axis when the intervals span decades. None without any interval."""
    if run.split_model is None:
        return None
    figure, panels = dataset_panels(((d, claim_intervals(run, d)) for d in run.datasets), 7.5, 1.8, 0.32)
    if figure is None:
        return None
    for ax, (dataset, rows) in panels:
        bounds = [b for _, mean, interval, _ in rows for b in (interval or (mean,))]
        scale, threshold = difference_scale(bounds)
        for i, (_, mean, interval, verdict) in enumerate(rows):
            colour = VERDICT_COLOURS.get(verdict, TOO_FEW_COLOUR)
            if interval is not None:
                ax.plot(interval, [i, i], color=colour, linewidth=2.5)
            ax.plot([mean], [i], "o", color=colour, markersize=5)
        ax.axvline(0, color="black", linewidth=0.8)
        low, high = min(bounds + [0.0]), max(bounds + [0.0])
        if scale == "symlog":
            ax.set_xscale("symlog", linthresh=threshold)
            ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
            # Room beyond the outermost bounds, in the axis's own (logarithmic) terms.
            ax.set_xlim(low * 1.5 if low < -threshold else low - 0.1 * threshold,
                        high * 1.5 if high > threshold else high + 0.1 * threshold)
        ax.set_yticks(range(len(rows)), [label for label, *_ in rows], fontsize=8)
        ax.set_ylim(len(rows) - 0.5, -0.5)
        ax.grid(axis="x", which="both", alpha=0.3)
        ax.set_xlabel(f"difference in {run.metric} (below 0: the SVAE side is better)"
                      + (f"; log scale beyond ±{threshold:g}" if scale == "symlog" else ""), fontsize=8)
        ax.set_title(run.dataset_label(dataset))
    figure.legend(handles=[Line2D([], [], color=c, linewidth=2.5, label=v) for v, c in VERDICT_COLOURS.items()]
                  + [Line2D([], [], color=TOO_FEW_COLOUR, linewidth=2.5, label="too few seeds")],
                  loc="outside lower center", ncols=4, frameon=False, fontsize=8)
    fit_title(figure, ("" if run.is_fid else "fd_domain, NOT FID: ")
              + "the claims' comparisons, mean difference and 95% interval")
    return figure
