"""Priors p(z)."""
from __future__ import annotations

import torch
from torch import nn

from .. import noise
from .posterior import LOG_2PI, DiagonalGaussian


class StandardNormal(nn.Module):
    """p(z) = N(0, I)."""

    def __init__(self, latent_dim: int):
        super().__init__()
        self.latent_dim = latent_dim

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        """log p(z) summed over latent dimensions: [..., B]."""
        return -0.5 * (LOG_2PI + z**2).sum(-1)

    def sample(self, n: int, device=None, temperature: float = 1.0) -> torch.Tensor:
        return temperature * noise.randn((n, self.latent_dim), device=device)

    def kl(self, q: DiagonalGaussian, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """KL(q(z|x) || p(z)): ([B], per-dimension [B, D]), in closed form."""
        kl_per_dim = q.kl_standard_normal()
        return kl_per_dim.sum(-1), kl_per_dim
