"""MIWAE (Mattei & Frellsen 2019): the importance-weighted bound on incomplete data, with the likelihood over the
observed entries only.

L_K = E log (1/K) sum_k p(x_o|z_k) p(z_k) / q(z_k|x~),  z_k ~ q(z|x~)   (Mattei & Frellsen 2019, eq. 4)

where x~ is the image with its missing entries set to 0 (their zero imputation, §3), what the encoder sees.
Masks come from a missingness rate (each pixel missing completely at random, drawn afresh at every step from the
step's noise, so a resumed or DDP run draws the same ones) or from a ``.npy`` file (one mask for every image, or a
stack from which each example draws one at every step): :mod:`vaelab.data.masks`.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .. import noise
from ..config import ConfigError, RunConfig
from ..data import DataFacts
from ..data.masks import read_mask_file
from ..models import VAE_FAMILY
from ..models.build import require_density
from ..models.likelihood import LIKELIHOODS, Likelihood, observed_only, require_elements
from .base import OBJECTIVES, Objective, inner
from .iwae import iwae_bound

FILL = 0.0  # what the encoder sees at a missing entry (Mattei & Frellsen 2019, §3: zero imputation)


@dataclass
class MIWAEOptions:
    rate: float = 0.5  # objective.miwae.rate: each pixel missing with this probability (all its channels), per step
    mask: str | None = None  # objective.miwae.mask: a .npy file of 0/1 masks (1 observed), used instead of rate


@OBJECTIVES.register("miwae")
class MIWAEObjective(Objective):
    """loss = -L_K on images with missing entries (``objective.k`` samples, 1: the ELBO over observed entries).
    ``nelbo`` is the single-sample bound on log p(x_o) from the same draws."""

    family = VAE_FAMILY
    Options, options_key = MIWAEOptions, "miwae"

    @classmethod
    def check(cls, cfg: RunConfig) -> None:
        if cfg.kl.beta != 1 or cfg.kl.schedule != "constant" or cfg.kl.free_bits or cfg.kl.capacity is not None:
            raise ConfigError("the miwae objective has no KL term to weight: leave the kl section at its defaults")
        require_density(cfg.model, "MIWAE's importance weights p(x_o, z) / q(z|x~) need")
        if cfg.model.decoder != "network" or cfg.model.layers:
            raise ConfigError("MIWAE needs a decoder whose likelihood factorizes over pixels (model.decoder=network, "
                              "one latent layer)")
        require_elements(LIKELIHOODS.get(cfg.model.likelihood), "MIWAE")
        if cfg.objective.miwae.mask is None and not 0 <= cfg.objective.miwae.rate < 1:
            raise ConfigError("objective.miwae.rate must be in [0, 1)")

    def __init__(self, cfg: RunConfig, facts: DataFacts, total_steps: int):
        super().__init__(cfg, facts, total_steps)
        self.k = cfg.objective.k
        masks = None if self.options.mask is None else read_mask_file(self.options.mask, facts.shape)
        self.register_buffer("masks", masks, persistent=False)

    def observed(self, x: torch.Tensor) -> torch.Tensor:
        """This step's masks for x [B, C, H, W]: bool, True where observed."""
        if self.masks is None:
            return (noise.rand((*x.shape[:1], 1, *x.shape[2:]), device=x.device) >= self.options.rate).expand_as(x)
        pick = (noise.rand((len(x),), device=x.device) * len(self.masks)).long()  # [B]
        return self.masks[pick]

    def forward(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor | None, step: int
                ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        m = self.observed(x)
        likelihood: Likelihood = inner(model).likelihood
        with observed_only(likelihood, m):
            terms = model(torch.where(m, x, FILL), y, self.k)  # log_px_z = log p(x_o|z): [k, B]
        bound = iwae_bound(terms.log_w).mean()
        recon, kl = -terms.log_px_z.mean(), terms.kl.mean()
        logs = {"loss": -bound.detach(), "nelbo": (recon + kl).detach(), "recon": recon.detach(), "kl": kl.detach(),
                "observed": m.float().mean()}
        return -bound, logs
