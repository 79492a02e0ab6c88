"""Model settings: one dataclass, its fields plain values (the presets fill them per dataset)."""
from dataclasses import dataclass, field

from svae.backbone import BackboneConfig


@dataclass(frozen=True)
class ModelConfig:
    latent_dim: int = 32
    beta: float = 8.0  # KL weight of the SVAE and VAE (the authors' per-dataset value)
    backbone: BackboneConfig = field(default_factory=BackboneConfig)
    # beta-VAE: gamma fixed near a converged per-pixel MSE, so beta * gamma (0.04) is of the same
    # order as the balanced models' and the comparison isolates balancing; beta = 4 as Higgins et al.
    beta_vae_beta: float = 4.0
    beta_vae_gamma: float = 0.01
    # RAE: both penalties (latent z^2 and decoder weight decay) times this; 1 is the RAE authors' values
    rae_penalty_scale: float = 1.0
    # two-stage VAE: Dai & Wipf's second stage (3 dense layers of 1024) trained twice as many epochs
    stage2_width: int = 1024
    stage2_depth: int = 3
    stage2_epoch_factor: float = 2.0
