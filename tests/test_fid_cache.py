"""Cached references (real features and statistics), shared between processes, and the fd_domain backbone."""
import multiprocessing
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import pytest
import torch

from bench.domain import DomainConfig
from bench.metrics import Scorer
from tests.fid_helpers import inception_weights, reference_in_child  # noqa: F401
from svae.data import load_images
from svae.errors import HarnessError


def _counting_loads(monkeypatch):
    calls = []
    load = Scorer._load

    def counted(self, dataset, split):
        calls.append((dataset, split))
        return load(self, dataset, split)

    monkeypatch.setattr(Scorer, "_load", counted)
    return calls


def test_second_evaluation_computes_no_real_statistics(inception_weights, tmp_path, monkeypatch):
    calls = _counting_loads(monkeypatch)
    first = Scorer(weights_path=inception_weights, cache_dir=tmp_path, device="cpu").reference("synthetic", "test", 10)
    assert len(calls) == 1
    engine = Scorer(weights_path=inception_weights, cache_dir=tmp_path, device="cpu")  # a new trial, same cache
    again = engine.reference("synthetic", "test", 10)
    engine.reference("synthetic", "test", 10)
    assert len(calls) == 1
    np.testing.assert_array_equal(first.mu, again.mu)
    np.testing.assert_array_equal(first.sigma, again.sigma)
    assert engine.extractor().weights_hash in again.key and "n10-datav1-inception-fid-v1-q255" in again.key
    assert again.features.shape == (10, 2048)
    np.testing.assert_allclose(again.mu, again.features.mean(axis=0), rtol=1e-12)


def test_corrupt_cache_file_is_rebuilt_with_a_warning(inception_weights, tmp_path, monkeypatch):
    first = Scorer(weights_path=inception_weights, cache_dir=tmp_path, device="cpu").reference("synthetic", "test", 6)
    [path] = tmp_path.glob("reference-*.npz")
    path.write_bytes(path.read_bytes()[:300])  # torn
    calls = _counting_loads(monkeypatch)
    with pytest.warns(UserWarning, match="corrupt"):
        rebuilt = Scorer(weights_path=inception_weights, cache_dir=tmp_path, device="cpu").reference(
            "synthetic", "test", 6)
    assert len(calls) == 1
    np.testing.assert_allclose(rebuilt.sigma, first.sigma, rtol=1e-12, atol=0)
    calls.clear()
    Scorer(weights_path=inception_weights, cache_dir=tmp_path, device="cpu").reference("synthetic", "test", 6)
    assert calls == []  # the rebuilt file is whole


def test_two_processes_compute_a_key_once(inception_weights, tmp_path):
    log = tmp_path / "loads.log"
    spawn = multiprocessing.get_context("spawn")
    with spawn.Manager() as manager, ProcessPoolExecutor(2, mp_context=spawn) as pool:
        barrier = manager.Barrier(2)
        futures = [pool.submit(reference_in_child, inception_weights, tmp_path / "cache", log, barrier)
                   for _ in range(2)]
        mus = [f.result(timeout=300) for f in futures]
    assert log.read_text().count("load") == 1
    np.testing.assert_array_equal(mus[0], mus[1])


def test_more_images_than_the_split_holds_is_an_error(inception_weights):
    engine = Scorer(weights_path=inception_weights, device="cpu")
    with pytest.raises(HarnessError, match="has 500 images"):
        engine.reference("synthetic", "test", 501)


# ---------------------------------------------------------------- fd_domain

@pytest.mark.slow
def test_domain_backbone_on_fashion_mnist(tmp_path):
    engine = Scorer(backbone="domain", cache_dir=tmp_path, domain_config=DomainConfig(train_n=30000, epochs=2))
    extractor = engine.extractor("fashion-mnist")
    assert extractor.name == "domain-fashion-mnist-v3" and extractor.family == "domain"
    test = load_images("fashion-mnist", "test")
    net = extractor.forward.__self__  # the classifier whose features the extractor gives
    with torch.inference_mode():
        accuracy = (net(test.images.float() / 255).argmax(1) == test.labels).float().mean().item()
    print(f"fd_domain classifier: Fashion-MNIST test accuracy {accuracy:.3f}")
    assert accuracy > 0.8

    ref = engine.reference("fashion-mnist", "test", 2000)
    train = load_images("fashion-mnist", "train").images[-2000:]  # images the classifier never saw
    noise = torch.rand(2000, 1, 32, 32, generator=torch.Generator().manual_seed(0))
    fd_train, fd_noise = engine.distance(train, ref), engine.distance(noise, ref)
    print(f"fd_domain(train, test) {fd_train:.4g}, fd_domain(noise, test) {fd_noise:.4g}")
    assert fd_train < 0.02 * fd_noise
    names = [f.metric for f in engine.score(engine.features(noise[:50], "fashion-mnist"), ref, ["fid", "kid"])]
    assert names == ["fd_domain", "kd_domain"]  # never fid, never kid

    # a second engine on the same cache reuses the classifier: same weights, same hash
    again = Scorer(backbone="domain", cache_dir=tmp_path, domain_config=DomainConfig(train_n=30000, epochs=2))
    assert again.extractor("fashion-mnist").id == extractor.id
