"""VAE-GAN (Larsen et al. 2016): a VAE whose reconstruction error is measured in the features of a GAN's
discriminator, and whose decoder is also the GAN's generator.

Three parameter groups, each moved by its own loss (Algorithm 1):
  encoder        L_prior + L_llike
  decoder        gamma L_llike - L_GAN  (here the non-saturating -log Dis(x~) - log Dis(x_p))
  discriminator  L_GAN = log Dis(x) + log(1 - Dis(x~)) + log(1 - Dis(x_p)), maximized
with L_prior = KL(q(z|x) || N(0, I)), L_llike = 1/2 ||Dis_l(x) - Dis_l(x~)||^2 (a Gaussian in feature space), x~ the
reconstruction and x_p = Dec(z_p), z_p ~ p(z): samples and reconstructions both shown to the discriminator.

The encoder and decoder are the model, stepped by the trainer's optimizer on one loss whose gradient is, for each
group, exactly its own: L_prior + L_llike(Dec(z)) + (gamma - 1) L_llike(Dec(sg z)) + GAN(Dec(sg z), Dec(z_p)). The
second decoding of the codes, with the encoder cut off (sg: stop-gradient), gives the decoder its extra gamma - 1
of L_llike and the GAN loss without reaching the encoder (the paper does not propagate L_GAN into the encoder).
The discriminator is a player with its own RMSProp (lr 3e-4, the paper's), updated at the start of each step from
the last step's real, reconstructed and sampled images (global batch, in checkpointed buffers).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..config import ConfigError, RunConfig
from ..data import DataFacts
from ..models import AUTOENCODER
from ..models.networks import ENCODERS
from .base import OBJECTIVES, Objective, Player, global_batch, inner
from .critics import ImageDiscriminator


@dataclass
class VAEGANOptions:
    """objective.vaegan: gamma, the decoder's weight of L_llike against L_GAN (the paper gives no single value; 1
    here), and the discriminator's RMSProp learning rate (the paper's 3e-4)."""

    gamma: float = 1.0
    disc_lr: float = 3e-4


def feature_distance(f: torch.Tensor, f_real: torch.Tensor) -> torch.Tensor:
    """L_llike = 1/2 ||Dis_l(x) - Dis_l(x~)||^2 per example, averaged: the Gaussian p(Dis_l(x) | z) of Larsen et
    al. 2016, up to its constant."""
    return 0.5 * ((f - f_real) ** 2).sum(-1).mean()


@OBJECTIVES.register("vae-gan")
class VAEGANObjective(Objective):
    """VAE-GAN (Larsen et al. 2016): KL + reconstruction in an image discriminator's features + GAN, each parameter
    group moved by its own loss (see the module)."""

    family = AUTOENCODER
    Options, options_key = VAEGANOptions, "vaegan"
    pending_buffers = ("pending_x", "pending_rec", "pending_gen")  # the last step's images, global batch

    @classmethod
    def check(cls, cfg: RunConfig) -> None:
        if cfg.model.posterior != "gaussian":
            raise ConfigError(f"objective 'vae-gan' is a VAE: its L_prior is the KL of a Gaussian encoder; set "
                              f"model.posterior gaussian (got {cfg.model.posterior!r})")
        if cfg.objective.vaegan.gamma < 0:
            raise ConfigError(f"objective.vaegan.gamma must be >= 0; got {cfg.objective.vaegan.gamma}")

    def __init__(self, cfg: RunConfig, facts: DataFacts, total_steps: int):
        super().__init__(cfg, facts, total_steps)
        m = cfg.model
        features = ENCODERS.get(m.arch)(tuple(facts.shape), hidden=m.hidden, channels=m.channels, act=m.activation)
        self.disc = ImageDiscriminator(features)
        self.disc_opt = torch.optim.RMSprop(self.disc.parameters(), lr=self.options.disc_lr)

    def players(self) -> list[Player]:
        return [Player("disc", self.disc, self.disc_opt, self._disc_loss)]

    def _disc_loss(self, step: int) -> torch.Tensor | None:
        """-L_GAN: real images are class 1, reconstructions and samples class 0."""
        if self.pending_x.numel() == 0:
            return None
        logits, _ = self.disc(torch.cat([self.pending_x, self.pending_rec, self.pending_gen]))  # [3B]
        labels = torch.zeros_like(logits)
        labels[:len(self.pending_x)] = 1
        return 3 * F.binary_cross_entropy_with_logits(logits, labels)  # the sum of the three batch means

    def forward(self, model, x, y, step):
        t = model(x, y)
        m = inner(model)
        z_p = m.prior.sample(len(x), device=x.device)
        y2 = None if y is None else torch.cat([y, y])
        x_cut, x_gen = m.decoder_mean(torch.cat([t.z.detach(), z_p]), y2).chunk(2)  # Dec(sg z), Dec(z_p)
        logits, f = self.disc(torch.cat([x, t.x_hat, x_cut, x_gen]))
        _, l_cut, l_gen = logits[len(x):].chunk(3)
        f_real, f_rec, f_cut, _ = f.chunk(4)
        f_real = f_real.detach()
        llike, llike_cut = feature_distance(f_rec, f_real), feature_distance(f_cut, f_real)
        ones = torch.ones_like(l_cut)
        gan = (F.binary_cross_entropy_with_logits(l_cut, ones) + F.binary_cross_entropy_with_logits(l_gen, ones))
        kl = t.kl.mean()
        loss = kl + llike + (self.options.gamma - 1) * llike_cut + gan
        self.pending_x, self.pending_rec = global_batch(x), global_batch(t.x_hat.detach())
        self.pending_gen = global_batch(x_gen.detach())
        return loss, {"loss": loss.detach(), "sse": t.recon.mean().detach(), "kl": kl.detach(),
                      "llike": llike.detach(), "gan": gan.detach()}
