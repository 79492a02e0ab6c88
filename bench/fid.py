"""The FID engine: pytorch-fid's Inception on in-memory images, with cached real statistics.

Three steps, each a function usable alone, as in pytorch-fid: features (pool3 of the FID Inception,
or the fd_domain classifier), statistics (mean and covariance in float64), distance (Frechet, from
float64 eigenvalues). FIDEngine adds the weights, the cache of real statistics shared by a sweep's
trials, and the names that go into results.csv. `python -m bench.fid A B` is pytorch-fid's command line.
"""
import argparse
import hashlib
import io
import sys
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytorch_fid.inception as pfi
import torch
import torch.nn as nn
import torch.nn.functional as F
from filelock import FileLock

from bench.domain import DomainConfig, DomainNet, state_hash, train_classifier
from svae.errors import HarnessError
from svae.io import atomic_torch_save, atomic_write_bytes

FID_WEIGHTS_URL = pfi.FID_WEIGHTS_URL
FID_WEIGHTS_FILE = FID_WEIGHTS_URL.rsplit("/", 1)[1]  # pt_inception-2015-12-05-6726825d.pth
IMAGE_EXTENSIONS = {"bmp", "jpg", "jpeg", "pgm", "png", "ppm", "tif", "tiff", "webp"}  # pytorch-fid's


class MissingWeightsError(HarnessError):
    """The FID Inception weights file is neither where it was looked for nor downloadable."""


# ---------------------------------------------------------------- features

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


def features(net: nn.Module, images, batch_size=100, device="cpu", quantize=True) -> np.ndarray:
    """net's features of N x C x H x W images (uint8, or floats in [0, 1]) as an N x D float64 array."""
    images = torch.as_tensor(images)
    if images.ndim != 4 or images.shape[1] not in (1, 3) or len(images) == 0:
        raise HarnessError(f"images must be N x C x H x W with C 1 or 3 (got shape {tuple(images.shape)})")
    out = []
    # TF32 would change features by ~1e-3 on GPUs: keep true float32, as the metric is defined
    with torch.inference_mode(), torch.backends.cudnn.flags(enabled=True, allow_tf32=False):
        for batch in images.split(batch_size):
            out.append(net(as_unit_float(batch.to(device), quantize)).double().cpu())
    return torch.cat(out).numpy()


# ---------------------------------------------------------------- statistics and distance

def statistics(feats: np.ndarray):
    """Mean and covariance in float64, as pytorch-fid's calculate_activation_statistics."""
    feats = np.asarray(feats, dtype=np.float64)
    if len(feats) < 2:
        raise HarnessError(f"a Frechet distance needs at least 2 images per set (got {len(feats)})")
    return feats.mean(axis=0), np.cov(feats, rowvar=False)


def _psd_factor(sigma: torch.Tensor) -> torch.Tensor:
    """C with C C^T = sigma. Cholesky when sigma is positive definite; otherwise (fewer samples than
    dimensions) an eigen-factor with round-off negatives clipped. That is exact for a singular sigma and
    agrees with pytorch-fid's sqrtm to ~1e-7, where pytorch-fid's fallback of a 1e-6 diagonal offset
    would move FID by up to ~1e-4 (relative) at small N."""
    factor, info = torch.linalg.cholesky_ex(sigma)
    if info == 0:
        return factor
    w, v = torch.linalg.eigh(sigma)
    return v * w.clamp(min=0).sqrt()


