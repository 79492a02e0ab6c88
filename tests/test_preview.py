"""A trial's preview (svae/preview.py): the images and sigma figures the reports show, written as PNG and
JSON from the trial's arrays and read back equal; a trial without one is previewed from its .npz; the
committed study holds previews and no arrays (issue 27: no sample arrays in results/). The figures drawn
from what only previews record (issue 24): samples beside their nearest training images, interpolations."""
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from bench.memorisation import nearest_training
from bench.models import build_model
from bench.presets import smoke
from bench.trial import interpolation
from reports.figures import interpolations, nearest_training_images
from reports.report import preview_figure_lines
from reports.rundir import load_run
from svae.data import SPECS
from svae.errors import HarnessError
from svae.preview import PREVIEW_IMAGES, load_preview, preview_of, write_preview
from svae.samplers import decode, latent_means
from tests.report_fixtures import make_run, trial_id

ROOT = Path(__file__).resolve().parents[1]


def arrays(seed: int = 0) -> dict:
    """Two samplers' outputs as a trial saves them: 12 images each, one-channel sigma beside RGB images."""
    rng = np.random.default_rng(seed)
    sigma = np.zeros((12, 1, 4, 4), np.uint8)
    sigma[:, :, ::2, ::2] = sigma[:, :, 1::2, 1::2] = 255  # a checkerboard: all its energy at 0.5 cycles/pixel
    sigma[1] = 100  # a flat map: no share
    return {"gmm": {"x_hat": rng.integers(0, 256, (12, 3, 4, 4), dtype=np.uint8), "sigma": sigma},
            "recon": {"x_hat": rng.integers(0, 256, (12, 3, 4, 4), dtype=np.uint8),
                      "original": rng.integers(0, 256, (12, 3, 4, 4), dtype=np.uint8)}}


def test_a_written_preview_reads_back_the_first_images_and_every_maps_share(tmp_path):
    samples = arrays()
    write_preview(tmp_path, preview_of(samples))
    preview = load_preview(tmp_path)
    assert sorted(p.name for p in (tmp_path / "preview").iterdir()) == ["gmm.png", "index.json", "recon.png"]
    for sampler, outputs in samples.items():
        assert list(preview.images[sampler]) == list(outputs)
        for name, images in outputs.items():
            np.testing.assert_array_equal(preview.images[sampler][name], images[:PREVIEW_IMAGES])
    assert preview.sigma_shares == {"gmm": [1.0, None] + [1.0] * 10}  # all 12 maps, not the 8 shown
    assert preview.nearest is None and preview.first_of(["prior", "recon", "gmm"]) == "recon"
    # the PNG is the images themselves: gmm's sigma row (grey, repeated into RGB) under its x_hat row
    with Image.open(tmp_path / "preview" / "gmm.png") as png:
        assert png.mode == "RGB" and png.size == (8 * 4, 2 * 4)
        assert png.getpixel((0, 4)) == (255, 255, 255) and png.getpixel((1, 4)) == (0, 0, 0)
        assert png.getpixel((4, 4)) == (100, 100, 100)  # the flat second map
        assert png.getpixel((5, 1)) == tuple(samples["gmm"]["x_hat"][1, :, 1, 1])


def test_a_trial_from_before_previews_is_previewed_from_its_arrays(tmp_path):
    samples = arrays(1)
    (tmp_path / "samples").mkdir()
    for sampler, outputs in samples.items():
        np.savez(tmp_path / "samples" / f"{sampler}.npz", **outputs)
    preview = load_preview(tmp_path)
    np.testing.assert_array_equal(preview.images["recon"]["original"], samples["recon"]["original"][:8])
    assert preview.sigma_shares["gmm"][:2] == [1.0, None]
    assert not (tmp_path / "preview").exists()  # derived in memory: the reader writes nothing
    assert load_preview(tmp_path / "nothing-here") is None


@pytest.mark.parametrize("damage", ["png", "index"])
def test_a_damaged_preview_is_one_line_naming_the_fix(tmp_path, damage):
    write_preview(tmp_path, preview_of(arrays()))
    (tmp_path / "preview" / ("gmm.png" if damage == "png" else "index.json")).write_bytes(b"\x89PNG torn")
    with pytest.raises(HarnessError, match="is not a readable preview .*; delete .*preview") as error:
        load_preview(tmp_path)
    assert "\n" not in str(error.value)


