"""Feature extractors: pytorch-fid's Inception and the fd_domain classifier behind one interface.

An extractor has a `name` (which network: "inception-fid", "domain-<dataset>-<version>"), a `family` that
names its metrics ("inception": fid, kid; "domain": fd_domain, kd_domain), a `weights_hash`, an `id`
(name, preprocessing version and weights hash: figures with equal ids are comparable) and
`features(images) -> N x D float64`. The features are the network's float32 outputs, so storing them
as float32 loses nothing.
"""
import hashlib
from pathlib import Path

import numpy as np
import pytorch_fid.inception as pfi
import torch
import torch.nn as nn
import torch.nn.functional as F

from svae.errors import HarnessError

FID_WEIGHTS_URL = pfi.FID_WEIGHTS_URL
FID_WEIGHTS_FILE = FID_WEIGHTS_URL.rsplit("/", 1)[1]  # pt_inception-2015-12-05-6726825d.pth
# How images become network input: v1 = floats rounded to 1/255 steps (q255) or not (float), then the
# network's own resize. Bump the version when that path changes: cached real features key on it.
PREPROCESSING_VERSION = "v1"


class MissingWeightsError(HarnessError):
    """The FID Inception weights file is neither where it was looked for nor downloadable."""


def fid_inception_v3() -> nn.Module:
    """pytorch_fid.inception.fid_inception_v3 without its download: torchvision's network with the
    blocks that the TF FID graph computes differently."""
    net = pfi._inception_v3(num_classes=1008, aux_logits=False, weights=None)
    net.Mixed_5b = pfi.FIDInceptionA(192, pool_features=32)
    net.Mixed_5c = pfi.FIDInceptionA(256, pool_features=64)
    net.Mixed_5d = pfi.FIDInceptionA(288, pool_features=64)
    net.Mixed_6b = pfi.FIDInceptionC(768, channels_7x7=128)
    net.Mixed_6c = pfi.FIDInceptionC(768, channels_7x7=160)
    net.Mixed_6d = pfi.FIDInceptionC(768, channels_7x7=160)
    net.Mixed_6e = pfi.FIDInceptionC(768, channels_7x7=192)
    net.Mixed_7b = pfi.FIDInceptionE_1(1280)
    net.Mixed_7c = pfi.FIDInceptionE_2(2048)
    return net


