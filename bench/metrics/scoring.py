"""Metrics as functions of features, the cached real side, and the Scorer that ties them to extractors.

A metric maps (reference, generated features, extractor family) to Figures: a name, a value, an
optional spread, its direction and the settings that define it. The Scorer builds the extractor
(Inception, or the fd_domain classifier of a dataset), caches each reference's features and
statistics on disk (one computation per key, even across processes), and scores features.
"""
import io
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from bench.domain import DomainConfig, check_expected, file_name, load_classifier, save_classifier, train_pinned
from bench.metrics import frechet_inf, kernel, manifold
from bench.metrics.extractors import Extractor, domain_extractor, inception_extractor
from bench.metrics.frechet import frechet_distance_of, statistics
from svae.contract import frechet_inf_name, frechet_name, kernel_name
from svae.errors import HarnessError
from svae.io import atomic_write_bytes, cached
from svae.trainer import pick_device

BACKBONES = ("inception", "domain")
DATA_PREPROCESSING = "v1"  # the default dataset-preprocessing version in the reference's cache key


@dataclass(frozen=True)
class Figure:
    metric: str  # fid, fd_domain, fid_inf, fdinf_domain, kid, kd_domain, precision, recall, density, coverage
    value: float
    higher_is_better: bool
    std: float | None = None  # KID: the standard deviation over subsets
    settings: str = ""  # what else defines the figure, e.g. "subsets=100,subset_size=500"


@dataclass
class Reference:
    """Features and statistics of the first n images of a dataset split, and how they were measured."""
    features: np.ndarray  # N x D float64
    mu: np.ndarray
    sigma: np.ndarray
    dataset: str
    split: str
    n: int
    key: str  # the cache name: dataset, split, n, data preprocessing, extractor id
    _radii: dict = field(default_factory=dict, repr=False)  # k -> real k-NN radii (precision/recall)

    def radii(self, k: int, device) -> torch.Tensor:
        if k not in self._radii:
            feats = torch.as_tensor(self.features, dtype=torch.float64, device=device)
            self._radii[k] = manifold.kth_neighbour_radii(feats, k)
        return self._radii[k]


def reference_from_features(feats: np.ndarray, dataset="none", split="none", key="in-memory") -> Reference:
    mu, sigma = statistics(feats)
    return Reference(np.asarray(feats, np.float64), mu, sigma, dataset, split, len(feats), key)


# ---------------------------------------------------------------- metrics

def fid_figures(ref: Reference, fake: np.ndarray, family: str, device) -> list:
    return [Figure(frechet_name(family), frechet_distance_of(fake, ref.mu, ref.sigma), False)]


def fid_inf_figures(ref: Reference, fake: np.ndarray, family: str, device) -> list:
    value, sizes, _ = frechet_inf.fid_infinity(fake, ref.mu, ref.sigma)
    return [Figure(frechet_inf_name(family), value, False, None,
                   f"points={len(sizes)},sizes={sizes[0]}..{sizes[-1]},fit=linear-in-1/N,seed=0")]


def kid_figures(ref: Reference, fake: np.ndarray, family: str, device) -> list:
    mean, std, m = kernel.kid(ref.features, fake, device=device)
    return [Figure(kernel_name(family), mean, False, std, f"subsets={kernel.SUBSETS},subset_size={m},kernel=poly3")]


def pr_figures(ref: Reference, fake: np.ndarray, family: str, device) -> list:
    k = manifold.K
    found = manifold.precision_recall(ref.features, fake, k, ref.radii(k, device), device)
    return [Figure(name, value, True, None, f"k={k}") for name, value in found.items()]


@dataclass(frozen=True)
class Metric:
    """A metric as --metrics names it: its figures of generated features against a reference, and the
    names of those figures on an extractor family (the run-directory naming rule, svae/contract.py)."""
    figures: Callable  # (Reference, fake features, family, device) -> [Figure]
    names: Callable  # family -> (figure name, ...)


# name on the command line -> Metric; "pr" also gives density and coverage: same distances;
# "fidinf": FID at infinity (Chong & Forsyth 2020; bench/metrics/frechet_inf.py)
METRICS = {"fid": Metric(fid_figures, lambda family: (frechet_name(family),)),
           "fidinf": Metric(fid_inf_figures, lambda family: (frechet_inf_name(family),)),
           "kid": Metric(kid_figures, lambda family: (kernel_name(family),)),
           "pr": Metric(pr_figures, lambda family: ("precision", "recall", "density", "coverage"))}
DEFAULT_METRICS = ("fid", "kid", "pr")


def check_metrics(names) -> list:
    names = list(dict.fromkeys(names))
    unknown = [n for n in names if n not in METRICS]
    if unknown or not names:
        raise HarnessError(f"unknown metric {unknown[0]!r}; choose from {', '.join(METRICS)}" if unknown
                           else f"no metric asked for; choose from {', '.join(METRICS)}")
    return names


