"""A trial's preview (trials/<id>/preview/): what the reports show of its samples, small enough to commit.

The reports draw a few images per output (sample grids, reconstructions, the split figure), the
split kind of the saved sigma maps, each model's first samples beside their nearest training
images, and an interpolation between two test images. The trial writes them here from the arrays
it saves as samples/<sampler>.npz, so a published run keeps kilobytes of previews instead of
megabytes of arrays:

    preview/index.json  {"images": {set: {"count": N, "rows": [output, ...], "channels": [1 or 3, ...]}},
                         "sigma_shares": {sampler: [high-frequency share of each saved map, null if flat]},
                         "nearest": {"sampler", "distance": [...], "train_index": [...]} or null}
    preview/<set>.png   lossless 8-bit: a row per output (index.json's order), N images side by side;
                        a set is a sampler, "nearest" (rows "sample" and "train"), "interpolation"
                        (row "x_hat": decoded along a latent line) or "interpolation-ends" ("original")

`preview_of` is the one path from arrays to a preview: the trial's, and `load_preview`'s for a trial
written before previews existed (samples/*.npz but no preview/), which it derives in memory.
This module is shared by the run directory's writer (bench) and its reader (reports), like svae/contract.py.
"""
import io
import json
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from svae.errors import HarnessError
from svae.io import atomic_write_bytes, atomic_write_json

PREVIEW_IMAGES = 8  # images per output: one row of the reports' grids
FOLDER, INDEX = "preview", "index.json"
NEAREST = "nearest"  # the image set of samples ("sample") over their nearest training images ("train")
INTERPOLATION, ENDS = "interpolation", "interpolation-ends"  # x_hat along a latent line; its two real ends
HIGH_FREQUENCY = 0.25  # cycles per pixel: wavelengths shorter than 4 pixels
FLAT_STD = 0.01  # a sigma map whose std (sigma in [0, 1]) is below this mixes nothing: no share


@dataclass(frozen=True)
class Preview:
    images: dict  # set -> {output: uint8 N x C x H x W}
    sigma_shares: dict  # sampler -> [share of each saved sigma map, None where flat]
    nearest: dict | None  # {"sampler", "distance", "train_index"}; None where not recorded

    def first_of(self, samplers) -> str | None:
        """The first of samplers that the preview holds images of, else None."""
        return next((s for s in samplers if s in self.images), None)


def high_frequency_share(sigma_map: np.ndarray):
    """Share of a 2-D sigma map's (uint8) spectral energy above HIGH_FREQUENCY; None if flat."""
    s = sigma_map.astype(np.float64) / 255
    if s.std() < FLAT_STD:
        return None
    power = np.abs(np.fft.fft2(s - s.mean())) ** 2
    radius = np.hypot(np.fft.fftfreq(s.shape[0])[:, None], np.fft.fftfreq(s.shape[1])[None, :])
    return float(power[radius > HIGH_FREQUENCY].sum() / power.sum())


def preview_of(samples: dict, nearest: dict | None = None, interpolation: dict | None = None) -> Preview:
    """samples: sampler -> {output: uint8 N x C x H x W} (all saved images: the sigma shares use every
    map); nearest: {"sampler", "distance", "train_index", "train": uint8 images} of the first samples
    of a sampler's x_hat (bench/memorisation.py nearest_training), or None; interpolation: {"ends": the
    two real images, "x_hat": uint8 images decoded between them} (bench/trial.py interpolation), or None."""
    images = {sampler: {name: np.asarray(a)[:PREVIEW_IMAGES] for name, a in outputs.items()}
              for sampler, outputs in samples.items()}
    shares = {sampler: [high_frequency_share(m) for m in outputs["sigma"].reshape(-1, *outputs["sigma"].shape[-2:])]
              for sampler, outputs in samples.items() if "sigma" in outputs}
    record = None
    if nearest is not None:
        train = np.asarray(nearest["train"])
        images[NEAREST] = {"sample": images[nearest["sampler"]]["x_hat"][:len(train)], "train": train}
        record = {"sampler": nearest["sampler"], "distance": [float(d) for d in nearest["distance"]],
                  "train_index": [int(i) for i in nearest["train_index"]]}
    if interpolation is not None:
        images[INTERPOLATION] = {"x_hat": np.asarray(interpolation["x_hat"])}
        images[ENDS] = {"original": np.asarray(interpolation["ends"])}
    return Preview(images, shares, record)


