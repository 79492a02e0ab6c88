"""Summaries over seeds, 95% intervals and the verdict rule shared by every claim."""
import math
import statistics

from scipy import stats

ALPHA = 0.05  # a test's level: 95% intervals, p < 0.05
LEVEL = 1 - ALPHA
MIN_SEEDS = 3  # below this a verdict is "too few seeds" whatever the numbers say


def summarize(values) -> tuple:
    """(mean, sample std with ddof=1 or None for one value, n); (None, None, 0) for no values."""
    values = list(values)
    if not values:
        return None, None, 0
    std = statistics.stdev(values) if len(values) > 1 else None
    return statistics.fmean(values), std, len(values)


def _interval(centre: float, se: float, df: float, level: float) -> tuple:
    # A zero standard error (identical differences) gives a zero-width interval, not NaN.
    half = 0.0 if se == 0 else stats.t.ppf(0.5 + level / 2, df) * se
    return centre - half, centre + half


def t_interval(diffs, level: float = LEVEL) -> tuple:
    """Mean of paired differences and its t-interval at `level` (None with fewer than two)."""
    mean, std, n = summarize(diffs)
    if n < 2:
        return mean, None
    return mean, _interval(mean, std / math.sqrt(n), n - 1, level)


def welch_degrees(var_a: float, n_a: int, var_b: float, n_b: int) -> float:
    """Welch-Satterthwaite degrees of freedom of mean(a) - mean(b) (1 where both variances are 0)."""
    va, vb = var_a / n_a, var_b / n_b
    return (va + vb) ** 2 / (va ** 2 / (n_a - 1) + vb ** 2 / (n_b - 1)) if va + vb > 0 else 1.0


def welch_interval(a, b, level: float = LEVEL) -> tuple:
    """mean(a) - mean(b) and its Welch interval at `level` (None unless both have two or more values)."""
    mean_a, std_a, n_a = summarize(a)
    mean_b, std_b, n_b = summarize(b)
    if n_a == 0 or n_b == 0:
        return None, None
    diff = mean_a - mean_b
    if n_a < 2 or n_b < 2:
        return diff, None
    se = math.sqrt(std_a ** 2 / n_a + std_b ** 2 / n_b)
    return diff, _interval(diff, se, welch_degrees(std_a ** 2, n_a, std_b ** 2, n_b), level)


def paired_p(diffs):
    """Two-sided p-value of the one-sample t-test "mean difference = 0" (None with fewer than two)."""
    mean, std, n = summarize(diffs)
    if n < 2:
        return None
    if std == 0:  # identical differences: certain, unless they are all zero
        return 0.0 if mean != 0 else 1.0
    return float(stats.ttest_1samp(diffs, 0.0).pvalue)


def welch_p(a, b):
    """Two-sided p-value of Welch's t-test "mean(a) = mean(b)" (None unless both have two or more)."""
    (mean_a, std_a, n_a), (mean_b, std_b, n_b) = summarize(a), summarize(b)
    if n_a < 2 or n_b < 2:
        return None
    if std_a == 0 and std_b == 0:
        return 0.0 if mean_a != mean_b else 1.0
    return float(stats.ttest_ind(a, b, equal_var=False).pvalue)


def holm(pvalues: list) -> list:
    """Holm's step-down adjustment of p-values (None passes through and does not count)."""
    order = sorted((p, i) for i, p in enumerate(pvalues) if p is not None)
    adjusted, running = list(pvalues), 0.0
    for rank, (p, i) in enumerate(order):
        running = max(running, min(1.0, (len(order) - rank) * p))  # monotone in rank
        adjusted[i] = running
    return adjusted


def holm_levels(pvalues: list) -> list:
    """The level (alpha) at which Holm's step-down judged each p-value (None passes through).

    The k-th smallest of m is judged at ALPHA / (m - k + 1) while every smaller one was rejected; from
    the first that is not, every larger one is judged at that step's level. A two-sided interval at
    1 - level then excludes 0 exactly when the Holm-corrected p is below ALPHA: the corrected interval
    agrees with the corrected verdict."""
    order = sorted((p, i) for i, p in enumerate(pvalues) if p is not None)
    levels, stopped = list(pvalues), None
    for rank, (p, i) in enumerate(order):
        level = ALPHA / (len(order) - rank)
        if stopped is None and p >= level:
            stopped = level
        levels[i] = stopped or level
    return levels


SUPPORTED, CONTRADICTED, NO_DIFFERENCE = "supported", "contradicted", "no significant difference"


def too_few(n: int) -> str:
    return f"too few seeds (n = {n} < {MIN_SEEDS})"


def decide_interval(n: int, interval) -> str:
    """The verdict on "difference < 0" (lower FID is better) from n seeds and its 95% interval."""
    if n < MIN_SEEDS or interval is None:
        return too_few(n)
    low, high = interval
    return SUPPORTED if high < 0 else CONTRADICTED if low > 0 else NO_DIFFERENCE


def decide_p(n: int, p, difference) -> str:
    """The verdict on "difference < 0" from n seeds (the smaller side) and a (corrected) two-sided p."""
    if n < MIN_SEEDS or p is None:
        return too_few(n)
    if p >= ALPHA:
        return NO_DIFFERENCE
    return SUPPORTED if difference < 0 else CONTRADICTED
