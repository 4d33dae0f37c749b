"""Approximate posteriors q(z|x)."""
from __future__ import annotations

import math

import torch
from torch import nn

from .. import noise

LOG_2PI = math.log(2 * math.pi)


class DiagonalGaussian:
    """q(z|x) = N(z; mu, diag(exp(logvar))), sampled by reparameterization (Kingma & Welling 2014, eq. 10)."""

    def __init__(self, mu: torch.Tensor, logvar: torch.Tensor):
        self.mu, self.logvar = mu, logvar  # [B, D]

    @property
    def mean(self) -> torch.Tensor:
        return self.mu

    @property
    def std(self) -> torch.Tensor:
        return torch.exp(0.5 * self.logvar)

    def _eps(self, k: int | None) -> torch.Tensor:
        """Standard normal noise: [B, D], or [k, B, D] for k samples per example."""
        shape = self.mu.shape if k is None else (k, *self.mu.shape)
        batch_dim = len(shape) - 2  # the examples' dimension, before the latent one
        return noise.randn(shape, batch_dim=batch_dim, device=self.mu.device, dtype=self.mu.dtype)

    def rsample(self, k: int | None = None) -> torch.Tensor:
        """z = mu + sigma * eps: [B, D], or [k, B, D] for k samples per example."""
        return self.mu + self.std * self._eps(k)

    def rsample_and_log_prob(self, k: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """z as :meth:`rsample`, and log q(z|x) from its noise: (z - mu)^2 / sigma^2 = eps^2."""
        eps = self._eps(k)
        return self.mu + self.std * eps, -0.5 * (LOG_2PI + self.logvar + eps**2).sum(-1)

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        """log q(z|x) summed over latent dimensions: [..., B]."""
        return -0.5 * (LOG_2PI + self.logvar + (z - self.mu) ** 2 * torch.exp(-self.logvar)).sum(-1)

    def kl_standard_normal(self) -> torch.Tensor:
        """KL(q || N(0, I)) per dimension, closed form: -1/2 (1 + log s^2 - mu^2 - s^2). [B, D]"""
        return -0.5 * (1 + self.logvar - self.mu**2 - torch.exp(self.logvar))


def gaussian_kl(q: DiagonalGaussian, p: DiagonalGaussian) -> torch.Tensor:
    """KL(q || p) between diagonal Gaussians, per dimension: 1/2 (log s_p^2/s_q^2 + (s_q^2 + (m_q - m_p)^2)/s_p^2 - 1)."""
    return 0.5 * (p.logvar - q.logvar + (torch.exp(q.logvar) + (q.mu - p.mu) ** 2) * torch.exp(-p.logvar) - 1)


class GaussianPosterior(nn.Module):
    """Encoder features h -> q(z|x) = N(mu(h), diag(exp(logvar(h))))."""

    def __init__(self, in_features: int, latent_dim: int, **_):
        super().__init__()
        self.head = nn.Linear(in_features, 2 * latent_dim)

    def forward(self, h: torch.Tensor) -> DiagonalGaussian:
        mu, logvar = self.head(h).chunk(2, dim=-1)
        return DiagonalGaussian(mu, logvar)


class PointMass:
    """A deterministic encoder's q(z|x) = delta(z - mu(x)): z is the code itself, and there is no density (the WAE's
    and the adversarial autoencoder's deterministic encoders: Tolstikhin et al. 2018; Makhzani et al. 2015)."""

    def __init__(self, mu: torch.Tensor):
        self.mu = mu  # [B, D]

    @property
    def mean(self) -> torch.Tensor:
        return self.mu

    def rsample(self, k: int | None = None) -> torch.Tensor:
        """The code: [B, D], or [k, B, D] repeated."""
        return self.mu if k is None else self.mu.expand(k, *self.mu.shape)


class DeterministicPosterior(nn.Module):
    """Encoder features h -> the code mu(h), a :class:`PointMass`. ``density = False``: models that need log q(z|x)
    (a VAE's ELBO, IWAE) refuse it."""

    density = False

    def __init__(self, in_features: int, latent_dim: int, **_):
        super().__init__()
        self.head = nn.Linear(in_features, latent_dim)

    def forward(self, h: torch.Tensor) -> PointMass:
        return PointMass(self.head(h))
