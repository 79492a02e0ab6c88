import pytest
import torch

from bench.models import MODELS, build_model
from svae.data import SPECS, make_synthetic
from svae.errors import HarnessError, NonFiniteLossError
from svae.trainer import TrainConfig, Trainer, seed_everything

IMAGES = make_synthetic(200, seed=0).images


class Interrupted(Exception):
    pass


def train(name, cfg, seed=0, epochs=2, checkpoint=None, images=IMAGES, lr=1e-3, crash_after=None,
          channels_last=False):
    """Train every stage; with crash_after=k, die right after the k-th epoch's checkpoint, as a kill would."""
    seed_everything(seed)
    model = build_model(name, SPECS["synthetic"], cfg)
    done, histories = [], {}

    def count_epoch(history):
        done.append(history[-1]["epoch"])
        if len(done) == crash_after:
            raise Interrupted

    for stage in model.stages():
        path = checkpoint.with_name(f"{checkpoint.stem}-{stage.name}.pt") if checkpoint else None
        trainer = Trainer(TrainConfig(epochs=round(epochs * stage.epoch_factor), batch_size=50, lr=lr, seed=seed,
                                      progress=False, channels_last=channels_last),
                          checkpoint_path=path, on_epoch_end=count_epoch)
        histories[stage.name] = trainer.fit(stage.module, stage.make_data(images), stage.batch_transform)
    return model, histories


def same_weights(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


@pytest.mark.parametrize("name", list(MODELS))
def test_loss_falls_over_a_few_epochs(name, tiny_cfg):
    _, histories = train(name, tiny_cfg, epochs=3)
    for stage, history in histories.items():
        losses = [m["loss"] for m in history]
        assert losses[-1] < losses[0], (stage, losses)


def test_gamma_never_increases_step_by_step(tiny_cfg):
    seed_everything(0)
    model = build_model("svae", SPECS["synthetic"], tiny_cfg)
    seen = []
    model.register_forward_hook(lambda module, args, out: seen.append(float(module.likelihood.gamma)))
    history = Trainer(TrainConfig(epochs=3, batch_size=50, lr=1e-3, progress=False)).fit(model, IMAGES)
    assert seen[0] == 1.0
    assert all(b <= a for a, b in zip(seen, seen[1:]))
    assert seen[-1] < seen[0]  # it does fall, tracking the reconstruction error
    assert [m["gamma"] for m in history] == sorted((m["gamma"] for m in history), reverse=True)


def test_same_seed_same_weights_different_seed_different_weights(tiny_cfg):
    a, _ = train("svae", tiny_cfg, seed=1)
    b, _ = train("svae", tiny_cfg, seed=1)
    c, _ = train("svae", tiny_cfg, seed=2)
    assert same_weights(a, b)
    assert not same_weights(a, c)


@pytest.mark.parametrize("name, crash_after, channels_last",
                         [("svae", 1, False), ("two-stage", 1, False), ("two-stage", 3, False),
                          ("svae", 1, True), ("two-stage", 3, True)])
def test_resume_after_a_crash_equals_uninterrupted_training(name, crash_after, channels_last, tiny_cfg, tmp_path):
    # two-stage: 2 epochs of stage 1, then 4 of stage 2; crash_after=3 dies inside stage 2
    run = dict(epochs=2, channels_last=channels_last)
    straight, _ = train(name, tiny_cfg, checkpoint=tmp_path / "straight.pt", **run)
    with pytest.raises(Interrupted):
        train(name, tiny_cfg, checkpoint=tmp_path / "resumed.pt", crash_after=crash_after, **run)
    # A new process rebuilds the model from scratch: do the same, then continue from the checkpoints.
    resumed, histories = train(name, tiny_cfg, checkpoint=tmp_path / "resumed.pt", **run)
    assert same_weights(straight, resumed)
    convolutions = [p for p in resumed.parameters() if p.dim() == 4]
    assert convolutions and all(p.is_contiguous() for p in convolutions)  # fit hands back contiguous memory
    assert [m["epoch"] for m in next(iter(histories.values()))] == [1, 2]
    gamma_key = "likelihood.gamma" if name == "svae" else "stage1.likelihood.log_sd"
    assert gamma_key in resumed.state_dict()  # gamma's state travels in the checkpoint


def test_epoch_metrics_are_recorded(tiny_cfg, tmp_path):
    _, histories = train("svae", tiny_cfg, epochs=2, checkpoint=tmp_path / "c.pt")
    metrics = histories["main"][-1]
    for key in ("loss", "recon_mse", "kl", "gamma", "active_units", "seconds", "images_per_s", "epoch"):
        assert key in metrics
    assert 0 <= metrics["active_units"] <= tiny_cfg.latent_dim
    assert metrics["recon_mse"] > 0 and metrics["kl"] > 0


def test_non_finite_loss_names_epoch_and_step(tiny_cfg):
    images = IMAGES.float() / 255
    images[120] = float("nan")  # order is shuffled, so the step is found, not assumed
    seed_everything(0)
    model = build_model("vae", SPECS["synthetic"], tiny_cfg)
    with pytest.raises(NonFiniteLossError, match=r"non-finite loss at epoch 1, step \d of 4"):
        Trainer(TrainConfig(epochs=2, batch_size=50, progress=False)).fit(model, images)


def test_corrupt_checkpoint_is_refused_and_kept(tiny_cfg, tmp_path):
    path = tmp_path / "c.pt"
    path.write_bytes(b"not a checkpoint")
    model = build_model("vae", SPECS["synthetic"], tiny_cfg)
    with pytest.raises(HarnessError, match="corrupt.*delete it"):
        Trainer(TrainConfig(epochs=1, progress=False), checkpoint_path=path).fit(model, IMAGES)
    assert path.read_bytes() == b"not a checkpoint"


class PlainAutoencoder(torch.nn.Module):
    """The least a Trainable needs (svae/interface.py): x_hat and mu, and a loss with "loss" only."""

    def __init__(self):
        super().__init__()
        self.encoder, self.decoder = torch.nn.Linear(32 * 32, 4), torch.nn.Linear(4, 32 * 32)

    def forward(self, x):
        mu = self.encoder(x.flatten(1))
        return {"x_hat": self.decoder(mu).view_as(x), "mu": mu}

    def loss(self, x, out):
        return {"loss": (x - out["x_hat"]).pow(2).mean()}


def test_a_model_without_gamma_or_kl_trains_through_the_same_trainer():
    seed_everything(0)
    history = Trainer(TrainConfig(epochs=2, batch_size=50, lr=1e-2, progress=False)).fit(PlainAutoencoder(), IMAGES)
    assert "gamma" not in history[-1] and "kl" not in history[-1]
    assert history[-1]["loss"] < history[0]["loss"] and 0 <= history[-1]["active_units"] <= 4
