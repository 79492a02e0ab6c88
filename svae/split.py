"""The Split VAE: the decoder emits x1, x2 and a map sigma; the output is their sigma-blend.

Trained exactly like a VAE: the loss sees x_hat only, never x1, x2 or sigma.
"""
import torch
from torch import nn

from svae.vae import BalancedGamma, GaussianVAE, build_image_vae


class SplitHead(nn.Module):
    """One 3x3 conv to 2C+1 sigmoid channels: sigma (channel 0, shared by all colours), x1, x2."""

    def __init__(self, in_ch: int, channels: int):
        super().__init__()
        self.channels = channels
        self.conv = nn.Conv2d(in_ch, 2 * channels + 1, 3, padding=1)

    def forward(self, y) -> dict:
        maps = torch.sigmoid(self.conv(y))
        c = self.channels
        sigma, x1, x2 = maps[:, :1], maps[:, 1:1 + c], maps[:, 1 + c:]
        return {"x_hat": sigma * x1 + (1 - sigma) * x2, "x1": x1, "x2": x2, "sigma": sigma}


def build_svae(spec, cfg) -> GaussianVAE:
    return build_image_vae(spec, cfg, SplitHead, BalancedGamma(), cfg.beta)