def test_nearest_training_finds_copies_and_measures_pixels_across_chunks():
    rng = np.random.default_rng(2)
    train = rng.integers(0, 200, (7, 1, 3, 3), dtype=np.uint8)
    samples = np.stack([train[5], train[1] + 30])  # a copy; every one of 9 pixels 30 levels off
    found = nearest_training("gmm", samples, train, chunk=3)  # 7 images in chunks of 3: indices across them
    assert found["train_index"] == [5, 1]
    assert found["distance"] == pytest.approx([0.0, 30 / 255 * 3])  # sqrt(9 * (30/255)^2)
    np.testing.assert_array_equal(found["train"], train[[5, 1]])
    preview = preview_of({"gmm": {"x_hat": samples}}, found)
    np.testing.assert_array_equal(preview.images["nearest"]["train"], train[[5, 1]])
    np.testing.assert_array_equal(preview.images["nearest"]["sample"], samples)


def test_the_committed_study_tracks_previews_and_no_arrays_or_weights():
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    tracked = subprocess.run(["git", "ls-files", "results"], cwd=ROOT, capture_output=True, text=True,
                             check=True).stdout.split()
    assert tracked, "git ls-files found nothing under results/"
    assert [f for f in tracked if f.endswith((".npz", ".npy", ".pt", ".pth"))] == []
    previews = [f for f in tracked if "/preview/" in f]
    assert any(f.endswith("/preview/index.json") for f in previews) and any(f.endswith(".png") for f in previews)


def test_the_nearest_figure_shows_each_models_pairs_and_is_left_out_without_them(tmp_path):
    run_dir = make_run(tmp_path)
    run = load_run(run_dir)
    assert nearest_training_images(run, "mnist") is None  # the fixture's trials predate the record
    assert [line.split(":")[0] for line in preview_figure_lines([])] == [
        "No figure of each model's samples beside their nearest training images",
        "No figure of interpolations between two test images"]
    rng = np.random.default_rng(3)
    train = rng.integers(0, 256, (20, 1, 32, 32), dtype=np.uint8)
    for model in ("svae", "vae"):
        folder = run_dir / "trials" / trial_id("mnist", model, 0)
        samples = np.stack([train[4], train[9], train[9] // 2])  # two copies, one darker
        write_preview(folder, preview_of({"gmm": {"x_hat": samples}}, nearest_training("gmm", samples, train)))
    figure = nearest_training_images(load_run(run_dir), "mnist")
    assert [ax.get_title(loc="left") for ax in figure.axes] == [
        f"{label}: gmm sampler, seed 0: samples (top), nearest training images (bottom)" for label in ("SVAE", "VAE")]
    ticks = [t.get_text() for t in figure.axes[0].get_xticklabels()]
    assert ticks[:2] == ["0.00\n#4", "0.00\n#9"] and len(ticks) == 3
    assert preview_figure_lines(["figures/samples_mnist.png", "figures/nearest_mnist.png"])[0] == (
        "Each model's samples beside their nearest training images: [nearest_mnist](figures/nearest_mnist.png).")


def test_an_interpolation_decodes_the_line_between_two_posterior_means_ends_included():
    torch.manual_seed(0)
    spec = SPECS["synthetic"]
    model = build_model("svae", spec, smoke("synthetic").model)
    ends = torch.randint(0, 256, (2, spec.channels, spec.size, spec.size), dtype=torch.uint8)
    found = interpolation(model, ends, {"swapped": True, "mean_sigma": 0.4})
    assert found["x_hat"].shape == (PREVIEW_IMAGES, spec.channels, spec.size, spec.size)
    np.testing.assert_array_equal(found["ends"], ends.numpy())
    for step, image in ((0, ends[:1]), (-1, ends[1:])):  # t = 0 and 1: the decoded posterior mean of each end
        expected = (decode(model, latent_means(model, image))["x_hat"].clamp(0, 1) * 255).round().to(torch.uint8)
        np.testing.assert_array_equal(found["x_hat"][step], expected[0].numpy())


def test_the_interpolation_figure_puts_the_test_images_at_the_ends_of_each_row(tmp_path):
    run_dir = make_run(tmp_path)
    assert interpolations(load_run(run_dir), "mnist") is None  # no trial recorded one
    rng = np.random.default_rng(4)
    steps, ends = (rng.integers(0, 256, (n, 1, 32, 32), dtype=np.uint8) for n in (8, 2))
    write_preview(run_dir / "trials" / trial_id("mnist", "vae", 0),
                  preview_of({"gmm": {"x_hat": steps}}, interpolation={"ends": ends, "x_hat": steps}))
    figure = interpolations(load_run(run_dir), "mnist")
    [ax] = figure.axes
    assert ax.get_title(loc="left") == "VAE, seed 0"
    assert [t.get_text() for t in ax.get_xticklabels()] == [
        "test", "0.00", "0.14", "0.29", "0.43", "0.57", "0.71", "0.86", "1.00", "test"]
    shown = ax.get_images()[0].get_array()
    np.testing.assert_array_equal(shown[:, :32], ends[0, 0])  # the first test image, then a 1-pixel gap
    np.testing.assert_array_equal(shown[:, 33:65], steps[0, 0])
    np.testing.assert_array_equal(shown[:, -32:], ends[1, 0])
