"""Presets: the authors' settings per dataset (`paper`) and a shrunken copy for CPUs (`smoke`).

Epoch counts (the paper publishes none): CIFAR-10 700 and CelebA 70, as the first author's related
work used with this network; MNIST and Fashion-MNIST 100, where the balanced VAE's FID has levelled
off in that work's curves at a fraction of CIFAR-10's cost. The two-stage VAE's second stage trains
twice the first stage's epochs, as in Dai & Wipf's defaults (400 + 800).
"""
from dataclasses import dataclass, field, replace
from typing import Optional

from svae.backbone import BackboneConfig
from svae.config import ModelConfig
from svae.errors import HarnessError
from svae.samplers import GMMConfig

# latent size and KL weight from the authors' code; Fashion-MNIST and synthetic take MNIST's
PAPER_MODEL = {"mnist": (32, 8.0), "fashion-mnist": (32, 8.0), "cifar10": (200, 3.0), "celeba": (150, 3.0),
               "synthetic": (32, 8.0)}
PAPER_EPOCHS = {"mnist": 100, "fashion-mnist": 100, "cifar10": 700, "celeba": 70, "synthetic": 20}


@dataclass(frozen=True)
class Settings:
    """Everything one trial needs besides its dataset, model and seed."""
    model: ModelConfig
    epochs: int
    batch_size: int = 100
    lr: float = 1e-4
    amp: bool = False  # bfloat16 autocast on GPUs; off by default, so GPU and CPU runs compute alike
    train_subset: Optional[int] = None  # train on the first n training images; None: all
    fid_backbone: str = "inception"  # or "domain": the offline fd_domain stand-in, never called FID
    fid_samples: int = 10000
    metrics: tuple = ("fid", "kid", "pr")  # bench/metrics: FID (fd_domain), KID, precision/recall/density/coverage
    gmm: GMMConfig = field(default_factory=GMMConfig)
    grid_samples: int = 64  # images per output saved for the reports' grids


def paper_model_config(dataset: str) -> ModelConfig:
    latent_dim, beta = PAPER_MODEL[dataset]
    return ModelConfig(latent_dim=latent_dim, beta=beta)


def paper(dataset: str) -> Settings:
    return Settings(model=paper_model_config(dataset), epochs=PAPER_EPOCHS[dataset])


def smoke(dataset: str) -> Settings:
    """Minutes on two CPU cores: a narrow network, 2,000 images, three epochs, fd_domain on 500 samples.

    Smaller batches, a larger learning rate and a faster BatchNorm momentum let ~190 steps learn
    something visible (gamma balancing needs steps to fall from 1); the figures only show that the
    pipeline works, they are not results.
    """
    model = replace(paper_model_config(dataset),
                    backbone=BackboneConfig(base_width=16, embedding_dim=64, bn_momentum=0.1),
                    stage2_width=128, stage2_depth=2)
    return Settings(model=model, epochs=3, batch_size=32, lr=1e-3, train_subset=2000, fid_backbone="domain",
                    fid_samples=500, gmm=GMMConfig(components=10, max_iter=100, fit_n=2000))


PRESETS = {"paper": paper, "smoke": smoke}


def settings_for(preset: str, dataset: str, **overrides) -> Settings:
    if preset not in PRESETS:
        raise HarnessError(f"unknown preset {preset!r}; choose from {', '.join(PRESETS)}")
    settings = PRESETS[preset](dataset)
    return replace(settings, **{k: v for k, v in overrides.items() if v is not None})
