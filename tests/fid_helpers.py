"""Shared pieces of the FID tests: seeded Inception weights, pytorch-fid as the reference, PNG files."""
from pathlib import Path
from unittest import mock

import numpy as np
import pytest
import torch
from PIL import Image

import pytorch_fid.fid_score as pfs
import pytorch_fid.inception as pfi

from bench.metrics import Scorer
from bench.cost.perf import random_images, seeded_inception_weights


@pytest.fixture(scope="session")
def inception_weights(tmp_path_factory) -> Path:
    """Seeded random FID-Inception weights in a .pth file, as the real file is laid out; made once per
    session, though each test module that imports this fixture gets its own instance of it."""
    path = tmp_path_factory.getbasetemp() / "seeded-inception.pth"
    if not path.exists():
        calibration = random_images(48, 3, 32, seed=100).float() / 255
        torch.save(seeded_inception_weights(0, calibration), path)
    return path


@pytest.fixture(scope="session")
def engine(inception_weights) -> Scorer:
    return Scorer(weights_path=inception_weights, device="cpu", batch_size=50)


def save_pngs(images: torch.Tensor, folder: Path) -> Path:
    """uint8 N x C x H x W images as PNG files, as a user would hand them to pytorch-fid."""
    folder.mkdir(parents=True)
    for i, img in enumerate(images):
        Image.fromarray(img.permute(1, 2, 0).squeeze(2).numpy()).save(folder / f"{i:04d}.png")
    return folder


def _weights_from(weights: Path):
    """pytorch-fid with its weight download replaced by our file, and quiet."""
    state = torch.load(weights, weights_only=True)
    return mock.patch.object(pfi, "load_state_dict_from_url", lambda *args, **kwargs: state), \
        mock.patch.object(pfs, "tqdm", lambda x: x)


def pytorch_fid_given_paths(paths, weights: Path) -> float:
    """pytorch-fid's own calculate_fid_given_paths."""
    download, quiet = _weights_from(weights)
    with download, quiet:
        return float(pfs.calculate_fid_given_paths([str(p) for p in paths], batch_size=50, device="cpu",
                                                   dims=2048, num_workers=0))


def pytorch_fid_statistics(path: Path, weights: Path):
    """pytorch-fid's own mean and covariance of a folder of images (its reading, resizing and network)."""
    download, quiet = _weights_from(weights)
    with download, quiet:
        model = pfi.InceptionV3([pfi.InceptionV3.BLOCK_INDEX_BY_DIM[2048]]).to("cpu")
        return pfs.compute_statistics_of_path(str(path), model, 50, 2048, "cpu", num_workers=0)


def reference_in_child(weights, cache_dir, log, barrier):
    """Runs in a separate process: a reference through a shared cache, noting each data load."""
    engine = Scorer(weights_path=weights, cache_dir=cache_dir, device="cpu")
    load = engine._load

    def logged_load(*args):
        with open(log, "a") as f:
            f.write("load\n")
        return load(*args)

    engine._load = logged_load
    barrier.wait()  # both processes ask for the same key at the same moment
    return engine.reference("synthetic", "test", 8).mu


def sqrtm_distance(mu1, s1, mu2, s2) -> float:
    """The textbook formula with scipy's sqrtm, as the oracle for frechet_distance."""
    from scipy import linalg
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(s1) + np.trace(s2) - 2 * np.trace(linalg.sqrtm(s1 @ s2)).real)
