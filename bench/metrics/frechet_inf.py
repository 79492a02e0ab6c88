"""FID at infinity (Chong & Forsyth, "Effectively Unbiased FID and Inception Score and where to find
them", CVPR 2020): FID at N samples is, to first order, FID_inf + k / N with a k that depends on the
model, so comparisons at a small N can misorder models. Their estimate: FID of random subsets of the
generated features at several sizes, a least-squares line in 1/N, its value at 1/N = 0.

As in their code (mchong6/FID_Infinity, calculate_FID_infinity): 15 sizes evenly spaced from a tenth
of the samples (their 5,000 of 50,000; here a fifth, as 10,000 samples leave fewer to spread) to all of
them, one random subset each, the real side's statistics fixed. Only features are resampled: no
extra network passes.
"""
import numpy as np

from bench.metrics.frechet import frechet_distance_of
from svae.errors import HarnessError

POINTS = 15
SMALLEST_SHARE = 0.2


def subset_sizes(n: int, points: int = POINTS, smallest_share: float = SMALLEST_SHARE) -> np.ndarray:
    sizes = np.unique(np.linspace(max(2, int(n * smallest_share)), n, points).astype(int))
    if len(sizes) < 2:
        raise HarnessError(f"FID at infinity needs at least 3 generated images to fit a line (got {n})")
    return sizes


def fid_infinity(fake: np.ndarray, mu_real, sigma_real, seed: int = 0, points: int = POINTS):
    """(FID_inf, sizes, FID at each size): the intercept of the least-squares line of FID against 1/N."""
    fake = np.asarray(fake, np.float64)
    sizes = subset_sizes(len(fake), points)
    rng = np.random.default_rng(seed)
    fids = np.array([frechet_distance_of(fake[rng.permutation(len(fake))[:n]], mu_real, sigma_real)
                     for n in sizes])
    _slope, intercept = np.polyfit(1.0 / sizes, fids, 1)
    return float(intercept), sizes, fids
