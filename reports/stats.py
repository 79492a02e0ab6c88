"""Summaries over seeds, 95% intervals and the verdict rule shared by every claim."""
import math
import statistics

from scipy import stats

LEVEL = 0.95
MIN_SEEDS = 3  # below this a verdict is "inconclusive" whatever the numbers say


def summarize(values) -> tuple:
    """(mean, sample std with ddof=1 or None for one value, n); (None, None, 0) for no values."""
    values = list(values)
    if not values:
        return None, None, 0
    std = statistics.stdev(values) if len(values) > 1 else None
    return statistics.fmean(values), std, len(values)


def _interval(centre: float, se: float, df: float) -> tuple:
    # A zero standard error (identical differences) gives a zero-width interval, not NaN.
    half = 0.0 if se == 0 else stats.t.ppf(0.5 + LEVEL / 2, df) * se
    return centre - half, centre + half


def t_interval(diffs) -> tuple:
    """Mean of paired differences and its 95% t-interval (None with fewer than two)."""
    mean, std, n = summarize(diffs)
    if n < 2:
        return mean, None
    return mean, _interval(mean, std / math.sqrt(n), n - 1)


def welch_interval(a, b) -> tuple:
    """mean(a) - mean(b) and its 95% Welch interval (None unless both have two or more values)."""
    mean_a, std_a, n_a = summarize(a)
    mean_b, std_b, n_b = summarize(b)
    if n_a == 0 or n_b == 0:
        return None, None
    diff = mean_a - mean_b
    if n_a < 2 or n_b < 2:
        return diff, None
    va, vb = std_a ** 2 / n_a, std_b ** 2 / n_b
    se = math.sqrt(va + vb)
    df = (va + vb) ** 2 / (va ** 2 / (n_a - 1) + vb ** 2 / (n_b - 1)) if se > 0 else 1.0
    return diff, _interval(diff, se, df)


def decide(n: int, interval, all_agree: bool = True) -> str:
    """The verdict on "difference < 0" (lower FID is better) from n seeds and a 95% interval."""
    if n < MIN_SEEDS or interval is None:
        return "inconclusive"
    low, high = interval
    if high < 0 and all_agree:
        return "supported"
    if low > 0:
        return "not supported"
    return "inconclusive"
