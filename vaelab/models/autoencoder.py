"""The autoencoder without a likelihood: encoder -> code z (deterministic, or a Gaussian q(z|x)) -> decoder -> image,
trained by a reconstruction cost and a penalty that pulls the aggregate posterior q(z) = E_x q(z|x) to the prior
p(z) = N(0, I): the Wasserstein autoencoders (Tolstikhin et al. 2018), the adversarial autoencoder (Makhzani et al.
2015) and VAE-GAN (Larsen et al. 2016). Its decoder is a map, not a density: it has no ELBO and no log p(x).

A conditional one gives the label to the decoder only (Makhzani et al. 2015, the supervised adversarial
autoencoder), so the code is left to carry the style and the label the class.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .family import AUTOENCODER
from .likelihood import DATA_DIMS, Likelihood
from .posterior import DiagonalGaussian, PointMass
from .prior import StandardNormal
from .vae import LatentModel


@dataclass
class AETerms:
    """What one pass computes."""

    z: torch.Tensor  # [B, D]: the code (a draw of a Gaussian q(z|x), or a deterministic encoder's output)
    q: PointMass | DiagonalGaussian
    x_hat: torch.Tensor  # [B, C, H, W]: the decoded image at z
    recon: torch.Tensor  # [B]: c(x, x_hat) = ||x - x_hat||^2 summed over pixels (Tolstikhin et al. 2018)

    @property
    def kl(self) -> torch.Tensor | None:
        """[B]: KL(q(z|x) || N(0, I)) in closed form for a Gaussian encoder; None for a deterministic one."""
        return self.q.kl_standard_normal().sum(-1) if isinstance(self.q, DiagonalGaussian) else None


class Autoencoder(LatentModel):
    """``likelihood`` only maps the decoder's output to the image (Bernoulli: a sigmoid, Gaussian: as it is)."""

    family = AUTOENCODER

    def __init__(self, encoder: nn.Module, q: nn.Module, prior: StandardNormal, decoder: nn.Module,
                 likelihood: Likelihood, latent_dim: int, num_classes: int = 0):
        super().__init__()
        self.encoder, self.q, self.prior, self.decoder, self.likelihood = encoder, q, prior, decoder, likelihood
        self.latent_dim, self.num_classes = latent_dim, num_classes

    def posterior(self, x: torch.Tensor, y: torch.Tensor | None = None) -> PointMass | DiagonalGaussian:
        """q(z|x): the encoder never sees the label."""
        return self.q(self.encoder(x))

    def decoder_mean(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """The decoded image at z [B, D], differentiable: [B, C, H, W]."""
        return self.likelihood.mean(self.decoder_out(z, y))

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> AETerms:
        q = self.posterior(x, y)
        z = q.rsample()
        x_hat = self.decoder_mean(z, y)
        return AETerms(z, q, x_hat, ((x - x_hat) ** 2).sum(DATA_DIMS))
