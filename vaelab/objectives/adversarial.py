"""Autoencoders whose aggregate posterior q(z) is pushed to the prior by a discriminator on codes: WAE-GAN
(Tolstikhin et al. 2018, Algorithm 1) and the adversarial autoencoder (Makhzani et al. 2015).

The discriminator D (a :class:`~vaelab.objectives.Player` with its own Adam) tells draws of p(z) (class 0) from codes
(class 1); the model minimizes the reconstruction cost + lambda (-log D(z~)), D(z~) its probability that a code
came from the prior (the non-saturating generator loss of both papers). D learns from each step's codes and prior
draws at the start of the next step, one step behind the model (FactorVAE's schedule); they wait in the buffers
``pending_z`` / ``pending_p``, the global batch's, saved in checkpoints.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..config import ConfigError, RunConfig
from ..data import DataFacts
from ..models import AUTOENCODER
from .base import OBJECTIVES, Objective, Player, global_batch, inner
from .critics import Discriminator


@dataclass
class WAEGANOptions:
    """objective.wae_gan: lambda (the paper's MNIST 10, CelebA 100) and the adversary: Adam (beta1 0.5), lr 5e-4,
    4 layers of 512 units (Tolstikhin et al. 2018, MNIST)."""

    lam: float = 10.0
    disc_lr: float = 5e-4
    disc_hidden: int = 512
    disc_layers: int = 4


@dataclass
class AAEOptions:
    """objective.aae: the regularization phase's weight against reconstruction, and the discriminator: 2 layers
    of 1000 units (Makhzani et al. 2015, MNIST); Adam (beta1 0.5), lr 5e-4."""

    lam: float = 1.0
    disc_lr: float = 5e-4
    disc_hidden: int = 1000
    disc_layers: int = 2


class LatentGANObjective(Objective):
    """recon + lambda * -log D(z~): one objective module for WAE-GAN and the AAE, which differ in defaults."""

    family = AUTOENCODER
    pending_buffers = ("pending_z", "pending_p")  # the last step's codes and prior draws, global batch [B, D]

    @classmethod
    def check(cls, cfg: RunConfig) -> None:
        key = cls.options_key
        o = getattr(cfg.objective, key)
        rules = (("lam", o.lam >= 0, ">= 0"), ("disc_lr", o.disc_lr > 0, "> 0"),
                 ("disc_hidden", o.disc_hidden >= 1, ">= 1"), ("disc_layers", o.disc_layers >= 1, ">= 1"))
        for name, ok, need in rules:
            if not ok:
                raise ConfigError(f"objective.{key}.{name} must be {need}; got {getattr(o, name)!r}")

    def __init__(self, cfg: RunConfig, facts: DataFacts, total_steps: int):
        super().__init__(cfg, facts, total_steps)
        o = self.options
        self.disc = Discriminator(cfg.model.latent_dim, o.disc_hidden, o.disc_layers)
        self.disc_opt = torch.optim.Adam(self.disc.parameters(), lr=o.disc_lr, betas=(0.5, 0.999))

    def players(self) -> list[Player]:
        return [Player("disc", self.disc, self.disc_opt, self._disc_loss)]

    def _disc_loss(self, step: int) -> torch.Tensor | None:
        """Cross-entropy of telling the last step's prior draws (class 0) from its codes (class 1), over the global
        batch (every rank computes the same loss)."""
        if self.pending_z.numel() == 0:
            return None
        logits = self.disc(torch.cat([self.pending_p, self.pending_z]))  # [2B, 2]
        labels = torch.arange(2, device=logits.device).repeat_interleave(len(self.pending_z))
        return F.cross_entropy(logits, labels)

    def forward(self, model, x, y, step):
        t = model(x, y)
        p = inner(model).prior.sample(len(x), device=x.device)
        self.pending_z, self.pending_p = global_batch(t.z.detach()), global_batch(p)
        fool = -F.log_softmax(self.disc(t.z), -1)[:, 0].mean()  # -log D(z~), D = P(prior)
        recon = t.recon.mean()
        loss = recon + self.options.lam * fool
        return loss, {"loss": loss.detach(), "sse": recon.detach(), "adv": fool.detach()}


@OBJECTIVES.register("wae-gan")
class WAEGANObjective(LatentGANObjective):
    """WAE-GAN (Tolstikhin et al. 2018, Algorithm 1): ||x - G(z~)||^2 + lambda (-log D(z~)), with a latent
    discriminator as its own player."""

    Options, options_key = WAEGANOptions, "wae_gan"


@OBJECTIVES.register("aae")
class AAEObjective(LatentGANObjective):
    """Adversarial autoencoder (Makhzani et al. 2015): the reconstruction and regularization phases as one
    loss, ||x - x^||^2 + lambda (-log D(z)); conditional (the supervised AAE): the decoder sees the label."""

    Options, options_key = AAEOptions, "aae"
