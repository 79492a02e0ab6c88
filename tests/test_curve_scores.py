"""Quality against epochs inside every trial (bench/trial.py CurveScores, Settings.curve_every): scored
after the chosen epochs of a model's last stage, kept in the checkpoint through a resume, and without
any effect on what the trial trains."""
from dataclasses import replace

import pandas as pd
import pytest
import torch

from bench.models import build_model
from bench.presets import settings_for
from bench.trial import Evaluation, TrialSpec, run_trial
from svae.data import SPECS, make_synthetic
from svae.trainer import TrainConfig, Trainer, load_checkpoint, seed_everything


def trial(tmp_path, model: str, curve_every: int) -> tuple:
    """(metrics.csv, {checkpoint file: weights}) of a 3-epoch smoke trial on the synthetic images."""
    settings = replace(settings_for("smoke", "synthetic"), epochs=3, curve_every=curve_every, curve_samples=200,
                       fid_samples=200, train_subset=400)
    folder = tmp_path / f"{model}-{curve_every}"
    run_trial(TrialSpec("synthetic", model, 0), settings, Evaluation(fid_cache=str(tmp_path / "cache")), folder,
              lambda metrics, where: None)
    weights = {p.name: load_checkpoint(p)["model"] for p in sorted(folder.glob("checkpoint-*.pt"))}
    return pd.read_csv(folder / "metrics.csv"), weights


@pytest.mark.parametrize("model, scored", [("svae", {("main", 2), ("main", 3)}),
                                           ("two-stage", {("stage2", 2), ("stage2", 4), ("stage2", 6)})])
def test_scoring_during_training_changes_nothing_the_trial_trains(model, scored, tmp_path):
    plain, plain_weights = trial(tmp_path, model, curve_every=0)
    curved, curved_weights = trial(tmp_path, model, curve_every=2)

    assert plain_weights.keys() == curved_weights.keys() and plain_weights
    for name, state in plain_weights.items():
        assert all(torch.equal(state[k], curved_weights[name][k]) for k in state), name
    assert plain["loss"].tolist() == curved["loss"].tolist()
    assert not any(c.endswith("_fd_domain") for c in plain.columns)

    columns = ["x_hat_fd_domain", "x1_fd_domain", "x2_fd_domain"] if model == "svae" else ["x_hat_fd_domain"]
    assert "mix_fd_domain" not in curved.columns  # x1 and x2 are raw until the trial's orientation is known
    has_score = curved["x_hat_fd_domain"].notna()
    assert set(zip(curved.loc[has_score, "stage"], curved.loc[has_score, "epoch"])) == scored
    assert (curved.loc[has_score, columns] > 0).all().all() and curved.loc[has_score, "curve_seconds"].gt(0).all()


def test_epoch_scores_survive_a_resume(tmp_path, tiny_cfg):
    """The figures are part of the epoch's record before its checkpoint is written: a run killed after
    epoch 1 and resumed has them for every epoch, and calls the scorer once per epoch trained."""
    images = make_synthetic(200, seed=0).images
    called = []

    def score(epoch):
        called.append(epoch)
        return {"x_hat_fd_domain": 10.0 / epoch}

    class Killed(Exception):
        pass

    def die_after_first(history):
        if history[-1]["epoch"] == 1:
            raise Killed

    def fit(on_epoch_end=None):
        seed_everything(0)
        model = build_model("vae", SPECS["synthetic"], tiny_cfg)
        return Trainer(TrainConfig(epochs=3, batch_size=50, progress=False), checkpoint_path=tmp_path / "c.pt",
                       on_epoch_end=on_epoch_end, epoch_scores=score).fit(model, images)

    with pytest.raises(Killed):
        fit(die_after_first)
    history = fit()
    assert called == [1, 2, 3]
    assert [m["x_hat_fd_domain"] for m in history] == [10.0, 5.0, 10.0 / 3]
