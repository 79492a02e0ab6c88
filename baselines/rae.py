"""Regularized autoencoder, RAE-L2 (Ghosh et al., ICLR 2020), on the shared backbone.

A deterministic encoder z = mu(x) (the backbone's encoder; its logvar head is left unused) and the
shared decoder with the plain C-channel head, trained on

    loss = mean over the batch of [ mse(x, x_hat) + beta * mean_j z_j^2 ] + lam * sum of w^2

where mse is the per-pixel mean squared error and w runs over the decoder's weights (convolution
kernels and linear matrices; not biases or BatchNorm scales). Its own paper samples it with the
ex-post GMM, fitted to the codes of the training images.

The form of each term and its weight follow the authors' code (github ParthaEth/Regularized_
autoencoders-RAE-, commit 9478b8f): models/rae/loss_functions.py, `total_loss` = Keras `mse` averaged
over the pixels + beta * `embeddig_loss` (the mean of z^2 over latent units); the decoder's weight
decay is Keras `l2(gen_reg_weight)` on its kernels (models/rae/rae_mnist.py, kernel_regularizer),
which adds lam * sum(w^2) to the loss. (beta, lam) = (embedding_weight, gen_reg_weight) of the
'RAE-L2' entries of configurations/config.py: MNIST lines 92-100 (1e-4, 1e-7), CIFAR-10 lines
261-269 (1e-3, 1e-6), CelebA lines 434-443 (1e-4, 1e-7). Fashion-MNIST and synthetic take MNIST's.
One difference: the authors' decoder leaves its first dense layer unpenalised; here every decoder
weight is, since our decoder's dense layers are part of the shared backbone (the paper's
L_REG = ||theta||^2 on the decoder's parameters).
"""
from functools import partial

import torch
from torch import nn

from svae.backbone import Decoder, Encoder, ImageHead
from svae.vae import Stage

PAPER_WEIGHTS = {"mnist": (1e-4, 1e-7), "cifar10": (1e-3, 1e-6), "celeba": (1e-4, 1e-7)}  # (beta, lam)


class RAE(nn.Module):
    def __init__(self, encoder: nn.Module, decoder: nn.Module, beta: float, lam: float):
        super().__init__()
        self.encoder, self.decoder, self.beta, self.lam = encoder, decoder, beta, lam

    def encode(self, x):
        """(z, -inf): a deterministic code is a Gaussian of zero variance (svae/interface.py)."""
        z = self.encoder(x)[0]
        return z, torch.full_like(z, float("-inf"))

    def decode(self, z) -> dict:
        return self.decoder(z)

    def forward(self, x) -> dict:
        z = self.encoder(x)[0]
        return {**self.decode(z), "mu": z}

    def decoder_weight_norm(self):
        """The sum of squares of the decoder's weights (tensors of two or more dimensions)."""
        return sum(w.float().pow(2).sum() for w in self.decoder.parameters() if w.dim() > 1)

    def loss(self, x, out) -> dict:
        mse = (x - out["x_hat"]).float().pow(2).flatten(1).mean(dim=1)
        latent = out["mu"].float().pow(2).mean(dim=1)
        decay = self.decoder_weight_norm()
        return {"loss": (mse + self.beta * latent).mean() + self.lam * decay, "recon_mse": mse.mean().detach(),
                "latent_l2": latent.mean().detach(), "decoder_l2": decay.detach()}

    def stages(self) -> list:
        return [Stage("main", self, lambda images: images)]


def build_rae(spec, cfg) -> RAE:
    beta, lam = PAPER_WEIGHTS.get(spec.name, PAPER_WEIGHTS["mnist"])
    decoder = Decoder(cfg.latent_dim, spec.size, cfg.backbone, partial(ImageHead, channels=spec.channels))
    scale = cfg.rae_penalty_scale  # the search's knob (bench/search.py); 1: the authors' values
    return RAE(Encoder(spec.channels, cfg.latent_dim, cfg.backbone), decoder, beta * scale, lam * scale)
