"""The ResNet encoder and decoder of the authors' code (after Dai & Wipf's first stage).

Widths follow the reference: the encoder doubles from `base_width` at every scale; the decoder
starts from a 4x4 map and halves its width at every upsampling, ending at `base_width`
(32x32: 512, 256, 128, 64; 64x64: 1024, 512, 256, 128, 64 with the paper's base width of 64).
"""
from dataclasses import dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class BackboneConfig:
    base_width: int = 64
    num_scales: int = 4
    embedding_dim: int = 512
    max_width: int = 1024
    # Keras momentum .999 is PyTorch momentum 0.001: the running statistics move slowly, which
    # only suits long runs; short runs (the smoke preset) need a faster one.
    bn_momentum: float = 0.001


class ResBlock(nn.Module):
    """Two [BatchNorm -> SiLU -> 3x3 conv] with a 3x3 conv on the skip path."""

    def __init__(self, in_ch: int, out_ch: int, bn_momentum: float):
        super().__init__()
        self.body = nn.Sequential(
            nn.BatchNorm2d(in_ch, eps=1e-5, momentum=bn_momentum), nn.SiLU(),
            nn.Conv2d(in_ch, out_ch, 3, padding=1),
            nn.BatchNorm2d(out_ch, eps=1e-5, momentum=bn_momentum), nn.SiLU(),
            nn.Conv2d(out_ch, out_ch, 3, padding=1),
        )
        self.skip = nn.Conv2d(in_ch, out_ch, 3, padding=1)

    def forward(self, x):
        return self.body(x) + self.skip(x)


class ResFcBlock(nn.Module):
    """The fully-connected counterpart of ResBlock."""

    def __init__(self, in_dim: int, out_dim: int, bn_momentum: float):
        super().__init__()
        self.body = nn.Sequential(
            nn.BatchNorm1d(in_dim, eps=1e-5, momentum=bn_momentum), nn.SiLU(), nn.Linear(in_dim, out_dim),
            nn.BatchNorm1d(out_dim, eps=1e-5, momentum=bn_momentum), nn.SiLU(), nn.Linear(out_dim, out_dim),
        )
        self.skip = nn.Linear(in_dim, out_dim)

    def forward(self, x):
        return self.body(x) + self.skip(x)


class Encoder(nn.Module):
    """Image -> (mu, logvar) of the latent Gaussian."""

    def __init__(self, channels: int, latent_dim: int, cfg: BackboneConfig):
        super().__init__()
        width = cfg.base_width
        layers = [nn.Conv2d(channels, width, 3, stride=2, padding=1)]
        for _ in range(cfg.num_scales - 1):
            layers += [ResBlock(width, width, cfg.bn_momentum),
                       nn.Conv2d(width, width * 2, 3, stride=2, padding=1)]
            width *= 2
        self.features = nn.Sequential(*layers)
        self.embed = ResFcBlock(width, cfg.embedding_dim, cfg.bn_momentum)
        self.mu = nn.Linear(cfg.embedding_dim, latent_dim)
        self.logvar = nn.Linear(cfg.embedding_dim, latent_dim)

    def forward(self, x):
        embedding = self.embed(self.features(x).mean(dim=(2, 3)))  # global average pooling
        return self.mu(embedding), self.logvar(embedding)


def decoder_widths(size: int, cfg: BackboneConfig) -> list:
    """Widths from the 4x4 map up to `size`: base_width doubled per scale, capped, reversed."""
    widths, scale, width = [], 4, cfg.base_width
    while scale <= size:
        widths.append(width)
        scale, width = scale * 2, min(width * 2, cfg.max_width)
    if scale // 2 != size:
        raise ValueError(f"image size {size} is not 4 times a power of two")
    return widths[::-1]


class Decoder(nn.Module):
    """Latent -> feature map at full resolution; a head turns it into named outputs."""

    def __init__(self, latent_dim: int, size: int, cfg: BackboneConfig, head: nn.Module):
        super().__init__()
        widths = decoder_widths(size, cfg)
        # One linear map from latent to embedding, shared by sampling and reconstruction.
        self.from_latent = nn.Linear(latent_dim, cfg.embedding_dim)
        self.to_map = nn.Linear(cfg.embedding_dim, 4 * 4 * widths[0])
        self.first_width = widths[0]
        layers = []
        for w_in, w_out in zip(widths, widths[1:]):
            layers += [nn.ConvTranspose2d(w_in, w_out, 3, stride=2, padding=1, output_padding=1),
                       ResBlock(w_out, w_out, cfg.bn_momentum)]
        self.upsample = nn.Sequential(*layers)
        self.head = head(widths[-1])

    def forward(self, z) -> dict:
        y = self.to_map(self.from_latent(z)).view(len(z), self.first_width, 4, 4)
        return self.head(self.upsample(y))


class ImageHead(nn.Module):
    """A 3x3 conv to C sigmoid channels: the plain VAE's output."""

    def __init__(self, in_ch: int, channels: int):
        super().__init__()
        self.conv = nn.Conv2d(in_ch, channels, 3, padding=1)

    def forward(self, y) -> dict:
        return {"x_hat": torch.sigmoid(self.conv(y))}