def frechet_distance(mu1, sigma1, mu2, sigma2) -> float:
    """||mu1 - mu2||^2 + Tr(S1 + S2 - 2 sqrt(S1 S2)), in float64.

    With S1 = C C^T, S1 S2 is similar to the symmetric positive semi-definite C^T S2 C, so
    Tr sqrt(S1 S2) is the sum of the square roots of its eigenvalues: one Cholesky and one symmetric
    eigenvalue problem instead of scipy's sqrtm (over 5x faster at 2048-d, same figure to ~1e-12;
    python -m bench.perf fid). torch's LAPACK (MKL) is used rather than NumPy's OpenBLAS, whose
    threads slow down several-fold when other processes share the cores.
    """
    mu1, mu2 = np.atleast_1d(np.asarray(mu1, np.float64)), np.atleast_1d(np.asarray(mu2, np.float64))
    s1, s2 = np.atleast_2d(np.asarray(sigma1, np.float64)), np.atleast_2d(np.asarray(sigma2, np.float64))
    d = len(mu1)
    if mu2.shape != (d,) or s1.shape != (d, d) or s2.shape != (d, d):
        raise HarnessError(f"statistics do not match: means {mu1.shape} and {mu2.shape}, "
                           f"covariances {s1.shape} and {s2.shape}; compare figures from the same backbone")
    if not all(np.isfinite(a).all() for a in (mu1, mu2, s1, s2)):
        raise HarnessError("the statistics contain NaN or infinity; check the images for NaN")
    t1, t2 = torch.from_numpy(np.ascontiguousarray(s1)), torch.from_numpy(np.ascontiguousarray(s2))
    c = _psd_factor(t1)
    tr_covmean = torch.linalg.eigvalsh(c.T @ t2 @ c).clamp(min=0).sqrt().sum().item()
    diff = mu1 - mu2
    fid = float(diff @ diff + np.trace(s1) + np.trace(s2) - 2 * tr_covmean)
    if not np.isfinite(fid):
        raise HarnessError(f"the Frechet distance is not finite ({fid}); the statistics overflow float64")
    return fid


# ---------------------------------------------------------------- weights and cache

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


def cached(path, compute, save, load):
    """The value stored at path, computed and published once even when processes ask together:
    the first takes the lock and computes, the others wait and read. An unreadable file is recomputed."""
    if path is None:
        return compute()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(f"{path}.lock"):
        if path.exists():
            try:
                return load(path)
            except Exception as e:  # a torn or foreign file: np.load and torch.load raise many kinds
                warnings.warn(f"cache file {path} is corrupt ({type(e).__name__}: {e}); recomputing it")
        value = compute()
        save(value, path)  # atomic: a reader never sees half a file, even without the lock
        return value


@dataclass(frozen=True)
class RealStats:
    """Statistics of the first n images of a dataset split, and how they were measured."""
    mu: np.ndarray
    sigma: np.ndarray
    dataset: str
    split: str
    n: int
    key: str  # the cache name: dataset, split, n, preprocessing, backbone and weights hash


def _save_stats(stats: RealStats, path):
    buffer = io.BytesIO()
    np.savez(buffer, mu=stats.mu, sigma=stats.sigma, key=stats.key)
    atomic_write_bytes(path, buffer.getvalue())


def _load_stats(path, dataset, split, n, key) -> RealStats:
    with np.load(path) as f:
        mu, sigma, stored_key = f["mu"], f["sigma"], str(f["key"])
    d = len(mu)
    if stored_key != key or mu.shape != (d,) or sigma.shape != (d, d) or not np.isfinite(sigma).all():
        raise ValueError(f"its content is not the statistics {key}")
    return RealStats(mu, sigma, dataset, split, n, key)


# ---------------------------------------------------------------- the engine

