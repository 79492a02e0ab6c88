"""The model interface: exactly what the Trainer, the samplers and the trial use of a model.

A registered model (bench/models.py) is a `Model`; each of its training stages holds a `Trainable`.
Tensors are float images in [0, 1], N x C x H x W, and latents N x latent_dim. Nothing else of a
model is read anywhere, so a model is free in how it computes these.
"""
from typing import Protocol, runtime_checkable

import torch


@runtime_checkable
class Trainable(Protocol):
    """What the Trainer trains (svae/trainer.py), an nn.Module with these two methods.

    forward(x) -> dict with at least
        "x_hat": the reconstruction of x, the tensor the loss compares with x;
        "mu":    N x d latent means (the code of a deterministic encoder): the Trainer counts active
                 units from their variance over an epoch.
    loss(x, out) -> dict of scalar tensors, `out` being forward(x)'s dict:
        "loss":  required, the scalar the optimizer minimises (with a gradient);
        "gamma": optional, a state read once at the end of each epoch (the likelihood's variance);
        every other term (recon_mse, kl, ...) is logged as its mean over the epoch's images.
    The Trainer also calls the usual nn.Module methods: parameters, to, train, state_dict and
    load_state_dict (buffers such as a balanced gamma travel in checkpoints through state_dict).
    """

    def forward(self, x: torch.Tensor) -> dict: ...

    def loss(self, x: torch.Tensor, out: dict) -> dict: ...


@runtime_checkable
class Model(Protocol):
    """What the trial and the samplers use of a registered model (also an nn.Module).

    stages() -> [svae.vae.Stage]: trained in order, each its own Trainable on data derived from the
        training images (one stage, the model itself, for most models).
    encode(x) -> (mu, logvar): the Gaussian q(z|x); the samplers use mu (GMM fits, reconstructions).
        A deterministic encoder returns logvar = -inf, a Gaussian of zero variance, so a sample
        mu + eps * exp(logvar / 2) is its code.
    decode(z) -> dict of images: "x_hat", and any other outputs the model's registry entry names
        (the SVAE adds "x1", "x2" and its map "sigma"; svae.samplers.decode adds "mix").
    Optional: second_stage_latents(n, generator) -> N x d latents from the model's own generator,
        for the "second-stage" sampler (two-stage VAE).
    """

    def stages(self) -> list: ...

    def encode(self, x: torch.Tensor) -> tuple: ...

    def decode(self, z: torch.Tensor) -> dict: ...