class FIDInception(nn.Module):
    """pytorch-fid's InceptionV3 up to the 2048-d pool3 features: the same layers and input scaling.

    It runs in channels_last, which oneDNN convolves about twice as fast on CPUs; the features stay
    within 1e-4 of pytorch-fid's (summation order only; measured by python -m bench.perf fid).
    """

    def __init__(self, state_dict):
        super().__init__()
        net = fid_inception_v3()
        try:
            net.load_state_dict(state_dict)
        except RuntimeError as e:
            raise HarnessError(f"the FID weights do not fit pytorch-fid's Inception ({str(e).splitlines()[0]}); "
                               f"pass the file {FID_WEIGHTS_FILE}") from None
        self.layers = nn.Sequential(
            net.Conv2d_1a_3x3, net.Conv2d_2a_3x3, net.Conv2d_2b_3x3, nn.MaxPool2d(kernel_size=3, stride=2),
            net.Conv2d_3b_1x1, net.Conv2d_4a_3x3, nn.MaxPool2d(kernel_size=3, stride=2),
            net.Mixed_5b, net.Mixed_5c, net.Mixed_5d, net.Mixed_6a, net.Mixed_6b, net.Mixed_6c, net.Mixed_6d,
            net.Mixed_6e, net.Mixed_7a, net.Mixed_7b, net.Mixed_7c, nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.eval().to(memory_format=torch.channels_last)

    def forward(self, x):
        """x: floats in [0, 1], N x C x H x W with C 1 (repeated, as PIL's convert('RGB')) or 3."""
        x = x.expand(-1, 3, -1, -1) if x.shape[1] == 1 else x
        x = F.interpolate(x, size=(299, 299), mode="bilinear", align_corners=False)
        return self.layers((2 * x - 1).contiguous(memory_format=torch.channels_last))


def as_unit_float(images, quantize: bool = True) -> torch.Tensor:
    """Images as float32 in [0, 1]: uint8 divided by 255; floats checked and, by default, rounded to
    1/255 steps as saving to PNG would, so that in-memory figures match figures from image files."""
    images = torch.as_tensor(images)
    if images.dtype == torch.uint8:
        return images.float() / 255
    images = images.float()
    if not (images.isfinite().all() and images.min() >= 0 and images.max() <= 1):
        raise HarnessError(f"images must be floats in [0, 1] (got min {images.min().item():.4g}, max "
                           f"{images.max().item():.4g}); map them to [0, 1] before scoring")
    return (images * 255).round() / 255 if quantize else images


def features(forward, images, batch_size=100, device="cpu", quantize=True) -> np.ndarray:
    """forward's features of N x C x H x W images (uint8, or floats in [0, 1]) as an N x D float64 array."""
    images = torch.as_tensor(images)
    if images.ndim != 4 or images.shape[1] not in (1, 3) or len(images) == 0:
        raise HarnessError(f"images must be N x C x H x W with C 1 or 3 (got shape {tuple(images.shape)})")
    out = []
    # TF32 would change features by ~1e-3 on GPUs: keep true float32, as the metric is defined
    with torch.inference_mode(), torch.backends.cudnn.flags(enabled=True, allow_tf32=False):
        for batch in images.split(batch_size):
            out.append(forward(as_unit_float(batch.to(device), quantize)).double().cpu())
    return torch.cat(out).numpy()


def sha256_prefix(path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()[:16]


def inception_weights_path(weights_path=None) -> Path:
    """The FID weights file: weights_path, or pytorch-fid's place in the torch hub cache, downloaded
    there from pytorch-fid's release as pytorch-fid itself would."""
    if weights_path is not None:
        path = Path(weights_path)
        if not path.is_file():
            raise MissingWeightsError(f"FID weights file {path} not found; pass the path of {FID_WEIGHTS_FILE} "
                                      f"(--fid-weights PATH, weights_path=)")
        return path
    folder = Path(torch.hub.get_dir()) / "checkpoints"
    path = folder / FID_WEIGHTS_FILE
    if not path.exists():
        try:
            folder.mkdir(parents=True, exist_ok=True)
            torch.hub.download_url_to_file(FID_WEIGHTS_URL, str(path), progress=False)
        except Exception as e:  # offline: URLError, timeouts, permissions...
            raise MissingWeightsError(
                f"missing FID weights {FID_WEIGHTS_FILE} in {folder} ($TORCH_HOME/hub/checkpoints) and the "
                f"download failed ({type(e).__name__}); put the file there or pass its path with "
                f"--fid-weights PATH (python -m bench.fid: --weights PATH; Python: weights_path=)") from None
    return path


class Extractor:
    """A network's features with the names that go into results.csv (see the module docstring)."""

    def __init__(self, name: str, family: str, forward, weights_hash: str, device, batch_size=100,
                 quantize=True):
        self.name, self.family, self.weights_hash = name, family, weights_hash
        self.forward, self.device, self.batch_size, self.quantize = forward, device, batch_size, quantize
        self.preprocessing = f"{PREPROCESSING_VERSION}-{'q255' if quantize else 'float'}"
        self.id = f"{name}:{self.preprocessing}:{weights_hash}"

    def features(self, images) -> np.ndarray:
        """N x D float64 features of N x C x H x W images (uint8, or floats in [0, 1])."""
        return features(self.forward, images, self.batch_size, self.device, self.quantize)


def inception_extractor(weights_path=None, device="cpu", batch_size=100, quantize=True) -> Extractor:
    path = inception_weights_path(weights_path)
    try:
        state_dict = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise HarnessError(f"cannot read FID weights {path} ({type(e).__name__}); download "
                           f"{FID_WEIGHTS_FILE} again") from None
    net = FIDInception(state_dict).to(device)
    return Extractor("inception-fid", "inception", net, sha256_prefix(path), device, batch_size, quantize)


def domain_extractor(dataset: str, net, device="cpu", batch_size=100, quantize=True) -> Extractor:
    """The fd_domain classifier of a dataset (bench/domain.py) as an extractor: its 128-d penultimate
    features. The name carries bench.domain.DOMAIN_VERSION (v1 used the logits), so figures of two
    versions never share an extractor id."""
    from bench.domain import DOMAIN_VERSION, state_hash
    net = net.to(device).eval()
    return Extractor(f"domain-{dataset}-{DOMAIN_VERSION}", "domain", net.features, state_hash(net), device,
                     batch_size, quantize)
