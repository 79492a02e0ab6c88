"""KID: the unbiased MMD^2 of Binkowski et al. (ICLR 2018) with the cubic polynomial kernel
k(x, y) = (x.y / d + 1)^3, averaged over random subsets of both sets.

Written here rather than called from torch-fidelity (kid_features_to_metric), against which
tests/test_metrics.py checks it figure for figure, because torch-fidelity refuses sets smaller than the
subset size where we clamp it (and report the size used), and recomputes an identical MMD once per
subset when the subsets are whole sets; this runs in float64 on the scoring device. The subsets are
drawn as torch-fidelity draws them (numpy RandomState(2020), generated set first), so the two agree.
"""
import numpy as np
import torch

from svae.errors import HarnessError

SUBSETS = 100  # torch-fidelity's and Binkowski et al.'s defaults
SUBSET_SIZE = 1000
SEED = 2020


def polynomial_kernel(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return (x @ y.T / x.shape[1] + 1) ** 3


def mmd2_unbiased(x: torch.Tensor, y: torch.Tensor) -> float:
    """The unbiased estimator: the within-set sums leave out the diagonal, the cross term keeps it."""
    m = len(x)
    kxx, kyy, kxy = polynomial_kernel(x, x), polynomial_kernel(y, y), polynomial_kernel(x, y)
    within = (kxx.sum() - kxx.diagonal().sum()) + (kyy.sum() - kyy.diagonal().sum())
    return float(within / (m * (m - 1)) - 2 * kxy.sum() / (m * m))


def kid(real: np.ndarray, fake: np.ndarray, subsets: int = SUBSETS, subset_size: int = SUBSET_SIZE,
        seed: int = SEED, device="cpu") -> tuple:
    """(mean, std over subsets, subset size used): the size is clamped to the smaller set."""
    m = min(subset_size, len(real), len(fake))
    if m < 2:
        raise HarnessError(f"KID needs at least 2 images per set (got {len(fake)} generated, {len(real)} real)")
    x = torch.as_tensor(np.asarray(fake), dtype=torch.float64, device=device)
    y = torch.as_tensor(np.asarray(real), dtype=torch.float64, device=device)
    if m == len(x) == len(y):  # every subset is both whole sets, reordered: the same MMD each time
        return mmd2_unbiased(x, y), 0.0, m
    rng = np.random.RandomState(seed)
    mmds = []
    for _ in range(subsets):
        fake_idx = torch.from_numpy(rng.choice(len(x), m, replace=False)).to(device)
        real_idx = torch.from_numpy(rng.choice(len(y), m, replace=False)).to(device)
        mmds.append(mmd2_unbiased(x[fake_idx], y[real_idx]))
    return float(np.mean(mmds)), float(np.std(mmds)), m