class FIDEngine:
    """FID (backbone "inception") or fd_domain (backbone "domain") of images against cached real statistics."""

    def __init__(self, backbone="inception", weights_path=None, device=None, batch_size=100, quantize=True,
                 cache_dir=None, data_root=None, download=False, domain_config=DomainConfig(), system_copy=None):
        if backbone not in ("inception", "domain"):
            raise HarnessError(f"unknown FID backbone {backbone!r}; choose inception or domain")
        self.backbone = backbone
        self.metric = "fid" if backbone == "inception" else "fd_domain"
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.batch_size, self.quantize, self.domain_config = batch_size, quantize, domain_config
        self.cache_dir = Path(cache_dir) if cache_dir is not None else None
        self.data_root, self.download, self.system_copy = data_root, download, system_copy
        self._nets = {}  # dataset (or None for Inception) -> (network, weights hash)
        self._real = {}  # cache key -> RealStats, so a trial reads each file once
        if backbone == "inception":
            path = inception_weights_path(weights_path)
            try:
                state_dict = torch.load(path, map_location="cpu", weights_only=True)
            except Exception as e:
                raise HarnessError(f"cannot read FID weights {path} ({type(e).__name__}); download "
                                   f"{FID_WEIGHTS_FILE} again") from None
            self._nets[None] = (FIDInception(state_dict).to(self.device), sha256_prefix(path))

    def _net(self, dataset):
        key = None if self.backbone == "inception" else dataset
        if key not in self._nets:
            self._nets[key] = self._domain_net(dataset)
        return self._nets[key]

    def _domain_net(self, dataset):
        """The dataset's classifier, trained once and cached beside the statistics."""
        def train():
            data = self._load(dataset, "train")
            return train_classifier(data.images, data.labels, self.domain_config)

        def save(net, path):
            atomic_torch_save({"state_dict": net.state_dict(), "args": net.args}, path)

        def load(path):
            saved = torch.load(path, map_location="cpu", weights_only=True)
            net = DomainNet(*saved["args"])
            net.load_state_dict(saved["state_dict"])
            return net.eval()

        path = self._cache_path(f"domain-{dataset}-{self.domain_config.tag()}.pt")
        net = cached(path, train, save, load)
        return net.to(self.device), state_hash(net)

    def _cache_path(self, name):
        return self.cache_dir / name if self.cache_dir is not None else None

    def _load(self, dataset, split):
        from svae.data import load_images  # imported here: the loaders are only needed for real statistics
        return load_images(dataset, split, root=self.data_root, download=self.download, system_copy=self.system_copy)

    def backbone_id(self, dataset) -> str:
        """The fid_backbone column of results.csv."""
        return "inception-fid" if self.backbone == "inception" else f"domain-{dataset}"

    def weights_hash(self, dataset) -> str:
        """sha256 prefix of the Inception weights file, or of the dataset's trained classifier."""
        return self._net(dataset)[1]

    def features(self, images, dataset=None) -> np.ndarray:
        """N x D float64 features of images (uint8, or floats in [0, 1]); dataset names the classifier."""
        return features(self._net(dataset)[0], images, self.batch_size, self.device, self.quantize)

    def real_stats(self, dataset, split, n) -> RealStats:
        """Statistics of the first n images of the split, computed once per cache folder."""
        key = (f"{dataset}-{split}-n{n}-{'q255' if self.quantize else 'float'}-"
               f"{self.backbone_id(dataset)}-{self.weights_hash(dataset)}")
        if key not in self._real:
            def compute():
                images = self._load(dataset, split).images
                if n > len(images):
                    raise HarnessError(f"{dataset} {split} has {len(images)} images, fewer than the {n} asked "
                                       f"for; ask for {len(images)} or fewer")
                mu, sigma = statistics(self.features(images[:n], dataset))
                return RealStats(mu, sigma, dataset, split, n, key)

            self._real[key] = cached(self._cache_path(f"stats-{key}.npz"), compute, _save_stats,
                                     lambda path: _load_stats(path, dataset, split, n, key))
        return self._real[key]

    def distance(self, images, ref: RealStats) -> float:
        """The Frechet distance between images (floats in [0, 1], N x C x H x W) and ref, on this backbone."""
        mu, sigma = statistics(self.features(images, ref.dataset))
        return frechet_distance(mu, sigma, ref.mu, ref.sigma)


# ---------------------------------------------------------------- command line

def _image_files(folder: Path) -> torch.Tensor:
    from PIL import Image  # imported here: only the command line reads image files
    files = sorted(f for ext in IMAGE_EXTENSIONS for f in folder.glob(f"*.{ext}"))
    if not files:
        raise HarnessError(f"no image files ({', '.join(sorted(IMAGE_EXTENSIONS))}) in {folder}")
    arrays = []
    for f in files:
        try:
            with Image.open(f) as image:
                arrays.append(np.asarray(image.convert("RGB")))  # as pytorch-fid reads them
        except (OSError, ValueError) as e:  # PIL's UnidentifiedImageError is an OSError
            raise HarnessError(f"{f} is not a readable image ({type(e).__name__}); remove it from {folder}") from None
    if len({a.shape for a in arrays}) > 1:
        raise HarnessError(f"the images in {folder} differ in size; resize them to one size first")
    return torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2)


