"""The claims' comparisons as numbers, computed once: claims.md's tables and the forest plot both read
them, so a figure can never show other intervals than the ones the verdicts used.

Claim 1: paired differences of the SVAE's outputs over seeds, each with its 95% t-interval (no
correction: "supported" needs both deciding intervals below 0, an intersection-union test).
Claim 2: Welch comparisons of each fixed SVAE output with each baseline; the p-values of one family
are Holm-corrected, and each comparison's interval at its Holm level (reports/stats.py holm_levels)
excludes 0 exactly when its corrected p is below 0.05, so the corrected interval agrees with the verdict.
"""
from dataclasses import dataclass

from reports.rundir import Run
from reports.stats import decide_interval, decide_p, holm, holm_levels, t_interval, welch_interval, welch_p

DIFFERENCES = {
    "x1 - x_hat": lambda f: f["x1"] - f["x_hat"],
    "x2 - x_hat": lambda f: f["x2"] - f["x_hat"],
    "min(x1, x2) - x_hat": lambda f: min(f["x1"], f["x2"]) - f["x_hat"],
}
DECIDING = ("x1 - x_hat", "x2 - x_hat")  # both must hold; min(x1, x2) - x_hat is descriptive only
FIXED_OUTPUTS = ("x_hat", "x1")  # claim 2's SVAE outputs, fixed in advance


@dataclass(frozen=True)
class Paired:
    """One of claim 1's differences over the seeds of `per_seed`."""
    name: str
    diffs: list
    mean: float | None
    interval: tuple | None  # 95% t-interval
    verdict: str


@dataclass(frozen=True)
class Welch:
    """One of claim 2's comparisons: a fixed SVAE output minus a baseline at its own sampler."""
    baseline: str
    output: str
    sampler: str  # the baseline's
    ours: list
    theirs: list
    diff: float | None
    interval: tuple | None  # 95% Welch interval, uncorrected
    corrected: tuple | None  # the Welch interval at the comparison's Holm level
    level: float | None  # that interval's confidence, 1 - Holm level
    p: float | None  # Holm-corrected
    verdict: str


def paired(per_seed: dict) -> list:
    """[Paired] for every row of DIFFERENCES, over per_seed (seed -> {output: value})."""
    rows = []
    for name, difference in DIFFERENCES.items():
        diffs = [difference(f) for f in per_seed.values()]
        mean, interval = t_interval(diffs)
        rows.append(Paired(name, diffs, mean, interval, decide_interval(len(diffs), interval)))
    return rows


def baseline_sampler(run: Run, sampler: str, dataset: str, baseline: str) -> str:
    """A baseline's own sampler where its paper has one and the run scored it; else the claims' sampler."""
    own = run.compared_at(baseline)
    return own if run.seed_fids(own, dataset, baseline, "x_hat") else sampler


def welch_family(run: Run, sampler: str, dataset: str, svae: dict, baselines: list) -> list:
    """[Welch] for each baseline and fixed output (svae: output -> {seed: value}), one Holm family."""
    pairs = []
    for baseline in baselines:
        theirs_sampler = baseline_sampler(run, sampler, dataset, baseline)
        theirs = list(run.seed_fids(theirs_sampler, dataset, baseline, "x_hat").values())
        pairs += [(baseline, output, theirs_sampler, list(by_seed.values()), theirs)
                  for output, by_seed in svae.items()]
    pvalues = [welch_p(ours, theirs) for *_, ours, theirs in pairs]
    comparisons = []
    for (baseline, output, theirs_sampler, ours, theirs), p, level in zip(pairs, holm(pvalues),
                                                                           holm_levels(pvalues)):
        diff, interval = welch_interval(ours, theirs)
        corrected = None if level is None else welch_interval(ours, theirs, 1 - level)[1]
        comparisons.append(Welch(baseline, output, theirs_sampler, ours, theirs, diff, interval, corrected,
                                 None if level is None else 1 - level, p,
                                 decide_p(min(len(ours), len(theirs)), p, diff)))
    return comparisons


def fixed_outputs(run: Run, sampler: str, dataset: str) -> dict:
    """The SVAE's fixed outputs that have seeds: output -> {seed: value}."""
    svae = {o: run.seed_fids(sampler, dataset, run.split_model, o) for o in FIXED_OUTPUTS}
    return {o: f for o, f in svae.items() if f}


def scope_families(run: Run) -> tuple:
    """(baselines within claim 2's scope, baselines beyond it): two Holm families (registry fact)."""
    others = [m for m in run.models if m != run.split_model]
    return [m for m in others if run.in_claim_scope(m)], [m for m in others if not run.in_claim_scope(m)]
