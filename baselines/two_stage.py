"""Two-stage VAE (Dai & Wipf, ICLR 2019).

Stage 1 is the ResNet VAE with a learned scalar gamma; stage 2 is a fully-connected VAE, also with a
learned gamma, trained on the whole aggregate posterior of stage 1: its data are the posteriors
(mu, logvar) of every training image, computed once in eval mode, and every batch draws a fresh
z = mu + exp(logvar / 2) * eps from them (demo.py lines 63-74). Both stages train through the same
Trainer, with the preset's learning-rate schedule, as every model (Dai & Wipf halve theirs every
150 of 400 and 300 of 800 epochs, demo.py lines 49, 69, 162-169: docs/fidelity.md says why not here).
Sampling: u ~ N(0, I) -> z = f2(u) + sqrt(gamma_z) * eps -> stage-1 decoder, where gamma_z is the
second stage's learned variance (two_stage_vae_model.py lines 141-144, whose gamma is a std).
"""
import torch
from torch import nn

from svae.backbone import ImageHead
from svae.samplers import decode, latent_posteriors
from svae.vae import GaussianVAE, LearnedGamma, Stage, build_image_vae


def dense_stack(dim: int, width: int, depth: int) -> nn.Sequential:
    layers = [nn.Linear(dim, width), nn.ReLU()]
    for _ in range(depth - 1):
        layers += [nn.Linear(width, width), nn.ReLU()]
    return nn.Sequential(*layers)


class DenseEncoder(nn.Module):
    """ReLU layers; the input is concatenated to the last hidden layer, as in Dai & Wipf's code."""

    def __init__(self, dim: int, width: int, depth: int):
        super().__init__()
        self.hidden = dense_stack(dim, width, depth)
        self.mu = nn.Linear(width + dim, dim)
        self.logvar = nn.Linear(width + dim, dim)

    def forward(self, x):
        h = torch.cat([self.hidden(x), x], dim=1)
        return self.mu(h), self.logvar(h)


class DenseDecoder(nn.Module):
    def __init__(self, dim: int, width: int, depth: int):
        super().__init__()
        self.hidden = dense_stack(dim, width, depth)
        self.out = nn.Linear(width + dim, dim)

    def forward(self, u) -> dict:
        return {"x_hat": self.out(torch.cat([self.hidden(u), u], dim=1))}


def posterior_draw(posteriors: torch.Tensor) -> torch.Tensor:
    """A batch of concatenated (mu, logvar) rows -> z = mu + exp(logvar / 2) * eps, a fresh eps each call."""
    mu, logvar = posteriors.chunk(2, dim=1)
    return mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)


class TwoStageVAE(nn.Module):
    def __init__(self, spec, cfg):
        super().__init__()
        pixels = spec.channels * spec.size * spec.size
        self.stage1 = build_image_vae(spec, cfg, ImageHead, LearnedGamma(pixels), beta=1.0)
        d = cfg.latent_dim
        self.stage2 = GaussianVAE(DenseEncoder(d, cfg.stage2_width, cfg.stage2_depth),
                                  DenseDecoder(d, cfg.stage2_width, cfg.stage2_depth), LearnedGamma(d), beta=1.0)
        self.stage2_epoch_factor = cfg.stage2_epoch_factor

    def encode(self, x):
        return self.stage1.encode(x)

    def decode(self, z) -> dict:
        return self.stage1.decode(z)

    def stages(self) -> list:
        return [Stage("stage1", self.stage1, lambda images: images),
                Stage("stage2", self.stage2, lambda images: torch.cat(latent_posteriors(self.stage1, images), dim=1),
                      self.stage2_epoch_factor, batch_transform=posterior_draw)]

    def second_stage_latents(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """z = f2(u) + sqrt(gamma_z) * eps with u, eps ~ N(0, I) from the generator."""
        dim = self.stage2.encoder.mu.out_features
        u = torch.randn(n, dim, generator=generator)
        noise = torch.randn(n, dim, generator=generator)
        return decode(self.stage2, u)["x_hat"] + self.stage2.likelihood.current().sqrt().cpu() * noise