def statistics_of_arg(arg: str, engine: FIDEngine):
    """A folder of images, an .npy image array, FILE.npz:NAME (an image array in an .npz of several), or
    an .npz holding either statistics (mu, sigma) or one image array (N x C x H x W or N x H x W x C)."""
    path, name = (arg.rsplit(".npz:", 1) if ".npz:" in arg else (arg, None))
    path = Path(path + ".npz" if name is not None else path)
    if path.is_dir():
        return statistics(engine.features(_image_files(path)))
    try:
        archive = np.load(path)  # never unpickles: object arrays are refused
        if isinstance(archive, np.ndarray):  # a .npy file: one image array
            images = _image_tensor(archive, path)
        else:
            with archive:
                names = list(archive.keys())
                if name is None and {"mu", "sigma"} <= set(names):
                    return archive["mu"], archive["sigma"]
                if name is None and len(names) != 1:
                    raise HarnessError(f"{path} holds arrays {', '.join(names) or 'none'}; pick one as {path}:NAME")
                if (name or names[0]) not in names:
                    raise HarnessError(f"{path} has no array {name!r}; it holds {', '.join(names)}")
                images = _image_tensor(archive[name or names[0]], path)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
        raise HarnessError(f"cannot read {path} ({type(e).__name__}: {' '.join(str(e).split())[:120]}); give a "
                           f"folder of images, an .npy or an .npz of numeric arrays") from None
    if images.ndim == 4 and images.shape[1] not in (1, 3) and images.shape[3] in (1, 3):
        images = images.permute(0, 3, 1, 2)
    return statistics(engine.features(images))


def _image_tensor(array: np.ndarray, path: Path) -> torch.Tensor:
    if array.dtype.kind not in "uif" or array.dtype.itemsize > 8:
        raise HarnessError(f"{path} holds an array of {array.dtype}, not images; give uint8 or float images")
    return torch.from_numpy(np.ascontiguousarray(array))


def check_device(name):
    """A torch device that exists here, or a HarnessError naming the ones that do."""
    if name is None:
        return None
    try:
        device = torch.device(name)
    except RuntimeError:
        raise HarnessError(f"--device {name} is not a device; use cpu, cuda or cuda:N") from None
    if device.type == "cuda" and (not torch.cuda.is_available() or (device.index or 0) >= torch.cuda.device_count()):
        raise HarnessError(f"--device {name} is not available here ({torch.cuda.device_count()} CUDA devices); "
                           f"use --device cpu")
    if device.type not in ("cpu", "cuda"):
        raise HarnessError(f"--device {name} is not supported; use cpu, cuda or cuda:N")
    return name


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m bench.fid", description=(
        "FID between two image sets, as pytorch-fid: each of A, B is a folder of images, an .npy or "
        "FILE.npz[:NAME] holding an N x C x H x W image array, or an .npz of statistics (mu, sigma)."))
    p.add_argument("path", nargs=2, help="A and B; with --save-stats, the input and the .npz to write")
    p.add_argument("--weights", default=None, help=f"path of {FID_WEIGHTS_FILE} (default: the torch hub cache)")
    p.add_argument("--batch-size", type=int, default=100)
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:1, ... (default: cuda if available)")
    p.add_argument("--no-quantize", action="store_true", help="do not round float images to 1/255 steps")
    p.add_argument("--save-stats", action="store_true", help="write the statistics of A to the .npz B")
    args = p.parse_args(argv)
    try:
        if args.batch_size < 1:
            raise HarnessError(f"--batch-size must be at least 1 (got {args.batch_size})")
        engine = FIDEngine(weights_path=args.weights, device=check_device(args.device), batch_size=args.batch_size,
                           quantize=not args.no_quantize)
        mu1, sigma1 = statistics_of_arg(args.path[0], engine)
        if args.save_stats:
            buffer = io.BytesIO()
            np.savez_compressed(buffer, mu=mu1, sigma=sigma1)
            atomic_write_bytes(args.path[1], buffer.getvalue())
            return
        mu2, sigma2 = statistics_of_arg(args.path[1], engine)
        fid = frechet_distance(mu1, sigma1, mu2, sigma2)
    except HarnessError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    print(f"FID: {fid}  (inception-fid, weights sha256 {engine.weights_hash(None)})")


if __name__ == "__main__":
    main()