# ---------------------------------------------------------------- the cache

def _save_reference(ref: Reference, path):
    buffer = io.BytesIO()
    # float32 is exact: the features are a float32 network's outputs
    np.savez(buffer, features=ref.features.astype(np.float32), mu=ref.mu, sigma=ref.sigma, key=ref.key)
    atomic_write_bytes(path, buffer.getvalue())


def _load_reference(path, dataset, split, n, key) -> Reference:
    with np.load(path) as f:
        feats, mu, sigma, stored_key = f["features"], f["mu"], f["sigma"], str(f["key"])
    d = len(mu)
    if (stored_key != key or feats.shape != (n, d) or sigma.shape != (d, d)
            or not np.isfinite(sigma).all() or not np.isfinite(feats).all()):
        raise ValueError(f"its content is not the reference {key}")
    return Reference(feats.astype(np.float64), mu, sigma, dataset, split, n, key)


# ---------------------------------------------------------------- the scorer

class Scorer:
    """Features of images on one backbone ("inception": FID's; "domain": each dataset's classifier),
    references cached per dataset, split, n, data preprocessing and extractor id, and the metrics."""

    def __init__(self, backbone="inception", weights_path=None, device=None, batch_size=100, quantize=True,
                 cache_dir=None, data_root=None, download=False, domain_config=DomainConfig(), system_copy=None,  # noqa: B008 (frozen)
                 inception_threads=None):
        if backbone not in BACKBONES:
            raise HarnessError(f"unknown FID backbone {backbone!r}; choose inception or domain")
        self.backbone = backbone
        self.device = pick_device(device)
        self.batch_size, self.quantize, self.domain_config = batch_size, quantize, domain_config
        self.cache_dir = Path(cache_dir) if cache_dir is not None else None
        self.data_root, self.download, self.system_copy = data_root, download, system_copy
        self._extractors = {}  # dataset (None for Inception) -> Extractor
        self._references = {}  # cache key -> Reference, so a trial reads each file once
        if backbone == "inception":
            self._extractors[None] = inception_extractor(weights_path, self.device, batch_size, quantize,
                                                         threads=inception_threads)

    def extractor(self, dataset=None) -> Extractor:
        """Inception's extractor, or the dataset's classifier (trained once per cache folder)."""
        key = None if self.backbone == "inception" else dataset
        if key not in self._extractors:
            self._extractors[key] = domain_extractor(dataset, self._domain_net(dataset), self.device,
                                                     self.batch_size, self.quantize)
        return self._extractors[key]

    def _domain_net(self, dataset):
        def train():
            data = self._load(dataset, "train")
            return train_pinned(data.images, data.labels, self.domain_config)

        # a cached file whose weights are not the ones saved is retrained (cached warns)
        net = cached(self._cache_path(file_name(dataset, self.domain_config)), train, save_classifier,
                     load_classifier)
        check_expected(dataset, self.domain_config, net)
        return net

    def _cache_path(self, name):
        return self.cache_dir / name if self.cache_dir is not None else None

    def _load(self, dataset, split):
        from svae.data import load_images  # imported here: the loaders are only needed for references
        return load_images(dataset, split, root=self.data_root, download=self.download, system_copy=self.system_copy)

    def features(self, images, dataset=None) -> np.ndarray:
        """N x D float64 features of images (uint8, or floats in [0, 1]); dataset names the classifier."""
        return self.extractor(dataset).features(images)

    def reference(self, dataset, split, n, preprocessing=DATA_PREPROCESSING) -> Reference:
        """Features and statistics of the first n images of the split, computed once per cache folder.
        preprocessing: the version of the dataset's own preprocessing, part of the cache key."""
        extractor = self.extractor(dataset)
        key = f"{dataset}-{split}-n{n}-data{preprocessing}-{extractor.id.replace(':', '-')}"
        if key not in self._references:
            def compute():
                images = self._load(dataset, split).images
                if n > len(images):
                    raise HarnessError(f"{dataset} {split} has {len(images)} images, fewer than the {n} asked "
                                       f"for; ask for {len(images)} or fewer")
                return reference_from_features(extractor.features(images[:n]), dataset, split, key)

            self._references[key] = cached(self._cache_path(f"reference-{key}.npz"), compute, _save_reference,
                                           lambda path: _load_reference(path, dataset, split, n, key))
        return self._references[key]

    def score(self, fake: np.ndarray, ref: Reference, metrics=("fid",)) -> list:
        """The Figures of generated features against a reference, metric by metric."""
        family = self.extractor(ref.dataset).family
        return [figure for name in check_metrics(metrics)
                for figure in METRICS[name].figures(ref, fake, family, self.device)]

    def distance(self, images, ref: Reference) -> float:
        """The Frechet distance between images and ref on this backbone (FID, or fd_domain)."""
        return self.score(self.features(images, ref.dataset), ref, ["fid"])[0].value
