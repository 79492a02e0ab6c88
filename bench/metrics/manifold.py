"""Precision and recall (Kynkaanniemi et al., NeurIPS 2019) and density and coverage (Naeem et al.,
ICML 2020), with k = 3 nearest neighbours, from one set of pairwise distances.

A real image's ball reaches its k-th nearest real neighbour (itself excluded), a generated image's
its k-th nearest generated one. Precision: the share of generated images inside some real ball;
recall: the share of real images inside some generated ball (both with <=, as Kynkaanniemi et al.'s
code and torch-fidelity). Density: real balls holding each generated image, over k, averaged;
coverage: the share of real balls holding some generated image (both with <, as the prdc package).
Written here rather than called from torch-fidelity (precision and recall only) and prdc (which prints
on every call and measures each distance matrix again), against both of which tests/test_metrics.py
checks it; the real radii depend only on the reference and are computed once per reference.
"""
import numpy as np
import torch

from svae.errors import HarnessError

K = 3


def kth_neighbour_radii(feats: torch.Tensor, k: int = K) -> torch.Tensor:
    """Distance from each row to its k-th nearest other row (the row itself, at 0, is the first)."""
    if len(feats) <= k:
        raise HarnessError(f"precision and recall with k={k} need more than {k} images per set (got {len(feats)})")
    return torch.cdist(feats, feats).kthvalue(k + 1, dim=1).values


def precision_recall(real: np.ndarray, fake: np.ndarray, k: int = K, real_radii=None, device="cpu") -> dict:
    """{precision, recall, density, coverage}; real_radii: kth_neighbour_radii of real, when known."""
    r = torch.as_tensor(np.asarray(real), dtype=torch.float64, device=device)
    f = torch.as_tensor(np.asarray(fake), dtype=torch.float64, device=device)
    real_radii = kth_neighbour_radii(r, k) if real_radii is None else real_radii.to(device)
    fake_radii = kth_neighbour_radii(f, k)
    d = torch.cdist(r, f)  # real x generated
    inside_real = d <= real_radii[:, None]
    return {"precision": inside_real.any(dim=0).double().mean().item(),
            "recall": (d <= fake_radii[None, :]).any(dim=1).double().mean().item(),
            "density": (d < real_radii[:, None]).sum(dim=0).double().mean().item() / k,
            "coverage": (d.min(dim=1).values < real_radii).double().mean().item()}
