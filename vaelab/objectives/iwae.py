"""The importance-weighted bound (IWAE, Burda et al. 2016) as a training loss."""
from __future__ import annotations

import math

import torch
from torch import nn

from ..config import ConfigError, RunConfig
from ..data import DataFacts
from ..models import VAE_FAMILY
from ..models.build import require_density
from .base import OBJECTIVES, Objective
from .elbo import layer_logs


def iwae_bound(log_w: torch.Tensor) -> torch.Tensor:
    """L_k = log (1/k) sum_i w_i for log weights [k, B] (Burda et al. 2016, eq. 8): [B]."""
    return torch.logsumexp(log_w, 0) - math.log(log_w.shape[0])


@OBJECTIVES.register("iwae")
class IWAEObjective(Objective):
    """loss = -L_k averaged over the batch. Its gradient weights each sample's gradient by its
    normalized importance weight (eq. 14). ``nelbo`` is the single-sample bound from the same draws."""

    family = VAE_FAMILY

    @classmethod
    def check(cls, cfg: RunConfig) -> None:
        if cfg.kl.beta != 1 or cfg.kl.schedule != "constant" or cfg.kl.free_bits or cfg.kl.capacity is not None:
            raise ConfigError("the iwae objective has no KL term to weight: leave the kl section at its defaults")
        require_density(cfg.model, "IWAE's importance weights p(x, z) / q(z|x) need")

    def __init__(self, cfg: RunConfig, facts: DataFacts, total_steps: int):
        super().__init__(cfg, facts, total_steps)
        self.k = cfg.objective.k

    def forward(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor | None, step: int
                 ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        terms = model(x, y, self.k)
        bound = iwae_bound(terms.log_w).mean()
        recon, kl = -terms.log_px_z.mean(), terms.kl.mean()
        logs = {"loss": -bound.detach(), "nelbo": (recon + kl).detach(), "recon": recon.detach(), "kl": kl.detach()}
        return -bound, logs | layer_logs(terms)
