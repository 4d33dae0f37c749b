"""Discriminators that objectives train as players: an MLP on codes (FactorVAE, WAE-GAN, the adversarial
autoencoder) and one on images whose last hidden layer gives VAE-GAN its learned similarity."""
from __future__ import annotations

import torch
from torch import nn


class Discriminator(nn.Module):
    """An MLP on codes z [B, D] -> 2 logits (class 0 / class 1): ``layers`` hidden layers of ``hidden`` units with
    leaky ReLUs. FactorVAE's: 6 x 1000 (Kim & Mnih 2018); the WAE-GAN's on MNIST: 4 x 512 (Tolstikhin et al.
    2018)."""

    def __init__(self, latent_dim: int, hidden: int = 1000, layers: int = 6):
        super().__init__()
        sizes = [latent_dim] + [hidden] * layers
        mods: list[nn.Module] = []
        for a, b in zip(sizes[:-1], sizes[1:]):
            mods += [nn.Linear(a, b), nn.LeakyReLU(0.2)]
        self.net = nn.Sequential(*mods, nn.Linear(sizes[-1], 2))

    def forward(self, z):
        return self.net(z)


class ImageDiscriminator(nn.Module):
    """Images [B, C, H, W] -> (one logit per image [B], features Dis_l(x) [B, F]): ``features`` is an encoder
    network (the model's architecture), whose output is the layer l of Larsen et al. 2016 (§2.2), then a linear
    map to the logit."""

    def __init__(self, features: nn.Module):
        super().__init__()
        self.features = features
        self.head = nn.Linear(features.out_features, 1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        f = self.features(x)
        return self.head(f).squeeze(-1), f
