"""RAE-L2: its loss against a hand computation, its deterministic code, its paper's weights."""
import torch
import torch.nn.functional as F

from bench.models import MODELS, build_model
from svae.data import SPECS
from svae.samplers import GMMConfig, sample_latents


def test_loss_is_mse_plus_latent_and_decoder_weight_penalties(tiny_cfg):
    torch.manual_seed(0)
    model = build_model("rae", SPECS["mnist"], tiny_cfg)
    x = torch.rand(6, 1, 32, 32)
    out = model(x)
    terms = model.loss(x, out)
    # Written out independently: the decoder's conv kernels and linear matrices, found by module type.
    weights = [m.weight for m in model.decoder.modules()
               if isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d, torch.nn.Linear))]
    decay = sum(float((w.detach() ** 2).sum()) for w in weights)
    expected = F.mse_loss(out["x_hat"], x).item() + 1e-4 * float((out["mu"] ** 2).mean()) + 1e-7 * decay
    assert abs(terms["loss"].item() - expected) < 1e-6 * expected
    assert abs(terms["decoder_l2"].item() - decay) < 1e-5 * decay
    assert "gamma" not in terms and "kl" not in terms


def test_code_is_deterministic_and_is_what_the_samplers_use(tiny_cfg):
    torch.manual_seed(0)
    model = build_model("rae", SPECS["synthetic"], tiny_cfg).eval()
    x = torch.rand(5, 1, 32, 32)
    z, logvar = model.encode(x)
    assert torch.equal(model(x)["mu"], z) and torch.equal(model(x)["mu"], model(x)["mu"])
    assert torch.isneginf(logvar).all()
    recon = sample_latents(model, "recon", 5, train_images=x, test_images=x, gmm=GMMConfig(), seed=0)
    assert torch.allclose(recon, z)


def test_weights_are_the_authors_per_dataset_and_it_is_compared_at_the_gmm(tiny_cfg):
    # configurations/config.py of the authors' code: (embedding_weight, gen_reg_weight) of 'RAE-L2'.
    for dataset, beta, lam in (("mnist", 1e-4, 1e-7), ("cifar10", 1e-3, 1e-6), ("celeba", 1e-4, 1e-7),
                               ("fashion-mnist", 1e-4, 1e-7)):
        model = build_model("rae", SPECS[dataset], tiny_cfg)
        assert (model.beta, model.lam) == (beta, lam), dataset
    assert MODELS["rae"].compared_at == "gmm" and MODELS["rae"].label == "RAE-L2"
    assert "rae-l2" in MODELS["rae"].literature


def test_the_search_knob_scales_both_penalties_and_keeps_their_ratio(tiny_cfg):
    from dataclasses import replace
    published = build_model("rae", SPECS["mnist"], tiny_cfg)
    scaled = build_model("rae", SPECS["mnist"], replace(tiny_cfg, rae_penalty_scale=4.0))
    assert (published.beta, published.lam) == (1e-4, 1e-7)  # the authors' MNIST values at scale 1
    assert (scaled.beta, scaled.lam) == (4e-4, 4e-7)
