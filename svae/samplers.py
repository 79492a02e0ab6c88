"""Latent samplers and decoding to named outputs; the sampler registry SAMPLERS is at the end.

A sampler draws latents from a model (svae/interface.py); `decode` turns them into a dict of float
images in [0, 1] on the CPU: x_hat, and for the SVAE also x1, x2, sigma and mix (x1 for the first
half of the samples, x2 for the second).
"""
from dataclasses import dataclass
from typing import Callable, Optional

import torch
from sklearn.mixture import GaussianMixture

from svae.data import as_float
from svae.errors import choose


@dataclass(frozen=True)
class GMMConfig:
    components: int = 100
    covariance: str = "full"
    max_iter: int = 200
    fit_on: str = "train"  # "train" is leak-free; "test" fits on the FID reference images as the authors did
    fit_n: int = 10000


def model_device(model) -> torch.device:
    return next(model.parameters()).device


@torch.no_grad()
def latent_means(model, images, batch_size: int = 500) -> torch.Tensor:
    """mu(x) for every image, in evaluation mode, on the CPU."""
    was_training = model.training
    model.eval()
    device = model_device(model)
    means = [model.encode(as_float(images[i:i + batch_size]).to(device))[0].float().cpu()
             for i in range(0, len(images), batch_size)]
    model.train(was_training)
    return torch.cat(means)


@torch.no_grad()
def decode(model, z, batch_size: int = 500) -> dict:
    """Decode latents batch by batch into named outputs, with `mix` added for split models."""
    was_training = model.training
    model.eval()
    device = model_device(model)
    parts = [model.decode(z[i:i + batch_size].to(device)) for i in range(0, len(z), batch_size)]
    model.train(was_training)
    outputs = {name: torch.cat([p[name].float().cpu() for p in parts]) for name in parts[0]}
    if "x1" in outputs:
        half = len(z) // 2
        outputs["mix"] = torch.cat([outputs["x1"][:half], outputs["x2"][half:]])
    return outputs


def fit_gmm(means: torch.Tensor, cfg: GMMConfig, seed: int) -> GaussianMixture:
    gmm = GaussianMixture(n_components=min(cfg.components, len(means)), covariance_type=cfg.covariance,
                          max_iter=cfg.max_iter, random_state=seed)
    return gmm.fit(means.double().numpy())


def _gmm_latents(model, n, g, *, train_images, test_images, gmm: GMMConfig, seed: int):
    fit_images = (train_images if gmm.fit_on == "train" else test_images)[:gmm.fit_n]
    z, _ = fit_gmm(latent_means(model, fit_images), gmm, seed).sample(n)
    return torch.from_numpy(z).float()[torch.randperm(n, generator=g)]  # sklearn orders by component


def _prior_latents(model, n, g, *, test_images, **_):
    dim = latent_means(model, test_images[:1]).shape[1]
    return torch.randn(n, dim, generator=g)


def _second_stage_latents(model, n, g, **_):
    return model.second_stage_latents(n, g)


def _recon_latents(model, n, g, *, test_images, **_):
    return latent_means(model, test_images[:n])


@dataclass(frozen=True)
class SamplerEntry:
    title: str  # the heading of its table
    description: str  # how it draws z, for captions and the manifest
    draw: Callable  # (model, n, generator, *, train_images, test_images, gmm, seed) -> n x d latents
    models: Optional[tuple] = None  # the models it applies to; None: every model


SAMPLERS = {
    "gmm": SamplerEntry("GMM sampler (ex-post Gaussian mixture, the paper's)",
                        "z from a Gaussian mixture fitted ex post to latent means mu(x)", _gmm_latents),
    "prior": SamplerEntry("prior sampler (z ~ N(0, I))", "z ~ N(0, I)", _prior_latents),
    "second-stage": SamplerEntry("second-stage sampler (two-stage VAE)", "stage-2 decoder of u ~ N(0, I)",
                                 _second_stage_latents, models=("two-stage",)),
    "recon": SamplerEntry("reconstructions of test images", "mu(x) of the first n test images", _recon_latents),
}


def samplers_for(model: str) -> list:
    """The names of the samplers that apply to a model, in registry order."""
    return [name for name, entry in SAMPLERS.items() if entry.models is None or model in entry.models]


def sample_latents(model, sampler: str, n: int, *, train_images, test_images, gmm: GMMConfig, seed: int):
    """n latents from the named sampler, drawn with a generator seeded by `seed`."""
    g = torch.Generator().manual_seed(seed)
    return choose("sampler", sampler, SAMPLERS).draw(model, n, g, train_images=train_images,
                                                     test_images=test_images, gmm=gmm, seed=seed)
