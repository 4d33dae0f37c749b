"""VQ-VAE (van den Oord et al. 2017): encoder -> vector quantizer -> decoder -> p(x|z_q).

The prior over codes is learned afterwards (a gated PixelCNN, :mod:`vaelab.models.pixelcnn`).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..registry import Registry
from .family import VQ
from .likelihood import Likelihood
from .quantizer import Quantized, VectorQuantizer

VQ_NETWORKS: Registry = Registry("VQ-VAE architecture")


class ResidualBlock(nn.Module):
    """x + conv1x1(relu(conv3x3(relu(x)))) (van den Oord et al. 2017, §4.1)."""

    def __init__(self, channels: int, hidden: int):
        super().__init__()
        self.net = nn.Sequential(nn.ReLU(), nn.Conv2d(channels, hidden, 3, padding=1), nn.ReLU(),
                                 nn.Conv2d(hidden, channels, 1))

    def forward(self, x):
        return x + self.net(x)


@VQ_NETWORKS.register("vq-conv")
def conv_networks(channels: int, hidden: int, dim: int, residual_hidden: int, out_channels: int | None = None
                  ) -> tuple[nn.Module, nn.Module]:
    """The seed's model: two stride-2 4x4 convolutions down (28 -> 14 -> 7), a 3x3 to D channels; mirrored up, to
    ``out_channels`` (the likelihood's parameters per pixel; default ``channels``)."""
    encoder = nn.Sequential(nn.Conv2d(channels, hidden, 4, 2, 1), nn.ReLU(), nn.Conv2d(hidden, hidden, 4, 2, 1),
                            nn.ReLU(), nn.Conv2d(hidden, dim, 3, 1, 1))
    decoder = nn.Sequential(nn.ConvTranspose2d(dim, hidden, 4, 2, 1), nn.ReLU(),
                            nn.ConvTranspose2d(hidden, hidden, 4, 2, 1), nn.ReLU(), nn.Conv2d(hidden, channels, 3, 1, 1))
    return encoder, decoder


@VQ_NETWORKS.register("vq-residual")
def residual_networks(channels: int, hidden: int, dim: int, residual_hidden: int, out_channels: int | None = None
                      ) -> tuple[nn.Module, nn.Module]:
    """§4.1: two stride-2 4x4 convolutions, two residual blocks, a 1x1 to D (32x32 -> 8x8, 64x64 -> 16x16); the
    decoder mirrors it up to ``out_channels`` (default ``channels``)."""
    encoder = nn.Sequential(nn.Conv2d(channels, hidden, 4, 2, 1), nn.ReLU(), nn.Conv2d(hidden, hidden, 4, 2, 1),
                            ResidualBlock(hidden, residual_hidden), ResidualBlock(hidden, residual_hidden), nn.ReLU(),
                            nn.Conv2d(hidden, dim, 1))
    decoder = nn.Sequential(nn.Conv2d(dim, hidden, 3, padding=1), ResidualBlock(hidden, residual_hidden),
                            ResidualBlock(hidden, residual_hidden), nn.ReLU(),
                            nn.ConvTranspose2d(hidden, hidden, 4, 2, 1), nn.ReLU(),
                            nn.ConvTranspose2d(hidden, out_channels or channels, 4, 2, 1))
    return encoder, decoder


@dataclass
class VQTerms:
    log_px_z: torch.Tensor  # [B]: log p(x|z_q), nats summed over data dims
    vq: Quantized
    out: torch.Tensor  # the decoder's output (the likelihood's parameters)


class VQVAE(nn.Module):
    family = VQ
    conditional = False
    eval_batch_size = 50  # examples per evaluation pass: its conv activations ran 1.8-2.3x slower at 1000

    def __init__(self, encoder: nn.Module, decoder: nn.Module, quantizer: VectorQuantizer, likelihood: Likelihood):
        super().__init__()
        self.encoder, self.decoder, self.quantizer, self.likelihood = encoder, decoder, quantizer, likelihood

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> VQTerms:
        vq = self.quantizer(self.encoder(x))
        out = self.decoder(vq.z_q)
        return VQTerms(self.likelihood.log_prob(x, out), vq, out)

    @torch.no_grad()
    def encode(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """Code indices [B, H', W']."""
        return self.quantizer.codes(self.encoder(x))

    @torch.no_grad()
    def decode(self, indices: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """Mean images [B, C, H, W] for code indices [B, H', W']."""
        return self.likelihood.mean(self.decoder(self.quantizer.embed(indices)))

    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        return self.decode(self.encode(x))
