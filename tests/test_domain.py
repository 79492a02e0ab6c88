"""The fd_domain classifier (bench/domain.py): 128-d penultimate features, and the same weights on
every machine: trained deterministically, whatever the thread count or the instruction sets the CPU
offers, its cached weights hash-checked, and a classifier whose weights differ from the ones this
project recorded named in a warning."""
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import torch

import bench.domain
from bench.domain import DOMAIN_VERSION, DomainConfig, file_name, state_hash, train_classifier, train_pinned
from bench.metrics.extractors import domain_extractor
from bench.metrics.scoring import Scorer
from svae.data import make_synthetic

ROOT = Path(__file__).resolve().parents[1]
SMALL = DomainConfig(epochs=1, train_n=None, batch_size=64)
TRAIN_AND_HASH = """
import sys, torch
torch.set_num_threads(int(sys.argv[1]))
from bench.domain import DomainConfig, state_hash, train_classifier
from svae.data import make_synthetic
data = make_synthetic(640, seed=1)
net = train_classifier(data.images, data.labels, DomainConfig(epochs=1, train_n=None, batch_size=64))
assert torch.get_num_threads() == int(sys.argv[1])  # the caller's setting is back
print(state_hash(net))
"""


def train_in_a_process(threads: int) -> str:
    out = subprocess.run([sys.executable, "-c", TRAIN_AND_HASH, str(threads)], cwd=ROOT, capture_output=True,
                         text=True, timeout=300, check=False, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout.strip()


def test_the_classifier_trains_to_the_same_weights_whatever_the_thread_count():
    # without deterministic_cpu, 3 threads gave other weights than 1 (measured on the 2-core CI box)
    one, three = train_in_a_process(1), train_in_a_process(3)
    assert len(one) == 16 and one == three


def test_the_pinned_classifier_has_the_same_weights_whatever_kernels_the_cpu_offers(monkeypatch):
    # ATEN_CPU_CAPABILITY stands in for CPUs with and without AVX2: unpinned, these weights differ (measured).
    # MKL's half (MKL_CBWR) rests on MKL's documented guarantee: its instruction sets gave equal weights here.
    data = make_synthetic(1280, seed=1)
    trained = []
    for capability in ("default", "avx2"):
        monkeypatch.setenv("ATEN_CPU_CAPABILITY", capability)
        trained.append(state_hash(train_pinned(data.images, data.labels, SMALL)))
    assert trained[0] == trained[1]
    if torch.backends.cpu.get_cpu_capability() != "DEFAULT":  # this process runs vector kernels: its weights differ
        assert state_hash(train_classifier(data.images, data.labels, SMALL)) != trained[0]


def test_fd_domain_features_are_the_128_d_penultimate_layer():
    data = make_synthetic(128, seed=2)
    net = train_classifier(data.images, data.labels, SMALL)
    extractor = domain_extractor("synthetic", net)
    feats = extractor.features(data.images[:10])
    assert feats.shape == (10, 128)  # not the 4 class logits
    with torch.inference_mode():
        pooled = net.body(2 * data.images[:10].float() / 255 - 1)  # the layer before the head
    assert torch.allclose(torch.from_numpy(feats).float(), pooled, atol=1e-6)
    assert extractor.name == f"domain-synthetic-{DOMAIN_VERSION}" and DOMAIN_VERSION != "v1"
    assert extractor.id.endswith(state_hash(net))


def test_cached_classifier_is_reused_and_a_tampered_one_retrained(tmp_path, monkeypatch):
    data = make_synthetic(256, seed=3)
    scorer = Scorer(backbone="domain", cache_dir=tmp_path, domain_config=SMALL)
    monkeypatch.setattr(scorer, "_load", lambda dataset, split: data)
    first = scorer.extractor("synthetic").weights_hash
    [cache] = tmp_path.glob("domain-synthetic-*.pt")
    saved = torch.load(cache, weights_only=True)
    saved["state_dict"]["head.bias"] += 1  # weights that are not the ones whose hash was saved
    torch.save(saved, cache)
    again = Scorer(backbone="domain", cache_dir=tmp_path, domain_config=SMALL)
    monkeypatch.setattr(again, "_load", lambda dataset, split: data)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert again.extractor("synthetic").weights_hash == first  # retrained deterministically
    assert any("weights hash" in str(w.message) for w in caught)


@pytest.mark.parametrize("field, value", [("version", "v1"), ("seed", 1)])
def test_the_cache_file_names_the_version_and_settings(field, value):
    assert DomainConfig(**{field: value}).tag() != DomainConfig().tag()


def test_a_classifier_with_other_weights_than_the_projects_warns(tmp_path, monkeypatch):
    data = make_synthetic(256, seed=3)
    trained = state_hash(train_pinned(data.images, data.labels, SMALL))
    for expected, warns in ((trained, False), ("0" * 16, True)):
        monkeypatch.setitem(bench.domain.EXPECTED, file_name("synthetic", SMALL), expected)
        scorer = Scorer(backbone="domain", cache_dir=tmp_path, domain_config=SMALL)
        monkeypatch.setattr(scorer, "_load", lambda dataset, split: data)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            assert scorer.extractor("synthetic").weights_hash == trained  # used all the same
        said = [str(w.message) for w in caught if "not comparable with the published" in str(w.message)]
        assert bool(said) == warns and all(f"not this project's {expected}" in m for m in said)
