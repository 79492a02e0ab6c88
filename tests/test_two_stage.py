"""The two-stage VAE as Dai & Wipf train and sample it (daib13/TwoStageVAE demo.py and
network/two_stage_vae_model.py), and the Trainer's learning-rate schedule."""
import math

import pytest
import torch

from baselines.two_stage import LR_HALVING
from bench.models import build_model
from svae.data import SPECS, make_synthetic
from svae.samplers import decode, latent_posteriors
from svae.trainer import TrainConfig, Trainer, learning_rate, seed_everything

IMAGES = make_synthetic(200, seed=0).images


def test_stage2_draws_fresh_latents_from_the_posterior_every_epoch(tiny_cfg):
    seed_everything(0)
    model = build_model("two-stage", SPECS["synthetic"], tiny_cfg)
    stage1, stage2 = model.stages()
    same_image = IMAGES[:1].repeat(50, 1, 1, 1)  # one batch per epoch, every row the same posterior
    mu, logvar = latent_posteriors(model.stage1, same_image[:1])
    seen = []
    stage2.module.register_forward_pre_hook(lambda module, args: seen.append(args[0].detach().clone()))
    Trainer(TrainConfig(epochs=2, batch_size=50, progress=False)).fit(
        stage2.module, stage2.make_data(same_image), stage2.batch_transform)
    first, second = seen
    assert not torch.allclose(first, second)  # the same image, a new z in each epoch
    # Each row is mu + exp(logvar / 2) * eps: standardised, the draws are N(0, 1).
    eps = (torch.cat([first, second]) - mu) / torch.exp(0.5 * logvar)
    assert abs(float(eps.mean())) < 0.15 and abs(float(eps.std()) - 1) < 0.1


@pytest.mark.parametrize("gamma_z", [0.04, 1e-8])
def test_second_stage_sampling_adds_its_own_noise_of_std_sqrt_gamma_z(gamma_z, tiny_cfg):
    torch.manual_seed(0)
    model = build_model("two-stage", SPECS["synthetic"], tiny_cfg)
    with torch.no_grad():
        model.stage2.likelihood.log_gamma.fill_(math.log(gamma_z))  # a variance: its std is sqrt
    n, dim = 4000, tiny_cfg.latent_dim
    z = model.second_stage_latents(n, torch.Generator().manual_seed(3))
    u = torch.randn(n, dim, generator=torch.Generator().manual_seed(3))  # the same u, drawn first
    residual = z - decode(model.stage2, u)["x_hat"]
    assert abs(float(residual.std()) - math.sqrt(gamma_z)) < 0.03 * math.sqrt(gamma_z)
    again = model.second_stage_latents(n, torch.Generator().manual_seed(3))
    assert torch.equal(z, again)  # seeded: the same generator gives the same samples


def test_learning_rate_follows_dai_and_wipf_schedule():
    # demo.py line 49: lr * 0.5 ** floor(epoch / 150) with epochs counted from 0, 400 epochs;
    # line 69: the same with 300 of 800. Our epochs count from 1.
    stage1 = TrainConfig(lr=1e-4, epochs=400, lr_halving=LR_HALVING)
    stage2 = TrainConfig(lr=1e-4, epochs=800, lr_halving=LR_HALVING)
    expected1 = {1: 1e-4, 150: 1e-4, 151: 5e-5, 300: 5e-5, 301: 2.5e-5, 400: 2.5e-5}
    expected2 = {1: 1e-4, 300: 1e-4, 301: 5e-5, 600: 5e-5, 601: 2.5e-5, 800: 2.5e-5}
    assert {e: learning_rate(stage1, e) for e in expected1} == pytest.approx(expected1, rel=1e-12)
    assert {e: learning_rate(stage2, e) for e in expected2} == pytest.approx(expected2, rel=1e-12)
    assert learning_rate(TrainConfig(lr=1e-3, epochs=7), 7) == 1e-3  # no schedule: constant


def test_trainer_applies_the_schedule_per_epoch(tiny_cfg):
    seed_everything(0)
    model = build_model("vae", SPECS["synthetic"], tiny_cfg)
    history = Trainer(TrainConfig(epochs=4, batch_size=50, lr=1e-3, lr_halving=0.5, progress=False)).fit(model, IMAGES)
    assert [m["lr"] for m in history] == [1e-3, 1e-3, 5e-4, 5e-4]


def test_every_batch_is_full_and_the_tail_is_dropped(tiny_cfg):
    seed_everything(0)
    model = build_model("vae", SPECS["synthetic"], tiny_cfg)
    sizes = []
    model.register_forward_pre_hook(lambda module, args: sizes.append(len(args[0])))
    Trainer(TrainConfig(epochs=2, batch_size=60, progress=False)).fit(model, IMAGES)  # 200 = 3 * 60 + 20
    assert sizes == [60] * 6
