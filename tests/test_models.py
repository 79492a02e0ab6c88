from dataclasses import replace

import pytest
import torch

from bench.models import MODELS, build_model
from svae.data import SPECS
from svae.errors import HarnessError
from svae.samplers import decode, samplers_for

SHAPES = [SPECS["mnist"], replace(SPECS["mnist"], channels=3), replace(SPECS["mnist"], channels=3, size=64)]


@pytest.mark.parametrize("name", list(MODELS))
@pytest.mark.parametrize("spec", SHAPES, ids=lambda s: f"{s.channels}x{s.size}")
def test_every_model_runs_forward_with_the_right_shapes(name, spec, tiny_cfg):
    torch.manual_seed(0)
    model = build_model(name, spec, tiny_cfg)
    x = torch.rand(4, spec.channels, spec.size, spec.size)
    for stage in model.stages():
        data = stage.make_data(x)
        data = stage.batch_transform(data) if stage.batch_transform else data
        out = stage.module(data)
        assert out["x_hat"].shape == data.shape
        assert out["mu"].shape == (4, tiny_cfg.latent_dim)
        terms = stage.module.loss(data, out)
        assert terms["loss"].shape == () and torch.isfinite(terms["loss"])
    outputs = decode(model, torch.randn(6, tiny_cfg.latent_dim))
    for output in MODELS[name].outputs:  # every output its registry entry says is scored
        assert outputs[output].shape == (6, spec.channels, spec.size, spec.size)


def test_split_head_composition_is_exact_and_maps_lie_in_unit_interval(tiny_cfg):
    torch.manual_seed(0)
    model = build_model("svae", SPECS["cifar10"], tiny_cfg)
    out = model(torch.rand(5, 3, 32, 32))
    assert out["sigma"].shape == (5, 1, 32, 32)
    assert out["x1"].shape == out["x2"].shape == (5, 3, 32, 32)
    sigma, x1, x2 = out["sigma"], out["x1"], out["x2"]
    assert torch.equal(out["x_hat"], sigma * x1 + (1 - sigma) * x2)
    for name in ("sigma", "x1", "x2", "x_hat"):
        assert 0 <= out[name].min() and out[name].max() <= 1


def test_mix_takes_x1_for_the_first_half_and_x2_for_the_second(tiny_cfg):
    torch.manual_seed(0)
    model = build_model("svae", SPECS["mnist"], tiny_cfg)
    outputs = decode(model, torch.randn(10, tiny_cfg.latent_dim))
    assert torch.equal(outputs["mix"][:5], outputs["x1"][:5])
    assert torch.equal(outputs["mix"][5:], outputs["x2"][5:])
    assert not torch.equal(outputs["x1"], outputs["x2"])


def test_paper_configurations_have_the_published_parameter_counts():
    from bench.presets import paper_model_config
    counts = {ds: sum(p.numel() for p in build_model("svae", SPECS[ds], paper_model_config(ds)).parameters())
              for ds in ("mnist", "cifar10", "celeba")}
    assert abs(counts["mnist"] / 1e6 - 12.8) < 0.05
    assert abs(counts["cifar10"] / 1e6 - 13.1) < 0.1
    assert abs(counts["celeba"] / 1e6 - 29.0) < 0.1
    vae = sum(p.numel() for p in build_model("vae", SPECS["mnist"], paper_model_config("mnist")).parameters())
    # the split head adds one 3x3 conv's worth: (2C+1) vs C output channels from 64
    assert counts["mnist"] - vae == 64 * 9 * 2 + 2


def test_samplers_per_model():
    assert samplers_for("svae") == ["gmm", "prior", "recon"]
    assert samplers_for("two-stage") == ["gmm", "prior", "second-stage", "recon"]


def test_unknown_model_is_a_clear_error(tiny_cfg):
    with pytest.raises(HarnessError, match="unknown model 'gan'; choose from svae, vae"):
        build_model("gan", SPECS["mnist"], tiny_cfg)


@pytest.mark.parametrize("sigma_bias, swapped", [(-3.0, True), (3.0, False)])
def test_components_are_named_by_which_one_sigma_weights_more(sigma_bias, swapped, tiny_cfg):
    from svae.data import make_synthetic
    from svae.samplers import orient_components, oriented
    torch.manual_seed(0)
    model = build_model("svae", SPECS["synthetic"], tiny_cfg)
    with torch.no_grad():
        model.decoder.head.conv.bias[0] = sigma_bias  # channel 0 is sigma: mostly below/above 0.5
    orientation = orient_components(model, make_synthetic(64, seed=0).images, seed=0)
    assert orientation["swapped"] is swapped and (orientation["mean_sigma"] < 0.5) is swapped
    raw = decode(model, torch.randn(10, tiny_cfg.latent_dim))
    named = oriented(raw, orientation)
    first, second = ("x2", "x1") if swapped else ("x1", "x2")
    assert torch.equal(named["x1"], raw[first]) and torch.equal(named["x2"], raw[second])
    assert float(named["sigma"].mean()) >= 0.5  # x1 is the component sigma weights more
    assert torch.allclose(named["sigma"] * named["x1"] + (1 - named["sigma"]) * named["x2"], raw["x_hat"], atol=1e-6)
    assert torch.equal(named["mix"][:5], named["x1"][:5]) and torch.equal(named["mix"][5:], named["x2"][5:])
    vae = build_model("vae", SPECS["synthetic"], tiny_cfg)
    assert orient_components(vae, make_synthetic(8, seed=0).images, 0) is None
