"""KID and precision/recall/density/coverage against torch-fidelity and prdc, their fixed points, and
the mix features assembled from x1's and x2's."""
import numpy as np
import pytest
import torch

from bench.metrics import reference_from_features
from bench.metrics.kernel import kid
from bench.metrics.manifold import precision_recall
from bench.cost.perf import random_images
from bench.trial import output_features
from tests.fid_helpers import engine, inception_weights  # noqa: F401
from svae.samplers import mix_halves

torch_fidelity_kid = pytest.importorskip("torch_fidelity.metric_kid")
torch_fidelity_prc = pytest.importorskip("torch_fidelity.metric_prc")
prdc = pytest.importorskip("prdc")


def _sets(n_real, n_fake, d=16, shift=0.3, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n_real, d)), rng.standard_normal((n_fake, d)) * 1.2 + shift


@pytest.mark.parametrize("n_real, n_fake, subset_size", [(120, 90, 50), (60, 60, 1000), (40, 70, 1000)])
def test_kid_equals_torch_fidelity(n_real, n_fake, subset_size):
    real, fake = _sets(n_real, n_fake)
    mean, std, m = kid(real, fake, subsets=20, subset_size=subset_size)
    assert m == min(subset_size, n_real, n_fake)  # clamped where torch-fidelity would refuse
    expected = torch_fidelity_kid.kid_features_to_metric(
        torch.from_numpy(fake), torch.from_numpy(real), kid_subsets=20, kid_subset_size=m, verbose=False)
    assert mean == pytest.approx(expected["kernel_inception_distance_mean"], rel=1e-10)
    assert std == pytest.approx(expected["kernel_inception_distance_std"], rel=1e-8, abs=1e-15)
    assert mean > 0.01


def test_kid_of_a_set_against_itself_is_near_zero_and_unbiased():
    real, fake = _sets(200, 200)
    itself = kid(real, real, subsets=10, subset_size=1000)[0]
    # closed form for X = Y: the cross term keeps the diagonal that the within terms leave out
    k = (real @ real.T / real.shape[1] + 1) ** 3
    m, diagonal, off = len(real), np.trace(k), k.sum() - np.trace(k)
    assert itself == pytest.approx(2 * off / (m * (m - 1)) - 2 * (off + diagonal) / m ** 2, rel=1e-10)
    assert abs(itself) < 0.2 * kid(real, fake)[0]  # near 0 beside a real difference (a 0.3 sd shift)
    # two samples of one distribution: unbiased, so the mean over subsets straddles 0 closely
    a, b = np.random.default_rng(1).standard_normal((2, 400, 16))
    mean, std, _ = kid(a, b, subsets=50, subset_size=100)
    assert abs(mean) < 3 * std / np.sqrt(50) + 1e-3


def test_precision_recall_density_coverage_equal_torch_fidelity_and_prdc(capsys):
    real, fake = _sets(80, 60)
    ours = precision_recall(real, fake, k=3)
    precision, recall = torch_fidelity_prc.calculate_precision_recall_full(
        torch.from_numpy(fake), torch.from_numpy(real), neighborhood=3)
    # torch-fidelity averages in float32; a share of 60 or 80 moves in steps of 1/80, far above 1e-6
    assert ours["precision"] == pytest.approx(precision, abs=1e-6)
    assert ours["recall"] == pytest.approx(recall, abs=1e-6)
    expected = prdc.compute_prdc(real, fake, nearest_k=3)
    for name in ("precision", "recall", "density", "coverage"):
        assert ours[name] == pytest.approx(expected[name], abs=1e-12), name
    assert 0 < ours["precision"] < 1 and 0 < ours["recall"] < 1  # the sets differ: a real comparison


def test_precision_recall_brute_force_on_a_hand_sized_set():
    real = np.array([[0.0], [1.0], [2.0], [3.0], [10.0]])
    fake = np.array([[0.5], [2.5], [20.0], [21.0], [22.0]])
    # k=1 radii: real 1,1,1,1,7 ; fake 2,2,1,1,1 (worked by hand)
    found = precision_recall(real, fake, k=1)
    assert found["precision"] == pytest.approx(2 / 5)  # 0.5 and 2.5 fall in real balls; 20-22 do not
    assert found["recall"] == pytest.approx(4 / 5)  # 0,1,2,3 lie within 2 of 0.5 or 2.5; 10 is 8 from any
    assert found["density"] == pytest.approx((2 + 2) / 5)  # 0.5 in balls of 0 and 1; 2.5 in 2 and 3
    assert found["coverage"] == pytest.approx(4 / 5)


def test_identical_sets_have_precision_and_recall_one():
    real, _ = _sets(50, 1)
    found = precision_recall(real, real.copy())
    assert found["precision"] == 1.0 and found["recall"] == 1.0 and found["coverage"] == 1.0


def test_mix_features_equal_the_features_of_the_mixed_images(engine):
    outputs = {"x_hat": random_images(9, 1, 32, seed=1).float() / 255,
               "x1": random_images(9, 1, 32, seed=2).float() / 255,
               "x2": random_images(9, 1, 32, seed=3, shift=0.2).float() / 255}
    outputs["mix"] = mix_halves(outputs["x1"], outputs["x2"])
    passes = []
    extractor = engine.extractor()
    counting = type("Counting", (), {"features": lambda self, images: passes.append(1) or extractor.features(images)})
    feats = output_features(counting(), outputs, ("x_hat", "x1", "x2", "mix"))
    assert len(passes) == 3 and list(feats) == ["x_hat", "x1", "x2", "mix"]
    direct = extractor.features(outputs["mix"])
    np.testing.assert_allclose(feats["mix"], direct, rtol=1e-5, atol=1e-6 * np.abs(direct).max())
    assert not np.allclose(feats["x1"], feats["x2"])  # the halves come from different sets


def test_scorer_figures_names_and_directions(engine):
    real = engine.features(random_images(12, 3, 32, seed=4))
    fake = engine.features(random_images(12, 3, 32, seed=5, shift=0.2))
    figures = engine.score(fake, reference_from_features(real), ["fid", "kid", "pr"])
    assert [(f.metric, f.higher_is_better) for f in figures] == [
        ("fid", False), ("kid", False), ("precision", True), ("recall", True), ("density", True),
        ("coverage", True)]
    assert figures[1].settings == "subsets=100,subset_size=12,kernel=poly3" and figures[1].std == 0.0
