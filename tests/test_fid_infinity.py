"""FID at infinity (Chong & Forsyth 2020) on Gaussian features whose Frechet distance is known in closed form."""
import numpy as np
import pytest

from bench.metrics import (
    METRICS,
    check_metrics,
    frechet_distance,
    reference_from_features,
    statistics,
)
from bench.metrics.frechet_inf import fid_infinity, subset_sizes
from svae.errors import HarnessError

D = 64


def gaussian_case(seed):
    """Real side: N(0, I) with its population statistics; generated: 1,000 draws of N(m, diag(s)).
    The true distance is |m|^2 + sum(1 + s - 2 sqrt(s)), from the formula, not from the code under test."""
    rng = np.random.default_rng(100)
    s, m = rng.uniform(0.3, 2.0, D), np.full(D, 0.05)
    true = float(m @ m + np.sum(1 + s - 2 * np.sqrt(s)))
    fake = m + np.random.default_rng(seed).normal(size=(1000, D)) * np.sqrt(s)
    return fake, true


def test_fid_infinity_removes_most_of_the_one_over_n_bias():
    at_n, at_inf = [], []
    for seed in range(4):
        fake, true = gaussian_case(seed)
        at_n.append(frechet_distance(*statistics(fake), np.zeros(D), np.eye(D)) - true)
        at_inf.append(fid_infinity(fake, np.zeros(D), np.eye(D), seed=seed)[0] - true)
    assert min(at_n) > 0.5  # FID at N = 1,000 overstates the true distance (~4.3) by about a quarter
    assert np.mean(np.abs(at_inf)) < 0.3 * np.mean(at_n), (at_n, at_inf)  # measured: 0.11 against 1.13


def test_the_fit_is_over_subsets_from_a_fifth_to_all_the_samples():
    sizes = subset_sizes(10000)
    assert len(sizes) == 15 and sizes[0] == 2000 and sizes[-1] == 10000
    with pytest.raises(HarnessError, match="at least 3"):
        subset_sizes(2)


def test_fid_inf_is_a_registered_metric_beside_fid():
    fake, _ = gaussian_case(0)
    reference = reference_from_features(np.random.default_rng(1).normal(size=(1000, D)))
    figures = {f.metric: f for name in check_metrics(["fid", "fidinf"])
               for f in METRICS[name].figures(reference, fake, "inception", "cpu")}
    assert set(figures) == {"fid", "fid_inf"} and not figures["fid_inf"].higher_is_better
    assert "points=15" in figures["fid_inf"].settings
    assert figures["fid_inf"].value < figures["fid"].value  # the bias is removed from the same features
    domain = METRICS["fidinf"].figures(reference, fake, "domain", "cpu")[0]
    assert domain.metric == "fdinf_domain" and domain.value == figures["fid_inf"].value
    assert METRICS["fidinf"].names("domain") == ("fdinf_domain",)  # bench.rescore expects these names
