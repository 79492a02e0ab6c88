"""The Frechet distance (FID on Inception features, fd_domain on the domain classifier's), in float64.

Two steps, each usable alone, as in pytorch-fid: statistics (mean and covariance) and distance.
"""
import numpy as np
import torch

from svae.errors import HarnessError


def statistics(feats: np.ndarray):
    """Mean and covariance in float64, as pytorch-fid's calculate_activation_statistics."""
    feats = np.asarray(feats, dtype=np.float64)
    if len(feats) < 2:
        raise HarnessError(f"a Frechet distance needs at least 2 images per set (got {len(feats)})")
    return feats.mean(axis=0), np.cov(feats, rowvar=False)


def _psd_factor(sigma: torch.Tensor) -> torch.Tensor:
    """C with C C^T = sigma. Cholesky when sigma is positive definite; otherwise (fewer samples than
    dimensions) an eigen-factor with round-off negatives clipped. That is exact for a singular sigma and
    agrees with pytorch-fid's sqrtm to ~1e-7, where pytorch-fid's fallback of a 1e-6 diagonal offset
    would move FID by up to ~1e-4 (relative) at small N."""
    factor, info = torch.linalg.cholesky_ex(sigma)
    if info == 0:
        return factor
    w, v = torch.linalg.eigh(sigma)
    return v * w.clamp(min=0).sqrt()


def frechet_distance_of(feats: np.ndarray, mu2, sigma2) -> float:
    """frechet_distance(*statistics(feats), mu2, sigma2). With no more images than dimensions, the
    centred features over sqrt(N - 1) are an exact factor C of their covariance (C C^T = np.cov): an
    N x N eigenvalue problem then replaces the d x d factorisation (2048-d FID of 16 images, as the
    tests score, takes milliseconds instead of seconds; a 10,000-image FID is as before)."""
    mu1, sigma1 = statistics(feats)
    few = len(feats) <= len(mu1)
    factor = (np.asarray(feats, np.float64) - mu1).T / np.sqrt(len(feats) - 1) if few else None
    return frechet_distance(mu1, sigma1, mu2, sigma2, factor)


def frechet_distance(mu1, sigma1, mu2, sigma2, factor1=None) -> float:
    """||mu1 - mu2||^2 + Tr(S1 + S2 - 2 sqrt(S1 S2)), in float64.

    With S1 = C C^T, S1 S2 is similar to the symmetric positive semi-definite C^T S2 C, so
    Tr sqrt(S1 S2) is the sum of the square roots of its eigenvalues: one Cholesky and one symmetric
    eigenvalue problem instead of scipy's sqrtm (over 5x faster at 2048-d, same figure to ~1e-12;
    python -m bench.cost.perf fid). torch's LAPACK (MKL) is used rather than NumPy's OpenBLAS, whose
    threads slow down several-fold when other processes share the cores. factor1: such a C (d x k)
    when one is at hand (frechet_distance_of).
    """
    mu1, mu2 = np.atleast_1d(np.asarray(mu1, np.float64)), np.atleast_1d(np.asarray(mu2, np.float64))
    s1, s2 = np.atleast_2d(np.asarray(sigma1, np.float64)), np.atleast_2d(np.asarray(sigma2, np.float64))
    d = len(mu1)
    if mu2.shape != (d,) or s1.shape != (d, d) or s2.shape != (d, d):
        raise HarnessError(f"statistics do not match: means {mu1.shape} and {mu2.shape}, "
                           f"covariances {s1.shape} and {s2.shape}; compare figures from the same backbone")
    if not all(np.isfinite(a).all() for a in (mu1, mu2, s1, s2)):
        raise HarnessError("the statistics contain NaN or infinity; check the images for NaN")
    t1, t2 = torch.from_numpy(np.ascontiguousarray(s1)), torch.from_numpy(np.ascontiguousarray(s2))
    c = _psd_factor(t1) if factor1 is None else torch.from_numpy(np.ascontiguousarray(factor1, np.float64))
    tr_covmean = torch.linalg.eigvalsh(c.T @ t2 @ c).clamp(min=0).sqrt().sum().item()
    diff = mu1 - mu2
    fid = float(diff @ diff + np.trace(s1) + np.trace(s2) - 2 * tr_covmean)
    if not np.isfinite(fid):
        raise HarnessError(f"the Frechet distance is not finite ({fid}); the statistics overflow float64")
    return fid
