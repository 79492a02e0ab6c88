"""A Gaussian VAE that owns its forward pass and its loss; every model here is one of these.

loss = mean over the batch of [ nll(x, x_hat) + beta * KL(q(z|x) || N(0, I)) ], where the
Gaussian likelihood's variance gamma is balanced (the SVAE and VAE), fixed (beta-VAE) or learned
(two-stage VAE). It satisfies svae/interface.py's Model and Trainable.
"""
from dataclasses import dataclass
from functools import partial
from collections.abc import Callable

import torch
from torch import nn

from svae.backbone import Decoder, Encoder


class BalancedGamma(nn.Module):
    """Gamma balancing (Asperti & Trentin 2020): gamma tracks a running per-pixel MSE and never rises.

    gamma and the running MSE are buffers, so they are saved with the model's state_dict. The
    batch's loss uses gamma as it was before the batch; the update follows, as in the authors' code.
    """

    def __init__(self, momentum: float = 0.99):
        super().__init__()
        self.momentum = momentum
        self.register_buffer("gamma", torch.tensor(1.0))
        self.register_buffer("running_mse", torch.tensor(1.0))

    def forward(self, sse, mse_value):
        nll = 0.5 * sse / self.gamma.clone()  # a copy: the update below is in place
        if self.training:
            with torch.no_grad():
                self.running_mse.mul_(self.momentum).add_((1 - self.momentum) * mse_value)
                self.gamma.copy_(torch.minimum(self.gamma, self.running_mse))
        return nll

    def current(self):
        return self.gamma


class FixedGamma(nn.Module):
    """A fixed-variance Gaussian likelihood (beta-VAE)."""

    def __init__(self, gamma: float):
        super().__init__()
        self.register_buffer("gamma", torch.tensor(float(gamma)))

    def forward(self, sse, mse_value):
        return 0.5 * sse / self.gamma

    def current(self):
        return self.gamma


class LearnedGamma(nn.Module):
    """A learned scalar variance gamma with its normaliser D/2 * log gamma (Dai & Wipf).

    The parameter is the log of gamma's square root, a standard deviation, as Dai & Wipf learn it
    (two_stage_vae_model.py: loggamma_x, gamma_x = exp(loggamma_x) divides x - x_hat): Adam moves a
    parameter by about the learning rate per step, so log gamma moves twice as fast as it would if it
    were the parameter itself. `current()` is the variance, comparable with the reconstruction MSE.
    """

    def __init__(self, dims: int):
        super().__init__()
        self.dims = dims
        self.log_sd = nn.Parameter(torch.zeros(()))

    def forward(self, sse, mse_value):
        return 0.5 * sse * torch.exp(-2 * self.log_sd) + self.dims * self.log_sd

    def current(self):
        return torch.exp(2 * self.log_sd.detach())


def kl_to_standard_normal(mu, logvar):
    """KL(N(mu, exp(logvar)) || N(0, I)) per sample."""
    return 0.5 * (mu.pow(2) + logvar.exp() - 1 - logvar).sum(dim=1)


@dataclass
class Stage:
    """One training stage: the module to train and how its data derives from the training images.

    batch_transform, if set, turns each batch of that tensor into the module's input, drawing any
    randomness from torch's global generator (saved in every checkpoint, so resume stays exact).
    The learning-rate schedule is the preset's, the same for every model (bench/presets.py).
    """
    name: str
    module: nn.Module
    make_data: Callable  # training images (uint8) -> this stage's training tensor
    epoch_factor: float = 1.0
    batch_transform: Callable | None = None


class GaussianVAE(nn.Module):
    def __init__(self, encoder: nn.Module, decoder: nn.Module, likelihood: nn.Module, beta: float):
        super().__init__()
        self.encoder, self.decoder, self.likelihood, self.beta = encoder, decoder, likelihood, beta

    def encode(self, x):
        return self.encoder(x)

    def decode(self, z) -> dict:
        return self.decoder(z)

    def forward(self, x) -> dict:
        mu, logvar = self.encode(x)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
        return {**self.decode(z), "mu": mu, "logvar": logvar, "z": z}

    def loss(self, x, out) -> dict:
        err = (x - out["x_hat"]).float().pow(2).flatten(1)
        sse = err.sum(dim=1)
        mse = err.mean()
        nll = self.likelihood(sse, mse.detach())
        kl = kl_to_standard_normal(out["mu"].float(), out["logvar"].float())
        return {"loss": (nll + self.beta * kl).mean(), "recon_mse": mse.detach(), "kl": kl.mean().detach(),
                "gamma": self.likelihood.current().detach()}

    def stages(self) -> list:
        return [Stage("main", self, lambda images: images)]


def build_image_vae(spec, cfg, head_cls, likelihood: nn.Module, beta: float) -> GaussianVAE:
    """The paper's ResNet VAE for a dataset, with the given output head and likelihood."""
    head = partial(head_cls, channels=spec.channels)
    return GaussianVAE(Encoder(spec.channels, cfg.latent_dim, cfg.backbone),
                       Decoder(cfg.latent_dim, spec.size, cfg.backbone, head), likelihood, beta)
