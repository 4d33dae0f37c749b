"""The VAE, assembled from parts: encoder -> q(z|x) -> prior p(z) -> decoder -> p(x|z).

Kingma & Welling 2014; with ``num_classes > 0`` it is the conditional VAE of
Sohn et al. 2015, whose encoder and decoder both see a one-hot label.
"""
from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .family import VAE as VAE_FAMILY
from .likelihood import Likelihood
from .posterior import DiagonalGaussian
from .prior import Prior



def full_precision(t: torch.Tensor):
    """Autocast off on ``t``'s device: under mixed precision (``train.precision``), what runs in this block (the
    posterior's parameters, the likelihood and KL sums) runs in float32. Without autocast, no context (a training
    step would enter three for nothing)."""
    if not torch.is_autocast_enabled(t.device.type):
        return nullcontext()
    return torch.autocast(t.device.type, enabled=False)


def widened(t: torch.Tensor) -> torch.Tensor:
    """``t`` in float32 when autocast gave it a reduced precision (bf16, fp16); float32 and float64 as they are."""
    return t.float() if t.dtype in (torch.bfloat16, torch.float16) else t

@dataclass
class ELBOTerms:
    """What one pass computes; objectives turn these into a loss, loggers read them as they are."""

    log_px_z: torch.Tensor  # [B] (or [k, B]): log p(x|z), nats summed over data dims
    kl: torch.Tensor  # [B] (or [k, B]): KL(q(z|x) || p(z)), closed form or single-sample estimate
    kl_per_dim: torch.Tensor | None  # [B, D]: closed-form KL per latent dimension, when available
    log_pz: torch.Tensor  # [B] (or [k, B]): log p(z)
    log_qz: torch.Tensor  # [B] (or [k, B]): log q(z|x)
    q: DiagonalGaussian  # or a FlowGaussian
    z: torch.Tensor  # [B, D] (or [k, B, D])
    kl_layers: list[torch.Tensor] | None = None  # the KL of each stochastic layer, bottom first
    layer_dims: list[int] | None = None  # the latent size of each layer (free bits are lambda per dimension)

    @property
    def log_w(self) -> torch.Tensor:
        """Log importance weights log p(x, z) - log q(z|x): [B] (or [k, B])."""
        return self.log_px_z + self.log_pz - self.log_qz


class LatentModel(nn.Module):
    """What every model with a continuous latent space offers callers: a (conditional) decoder, ``encode``,
    ``decode``, ``sample`` and ``reconstruct``. Subclasses set ``encoder``, ``q``, ``prior``, ``decoder``,
    ``likelihood`` (its ``mean`` maps decoder outputs to images), ``latent_dim``, ``num_classes`` and
    :meth:`posterior`."""

    latent_dim: int
    num_classes: int

    @property
    def conditional(self) -> bool:
        return self.num_classes > 0

    def _label(self, y: torch.Tensor | None, like: torch.Tensor) -> torch.Tensor | None:
        if not self.conditional:
            return None
        if y is None:
            raise ValueError(f"this is a conditional {type(self).__name__}: pass the class labels y")
        onehot = F.one_hot(y, self.num_classes).to(like.dtype)  # [B, n_classes]
        return onehot.expand(*like.shape[:-1], self.num_classes)

    def posterior(self, x: torch.Tensor, y: torch.Tensor | None = None):
        raise NotImplementedError

    def decoder_out(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """The likelihood's parameters for z [..., B, D]: [..., B, C, H, W]."""
        c = self._label(y, z)
        return self.decoder(z if c is None else torch.cat([z, c], -1))

    # Tensor-in, tensor-out use -------------------------------------------------------------
    @torch.no_grad()
    def encode(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """The posterior mean E_q[z|x]: [B, D]."""
        return self.posterior(x, y).mean

    @torch.no_grad()
    def decode(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """The decoder's mean image E[x|z]: [B, C, H, W]."""
        return self.likelihood.mean(self.decoder_out(z, y))

    @torch.no_grad()
    def sample(self, n: int, y: torch.Tensor | None = None, temperature: float = 1.0) -> torch.Tensor:
        """n images from z ~ p(z) (scaled by ``temperature``); a conditional model needs ``y`` [n]."""
        device = next(self.parameters()).device
        return self.decode(self.prior.sample(n, device=device, temperature=temperature), y)

    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        return self.decode(self.encode(x, y), y)


class VAE(LatentModel):
    family = VAE_FAMILY

    def __init__(self, encoder: nn.Module, q: nn.Module, prior: Prior, decoder: nn.Module, likelihood: Likelihood,
                 latent_dim: int, num_classes: int = 0):
        """``q`` maps encoder features (and label) to the posterior: a Gaussian, or one with a flow."""
        super().__init__()
        self.encoder, self.q, self.prior, self.decoder, self.likelihood = encoder, q, prior, decoder, likelihood
        self.latent_dim, self.num_classes = latent_dim, num_classes
        if hasattr(prior, "attach"):  # the VampPrior mixes this model's own posterior
            prior.attach(self.posterior)

    def posterior(self, x: torch.Tensor, y: torch.Tensor | None = None) -> DiagonalGaussian:
        """q(z|x) (or q(z|x, y))."""
        h = widened(self.encoder(x))  # [B, F]
        c = self._label(y, h)
        with full_precision(h):
            return self.q(h if c is None else torch.cat([h, c], -1))

    def log_joint(self, x: torch.Tensor, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """log p(x|z) + log p(z) for z [..., B, D]: [..., B]."""
        return self.likelihood.log_prob(x, self.decoder_out(z, y)) + self.prior.log_prob(z)

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None, k: int | None = None) -> ELBOTerms:
        """One reparameterized pass: the terms of the ELBO (Kingma & Welling 2014, eq. 10). Its one stochastic
        layer is ``kl_layers``, so free bits apply to the whole KL when there is no per-dimension split."""
        q = self.posterior(x, y)
        with full_precision(x):
            z, log_qz = q.rsample_and_log_prob(k)
        out = widened(self.decoder_out(z, y))  # the decoder under autocast (train.precision), its output in float32
        with full_precision(x):  # the likelihood and KL sums in float32 whatever the networks' precision
            log_px_z = self.likelihood.log_prob(x, out)
            log_pz = self.prior.log_prob(z)
            kl, kl_per_dim = self.prior.kl(q, log_qz, log_pz)
        return ELBOTerms(log_px_z, kl, kl_per_dim, log_pz, log_qz, q, z, [kl], [self.latent_dim])
