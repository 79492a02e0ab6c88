"""The two-stage VAE as Dai & Wipf train and sample it (daib13/TwoStageVAE demo.py and
network/two_stage_vae_model.py), and the Trainer's learning-rate schedule."""
import math

import pytest
import torch

from bench.gamma import AT_LIMIT, TRACKS, gamma_check
from bench.models import MODELS, build_model
from svae.config import ModelConfig
from svae.data import SPECS, make_synthetic
from svae.samplers import decode, latent_posteriors
from svae.trainer import TrainConfig, Trainer, learning_rate, seed_everything
from svae.vae import LearnedGamma

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
        model.stage2.likelihood.log_sd.fill_(0.5 * math.log(gamma_z))  # gamma_z is a variance
    n, dim = 4000, tiny_cfg.latent_dim
    z = model.second_stage_latents(n, torch.Generator().manual_seed(3))
    u = torch.randn(n, dim, generator=torch.Generator().manual_seed(3))  # the same u, drawn first
    residual = z - decode(model.stage2, u)["x_hat"]
    assert abs(float(residual.std()) - math.sqrt(gamma_z)) < 0.03 * math.sqrt(gamma_z)
    again = model.second_stage_latents(n, torch.Generator().manual_seed(3))
    assert torch.equal(z, again)  # seeded: the same generator gives the same samples


def test_learning_rate_follows_dai_and_wipf_schedule():
    # demo.py line 49: lr * 0.5 ** floor(epoch / 150) with epochs counted from 0, 400 epochs;
    # line 69: the same with 300 of 800. Our epochs count from 1. A preset may set it for every model.
    LR_HALVING = 150 / 400
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


def test_learned_gamma_is_dai_and_wipfs_log_standard_deviation():
    # two_stage_vae_model.py line 39: sum(((x - x_hat) / gamma_x) ** 2 / 2 + log gamma_x) with
    # gamma_x = exp(loggamma_x), a standard deviation; the variance is gamma_x ** 2.
    likelihood = LearnedGamma(dims=6)
    with torch.no_grad():
        likelihood.log_sd.fill_(-1.5)
    err = torch.tensor([[0.1, -0.2, 0.3, 0.0, 0.05, -0.4]])
    gamma_x = math.exp(-1.5)
    expected = float(((err / gamma_x) ** 2 / 2 + math.log(gamma_x)).sum())
    assert float(likelihood(err.pow(2).sum(dim=1), None).detach()) == pytest.approx(expected, rel=1e-6)
    assert float(likelihood.current()) == pytest.approx(gamma_x ** 2, rel=1e-6)


def test_stage1_gamma_tracks_the_mse_in_a_short_real_run(tiny_cfg):
    # Adam moves log sd by about lr per step: 360 steps at 5e-3 can take gamma from 1 to exp(-2 * 1.8),
    # past a reconstruction MSE of ~0.06; the first epochs are still far above it, as the check says.
    seed_everything(0)
    model = build_model("two-stage", SPECS["synthetic"], tiny_cfg)
    history = Trainer(TrainConfig(epochs=18, batch_size=8, lr=5e-3, progress=False)).fit(
        model.stage1, make_synthetic(160, seed=0).images)
    final = history[-1]
    assert final["recon_mse"] / 2 <= final["gamma"] <= 2 * final["recon_mse"]
    assert gamma_check(final) == TRACKS
    assert gamma_check(history[1]) == AT_LIMIT and history[1]["gamma"] > 4 * history[1]["recon_mse"]


@pytest.mark.parametrize("gamma, mse, verdict", [(0.03, 0.02, TRACKS), (0.011, 0.02, TRACKS),
                                                 (0.31, 0.018, AT_LIMIT), (0.009, 0.02, AT_LIMIT)])
def test_gamma_check_is_a_factor_of_two_either_way(gamma, mse, verdict):
    assert gamma_check({"gamma": gamma, "recon_mse": mse}) == verdict


def test_only_models_that_learn_gamma_record_the_check():
    # a registry fact, not a name: the models whose image model's likelihood is a LearnedGamma
    for name, entry in MODELS.items():
        model = entry.build(SPECS["synthetic"], ModelConfig(latent_dim=4, beta=1.0))
        image_model = model.stages()[0].module
        assert entry.learns_gamma == isinstance(getattr(image_model, "likelihood", None), LearnedGamma), name


def test_one_learning_rate_schedule_per_preset_for_every_model_and_stage():
    from dataclasses import replace

    from bench.presets import PRESETS, settings_for
    from bench.trial import train_config
    assert all(settings_for(preset, "synthetic").lr_halving is None for preset in PRESETS)  # constant
    settings = replace(settings_for("smoke", "synthetic"), lr_halving=0.375)  # --set lr_halving=0.375
    for name in MODELS:
        for stage in build_model(name, SPECS["synthetic"], settings.model).stages():
            assert train_config(settings, stage, seed=0).lr_halving == 0.375, (name, stage.name)
