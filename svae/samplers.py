"""Latent samplers and decoding to named outputs.

Every sampler yields a dict of float images in [0, 1] on the CPU: x_hat, and for the SVAE also
x1, x2, sigma and mix (x1 for the first half of the samples, x2 for the second).
"""
from dataclasses import dataclass

import torch
from sklearn.mixture import GaussianMixture

from svae.data import as_float


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
        outputs["mix"] = mix_halves(outputs["x1"], outputs["x2"])
    return outputs


def mix_halves(first, second) -> torch.Tensor:
    """The SVAE's `mix`: rows of first for the first half, of second for the rest. Features are per
    image, so the features of mix are mix_halves of the features of x1 and x2 (bench/trial.py)."""
    half = len(first) // 2
    return torch.cat([torch.as_tensor(first[:half]), torch.as_tensor(second[half:])])


def fit_gmm(means: torch.Tensor, cfg: GMMConfig, seed: int) -> GaussianMixture:
    gmm = GaussianMixture(n_components=min(cfg.components, len(means)), covariance_type=cfg.covariance,
                          max_iter=cfg.max_iter, random_state=seed)
    return gmm.fit(means.double().numpy())


def available_samplers(model) -> list:
    names = ["gmm", "prior", "recon"]
    if hasattr(model, "second_stage_latents"):
        names.insert(2, "second-stage")
    return names


def sample_latents(model, sampler: str, n: int, *, train_images, test_images, gmm: GMMConfig, seed: int):
    """n latents from the named sampler; for "recon", the means of the first n test images."""
    g = torch.Generator().manual_seed(seed)
    if sampler == "prior":
        dim = latent_means(model, test_images[:1]).shape[1]
        return torch.randn(n, dim, generator=g)
    if sampler == "gmm":
        fit_images = (train_images if gmm.fit_on == "train" else test_images)[:gmm.fit_n]
        z, _ = fit_gmm(latent_means(model, fit_images), gmm, seed).sample(n)
        return torch.from_numpy(z).float()[torch.randperm(n, generator=g)]  # sklearn orders by component
    if sampler == "second-stage":
        return model.second_stage_latents(n, g)
    if sampler == "recon":
        return latent_means(model, test_images[:n])
    raise ValueError(f"unknown sampler {sampler!r}")
