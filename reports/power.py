"""Power of the claims' t-tests, from the spread the seeds showed: what 5 seeds could detect, and how
many seeds the observed difference would need.

Both tests are two-sided t-tests; their power at a true difference d is that of a noncentral t with
the test's degrees of freedom and noncentrality d / (standard error). The spread is the observed
one, taken as the truth: with five seeds it is itself uncertain, so these are planning figures,
not guarantees.
"""
import math
import statistics

import numpy as np
from scipy import optimize, stats

from reports.stats import ALPHA, MIN_SEEDS, welch_degrees

POWER = 0.8
PLANNED_SEEDS = 5
QUANTILES = 4000
MAX_SEEDS = 1000  # beyond this "more than 1000": a difference that small is not worth seeds


def _power(ncp: float, df: float, alpha: float) -> float:
    """P(|T| > critical) for T = (Z + ncp) / sqrt(V / df), Z normal, V chi-square(df): the noncentral t,
    averaged over QUANTILES equal-probability points of V (scipy's nct returns NaN for some df and
    ncp above ~8; this is within 1e-4 of it elsewhere)."""
    critical = stats.t.ppf(1 - alpha / 2, df)
    v = stats.chi2.ppf((np.arange(QUANTILES) + 0.5) / QUANTILES, df)
    bound = critical * np.sqrt(v / df)
    return float(np.mean(stats.norm.sf(bound - ncp) + stats.norm.cdf(-bound - ncp)))


def paired_power(n: int, difference: float, std: float, alpha: float = ALPHA) -> float:
    """Power of the one-sample t-test on n paired differences of standard deviation std."""
    return _power(abs(difference) * math.sqrt(n) / std, n - 1, alpha)


def welch_power(n: int, difference: float, std_a: float, std_b: float, alpha: float = ALPHA) -> float:
    """Power of Welch's t-test with n seeds a side, of standard deviations std_a and std_b."""
    se = math.sqrt((std_a ** 2 + std_b ** 2) / n)
    return _power(abs(difference) / se, welch_degrees(std_a ** 2, n, std_b ** 2, n), alpha)


def detectable(power_at, n: int = PLANNED_SEEDS):
    """The smallest difference that n seeds detect with POWER; power_at(n, difference) -> power,
    rising with the difference (the callers handle a spread of 0)."""
    scale = 1.0
    while power_at(n, scale) < POWER:  # bracket the root: power rises with the difference
        scale *= 2
    low = scale / 2 if scale > 1 else 0.0
    while power_at(n, low) >= POWER:  # a spread far below 1: the root lies far below the first bracket
        scale, low = low, low / 2
    return float(optimize.brentq(lambda d: power_at(n, d) - POWER, low, scale, xtol=1e-12 + 1e-9 * scale))


def seeds_needed(power_at, difference: float):
    """The fewest seeds (a side) whose test detects `difference` with POWER, at least MIN_SEEDS;
    None for no difference, MAX_SEEDS + 1 where even MAX_SEEDS are not enough."""
    if difference == 0:
        return None
    if power_at(MAX_SEEDS, difference) < POWER:
        return MAX_SEEDS + 1
    low, high = 1, MAX_SEEDS  # power rises with n: bisect on the first n that reaches it
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (low, middle) if power_at(middle, difference) >= POWER else (middle, high)
    return max(MIN_SEEDS, high)


def paired_figures(diffs: list, alpha: float = ALPHA) -> tuple:
    """(detectable with PLANNED_SEEDS, seeds needed for the observed mean) of paired differences;
    (None, None) with fewer than two."""
    if len(diffs) < 2:
        return None, None
    mean, std = sum(diffs) / len(diffs), statistics.stdev(diffs)
    if std == 0:
        return 0.0, (None if mean == 0 else MIN_SEEDS)
    def power_at(n, d):
        return paired_power(n, d, std, alpha)
    return detectable(power_at), seeds_needed(power_at, mean)


def welch_figures(a: list, b: list, alpha: float = ALPHA) -> tuple:
    """(detectable with PLANNED_SEEDS a side, seeds a side needed for the observed mean(a) - mean(b));
    (None, None) unless both sides have two or more."""
    if len(a) < 2 or len(b) < 2:
        return None, None
    difference, std_a, std_b = sum(a) / len(a) - sum(b) / len(b), statistics.stdev(a), statistics.stdev(b)
    if std_a == std_b == 0:
        return 0.0, (None if difference == 0 else MIN_SEEDS)
    def power_at(n, d):
        return welch_power(n, d, std_a, std_b, alpha)
    return detectable(power_at), seeds_needed(power_at, difference)


def format_seeds(n) -> str:
    return "n/a" if n is None else f"more than {MAX_SEEDS}" if n > MAX_SEEDS else str(n)
