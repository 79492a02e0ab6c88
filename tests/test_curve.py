"""bench.curve: the epochs a preset trains, chosen on a validation split where every model's curve levels off."""
import json
import subprocess
import sys

from dataclasses import replace

import pandas as pd
import torch

from bench.curve import curve_data, levelled
from bench.presets import settings_for
from bench.trial import Evaluation, TrialSpec
from reports.budget import levelled_epoch
from svae.data import load_images


def test_a_curve_levels_off_at_the_first_epoch_that_no_later_one_improves_by_five_percent():
    # lower is better: 12 at epoch 6 is 2.5% above the best later value (11.7); 15 at epoch 4 is 22% above
    assert levelled_epoch([2, 4, 6, 8, 10], [20, 15, 12, 11.8, 11.7], sign=-1) == 6
    assert levelled_epoch([2, 4, 6, 8], [20, 15, 12, 10], sign=-1) is None  # 12 -> 10: still 17% to gain
    assert levelled_epoch([1, 2, 3], [0.5, 0.7, 0.71], sign=1) == 2  # higher is better: 1.4% left after 2
    assert levelled_epoch([1, 2, 3], [10, 10.6, 10.2], sign=-1) == 1  # worse later: levelled at once


def curve_rows(model, values, metric="fd_domain"):
    return [{"model": model, "epoch": 2 * (i + 1), "output": output, "metric": metric, "value": v + shift,
             "higher_is_better": False} for i, v in enumerate(values) for output, shift in (("x_hat", 0), ("x1", 50))]


def test_the_epochs_a_curve_supports_are_where_the_last_model_levels_off():
    table = pd.DataFrame(curve_rows("vae", [20, 15, 14.9, 14.8]) + curve_rows("svae", [30, 20, 15, 14.5, 14.4]))
    found = levelled(table)
    assert found["models"] == {"vae": 4, "svae": 6} and found["epochs"] == 6 and found["metric"] == "fd_domain"
    still = pd.DataFrame(curve_rows("vae", [20, 15, 14.9]) + curve_rows("svae", [30, 20, 15]))
    assert levelled(still)["models"]["svae"] is None and levelled(still)["epochs"] is None


class PixelScorer:
    """Features: a few pixels of each image (what curve_data asks of a scorer)."""
    def features(self, images, dataset):
        return images.reshape(len(images), -1)[:, :4].double().numpy()


def test_the_validation_curve_trains_on_the_training_images_less_their_held_out_end():
    settings = replace(settings_for("smoke", "synthetic"), train_subset=150, fid_samples=20)
    train, held_out, reference = curve_data(TrialSpec("synthetic", "vae", 0), settings, Evaluation(), PixelScorer(),
                                            "validation")
    full = load_images("synthetic", "train", None, False, False).images[:150]
    assert torch.equal(train, full[:130]) and torch.equal(held_out, full[130:])  # min(20, 150 // 6) held out
    assert reference.n == 20 and reference.split == "validation"
    assert (reference.features == full[130:].reshape(20, -1)[:, :4].double().numpy()).all()


def test_the_default_curve_trains_without_its_validation_images_and_scores_against_them(tmp_path):
    out = subprocess.run([sys.executable, "-m", "bench.curve", "--dataset", "synthetic", "--preset", "smoke",
                          "--models", "vae", "--epochs", "2", "--every", "1", "--samples", "20",
                          "--set", "train_subset=150", "--out", str(tmp_path)],
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    table = pd.read_csv(tmp_path / "curve.csv")
    assert set(table["reference"]) == {"validation"} and sorted(set(table["epoch"])) == [1, 2]
    assert set(table["reference_n"]) == {20} and set(table["n_samples"]) == {20}  # a sixth of 150 is 25
    found = json.loads((tmp_path / "levelled.json").read_text())
    assert found["reference"] == "validation" and set(found["models"]) == {"vae"}
    assert "epochs the curve supports for every model" in out.stdout


def test_more_samples_than_the_validation_images_is_one_line(tmp_path):
    out = subprocess.run([sys.executable, "-m", "bench.curve", "--dataset", "synthetic", "--preset", "smoke",
                          "--epochs", "1", "--samples", "60", "--set", "train_subset=300", "--out", str(tmp_path)],
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 2 and out.stderr.count("\n") == 1, out.stderr
    assert "validation images (50)" in out.stderr and "--samples 50 or less" in out.stderr  # 300 / 6
