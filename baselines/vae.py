"""The controlled baseline: the SVAE's backbone, loss and gamma balancing with a C-channel head."""
from svae.backbone import ImageHead
from svae.vae import BalancedGamma, GaussianVAE, build_image_vae


def build_vae(spec, cfg) -> GaussianVAE:
    return build_image_vae(spec, cfg, ImageHead, BalancedGamma(), cfg.beta)
