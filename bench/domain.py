"""The fd_domain backbone: a small classifier trained on a dataset's own labels.

It gives an offline Frechet distance for smoke runs and monitoring when the Inception weights are
not at hand. Its figures are fd_domain, never FID: they are not comparable with any published
number, nor across datasets (each dataset has its own classifier).

Its features are the 128-d penultimate layer (globally pooled), not the class logits. The classifier
is pinned per dataset and DOMAIN_VERSION: it trains on the CPU with a fixed seed, one thread and
torch's deterministic algorithms, in a process of its own started under PINNED_ENV (train_pinned), so
the same data and version give the same weights (the same `state_hash`) whatever vector instructions
the CPU offers: ATen's are switched off, and MKL promises the same results on every Intel or compatible
CPU in its reproducible mode (checked here on one AMD EPYC, against ATen's AVX2 kernels). Training is
chaotic: the vectorised kernels of another instruction set round differently, and after 47 steps the
weights differed by up to 0.05 (ATen's AVX2 kernels against its scalar ones; float64 did no better).
The cached weights carry their hash, which is checked on every load, and the hash is part of every
figure's extractor id. EXPECTED records the hashes of this project's classifiers of MNIST and
Fashion-MNIST: one that comes out otherwise (another torch or MKL build, another CPU) is used, with a warning
that its figures are not comparable with the published ones.
"""
import contextlib
import hashlib
import math
import os
import subprocess
import sys
import tempfile
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from svae.errors import HarnessError
from svae.io import atomic_torch_save

# v1: the classifier's logits as features, trained with the process's thread count (until 2026-12);
# v2: its 128-d penultimate features, trained deterministically for any thread count (the CPU's
# instruction set still changed its weights); v3: trained under PINNED_ENV. Figures of two versions never mix.
DOMAIN_VERSION = "v3"
# Read by ATen and MKL when a process starts: ATen's scalar kernels (not its AVX2 or AVX-512 ones), MKL's
# conditional numerical reproducibility (the same results on every Intel or compatible CPU), one thread.
PINNED_ENV = {"ATEN_CPU_CAPABILITY": "default", "MKL_CBWR": "COMPATIBLE", "OMP_NUM_THREADS": "1",
              "MKL_NUM_THREADS": "1"}
# file (domain-<dataset>-<DomainConfig.tag()>.pt, as the cache names it) -> its weights' state_hash, as
# train_pinned made them (torch 2.14.1 from PyPI, 2026-12-06)
EXPECTED = {"domain-mnist-ce255e54.pt": "93abab04f5c9fd83", "domain-fashion-mnist-ce255e54.pt": "a31098d6916e2be7"}


@dataclass(frozen=True)
class DomainConfig:
    version: str = DOMAIN_VERSION
    epochs: int = 2
    train_n: int | None = 50000  # the first train_n training images (None: all); ~85 s at 32 px pinned, on 2 busy cores
    batch_size: int = 128
    lr: float = 2e-3
    seed: int = 0

    def tag(self) -> str:
        """A short name for the cache file: every setting changes the classifier."""
        return hashlib.sha256(repr(sorted(asdict(self).items())).encode()).hexdigest()[:8]


def _block(c_in, c_out):
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, stride=2, padding=1, bias=False),
                         nn.BatchNorm2d(c_out), nn.ReLU(inplace=True))


