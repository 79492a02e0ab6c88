"""beta-VAE (Higgins et al. 2017): a fixed KL weight on a fixed-variance Gaussian, no balancing."""
from svae.backbone import ImageHead
from svae.vae import FixedGamma, GaussianVAE, build_image_vae


def build_beta_vae(spec, cfg) -> GaussianVAE:
    return build_image_vae(spec, cfg, ImageHead, FixedGamma(cfg.beta_vae_gamma), cfg.beta_vae_beta)