def write_preview(trial_folder, preview: Preview) -> None:
    """trial_folder/preview/: a PNG per image set, then index.json (written last: a preview without it
    is not one)."""
    folder = Path(trial_folder) / FOLDER
    index = {}
    for name, outputs in preview.images.items():
        atomic_write_bytes(folder / f"{name}.png", _png(list(outputs.values())))
        index[name] = {"count": len(next(iter(outputs.values()))), "rows": list(outputs),
                       "channels": [a.shape[1] for a in outputs.values()]}
    atomic_write_json(folder / INDEX, {"images": index, "sigma_shares": preview.sigma_shares,
                                       "nearest": preview.nearest})


def load_preview(trial_folder) -> Preview | None:
    """A trial's preview: preview/ where the trial wrote one, else derived from samples/*.npz (trials
    made before previews), else None. A damaged one is a HarnessError naming the file and the fix."""
    trial_folder = Path(trial_folder)
    index_file = trial_folder / FOLDER / INDEX
    if index_file.exists():
        return _read(index_file)
    arrays = {file.stem: _read_npz(file) for file in sorted((trial_folder / "samples").glob("*.npz"))}
    return preview_of(arrays) if arrays else None


def _png(rows: list) -> bytes:
    """Rows of N x C x H x W uint8 images as one PNG: a row per array, its images side by side; one
    channel is repeated where another row has three."""
    channels = max(a.shape[1] for a in rows)
    strips = [np.concatenate(list(np.broadcast_to(a, (a.shape[0], channels, *a.shape[2:]))), axis=2) for a in rows]
    canvas = np.concatenate(strips, axis=1).transpose(1, 2, 0)  # H' x W' x C
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(canvas[..., 0] if channels == 1 else canvas)).save(buffer, format="PNG")
    return buffer.getvalue()


def _read(index_file: Path) -> Preview:
    fix = f"delete {index_file.parent} to render without its images, or re-run the trial"
    try:
        index = json.loads(index_file.read_text())
        images = {name: _read_set(index_file.parent / f"{name}.png", facts) for name, facts in index["images"].items()}
        shares = index["sigma_shares"]
        nearest = index["nearest"]
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
        raise HarnessError(f"{index_file.parent} is not a readable preview ({type(e).__name__}: {e}); {fix}") from None
    return Preview(images, shares, nearest)


def _read_set(file: Path, facts: dict) -> dict:
    """{output: uint8 N x C x H x W} of one PNG that write_preview made."""
    with Image.open(file) as image:
        canvas = np.asarray(image)
    canvas = canvas[..., None] if canvas.ndim == 2 else canvas
    outputs, count = dict(zip(facts["rows"], facts["channels"], strict=True)), int(facts["count"])
    height, width = canvas.shape[0] // len(outputs), canvas.shape[1] // count
    if canvas.dtype != np.uint8 or (height * len(outputs), width * count) != canvas.shape[:2]:
        raise ValueError(f"{file.name} is {canvas.shape[1]} x {canvas.shape[0]} {canvas.dtype}, not "
                         f"{count} images wide and {len(outputs)} rows high, 8-bit")
    images = {}
    for row, (output, channels) in enumerate(outputs.items()):
        strip = canvas[row * height:(row + 1) * height, :, :int(channels)]
        images[output] = np.stack(np.split(strip, count, axis=1)).transpose(0, 3, 1, 2)
    return images


def _read_npz(file: Path) -> dict:
    try:
        with np.load(file) as npz:
            return {name: npz[name] for name in npz.files}
    except (OSError, ValueError, zipfile.BadZipFile) as e:
        raise HarnessError(f"{file} is not a readable .npz ({e}); delete it or re-run the trial") from None