class DomainNet(nn.Module):
    """Stride-2 conv blocks down to 4x4, global average pooling: 128-d features, then a linear head."""

    def __init__(self, channels: int, size: int, num_outputs: int):
        super().__init__()
        self.args = [channels, size, num_outputs]  # saved with the weights, to rebuild the network
        widths = [channels, 32, 64] + [128] * (int(math.log2(size)) - 4)  # 32 px: 3 blocks, 64 px: 4
        self.body = nn.Sequential(*[_block(a, b) for a, b in zip(widths, widths[1:])],
                                  nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.head = nn.Linear(widths[-1], num_outputs)

    def features(self, x):
        """x: floats in [0, 1], N x C x H x W."""
        return self.body(2 * x - 1)

    def forward(self, x):
        return self.head(self.features(x))


def train_classifier(images: torch.Tensor, labels: torch.Tensor, config: DomainConfig) -> DomainNet:
    """Train on uint8 images with class labels (N) or binary attributes (N x K, CelebA's 40)."""
    if config.train_n is not None:
        images, labels = images[:config.train_n], labels[:config.train_n]
    multi_label = labels.ndim == 2
    num_outputs = labels.shape[1] if multi_label else int(labels.max()) + 1
    with torch.random.fork_rng(), deterministic_cpu():  # seeded, without disturbing the caller's state
        torch.manual_seed(config.seed)
        net = DomainNet(images.shape[1], images.shape[2], num_outputs)
        optimizer = torch.optim.Adam(net.parameters(), lr=config.lr)
        net.train()
        for _ in range(config.epochs):
            for idx in torch.randperm(len(images)).split(config.batch_size):
                logits = net(images[idx].float() / 255)
                target = labels[idx]
                loss = (F.binary_cross_entropy_with_logits(logits, target.float()) if multi_label
                        else F.cross_entropy(logits, target))
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
    return net.eval()


def train_pinned(images: torch.Tensor, labels: torch.Tensor, config: DomainConfig) -> DomainNet:
    """train_classifier in a process of its own under PINNED_ENV (ATen and MKL read it only at a process's
    start), so the weights do not depend on the CPU's instruction set; about 2.5x slower than in-process."""
    if config.train_n is not None:
        images, labels = images[:config.train_n], labels[:config.train_n]
    images, labels = images.clone(), labels.clone()  # a slice would save its whole storage
    with tempfile.TemporaryDirectory(prefix="svae-bench-domain-") as folder:
        given, trained = Path(folder) / "given.pt", Path(folder) / "trained.pt"
        torch.save({"images": images, "labels": labels, "config": asdict(config)}, given)
        done = subprocess.run([sys.executable, "-m", "bench.domain", str(given), str(trained)],
                              env={**os.environ, **PINNED_ENV}, capture_output=True, text=True, check=False)
        if done.returncode < 0:
            raise HarnessError(f"training the fd_domain classifier was killed by signal {-done.returncode} (out of "
                               "memory?); free memory and run again")
        if done.returncode != 0:
            last = (done.stderr.strip().splitlines() or ["no message"])[-1]
            raise HarnessError(f"training the fd_domain classifier failed (exit {done.returncode}): {last}")
        return load_classifier(trained)


def file_name(dataset: str, config: DomainConfig) -> str:
    return f"domain-{dataset}-{config.tag()}.pt"


def save_classifier(net: DomainNet, path) -> None:
    atomic_torch_save({"state_dict": net.state_dict(), "args": net.args, "hash": state_hash(net)}, path)


def load_classifier(path) -> DomainNet:
    """A saved classifier; a ValueError where its weights are not the ones saved."""
    saved = torch.load(path, map_location="cpu", weights_only=True)
    net = DomainNet(*saved["args"])
    net.load_state_dict(saved["state_dict"])
    if state_hash(net) != saved["hash"]:
        raise ValueError(f"its weights hash {state_hash(net)}, not the saved {saved['hash']}")
    return net.eval()


def check_expected(dataset: str, config: DomainConfig, net: DomainNet) -> None:
    """Warn where a classifier this project recorded came out with other weights on this machine."""
    expected = EXPECTED.get(file_name(dataset, config))
    if expected is not None and state_hash(net) != expected:
        warnings.warn(f"the fd_domain classifier of {dataset} has weights {state_hash(net)} on this machine, not "
                      f"this project's {expected} (another torch or MKL build, or a CPU that rounds differently): "
                      "its fd_domain figures are not comparable with the published ones", stacklevel=2)


@contextlib.contextmanager
def deterministic_cpu():
    """One CPU thread, torch's deterministic algorithms and no oneDNN for the block, the caller's settings
    after: float sums then run in one order, so the weights do not depend on the machine's thread count."""
    threads, deterministic = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    try:
        with torch.backends.mkldnn.flags(enabled=False):  # oneDNN compiles its kernels for the CPU at hand
            yield
    finally:
        torch.use_deterministic_algorithms(deterministic)
        torch.set_num_threads(threads)


def state_hash(net: nn.Module) -> str:
    """sha256 prefix of the parameters and buffers (torch.save's bytes are not reproducible)."""
    h = hashlib.sha256()
    for name, tensor in sorted(net.state_dict().items()):
        h.update(name.encode())
        h.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def _train_given(given: str, trained: str) -> None:
    """train_pinned's process: the images, labels and settings it was given in, the classifier out."""
    saved = torch.load(given, weights_only=True)
    save_classifier(train_classifier(saved["images"], saved["labels"], DomainConfig(**saved["config"])), trained)


if __name__ == "__main__":
    _train_given(*sys.argv[1:3])
