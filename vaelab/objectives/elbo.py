"""The (beta-weighted) negative ELBO as a training loss, with every term returned for logging."""
from __future__ import annotations

import torch
from torch import nn

from ..config import RunConfig
from ..data import DataFacts
from ..models import VAE_FAMILY
from .base import OBJECTIVES, Objective
from .schedules import kl_penalty


@OBJECTIVES.register("elbo")
class ELBOObjective(Objective):
    """loss = E_q[-log p(x|z)] + KL penalty (see :func:`kl_penalty`), averaged over the batch and over
    ``k`` samples of z per example (the "VAE, k samples" rows of Burda et al. 2016, table 1).

    ``nelbo`` = recon + KL is the true negative ELBO (beta = 1), in nats per example,
    whatever schedule shapes the loss.
    """

    family = VAE_FAMILY

    def __init__(self, cfg: RunConfig, facts: DataFacts, total_steps: int):
        super().__init__(cfg, facts, total_steps)
        self.kl_cfg, self.k, self.total_steps = cfg.kl, cfg.objective.k, total_steps

    def forward(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor | None, step: int
                 ) -> tuple[torch.Tensor, dict[str, torch.Tensor | float]]:
        terms = model(x, y, None if self.k == 1 else self.k)
        recon = -terms.log_px_z.mean()
        kl = terms.kl.mean()
        penalty, schedule = kl_penalty(self.kl_cfg, terms, step, self.total_steps)
        loss = recon + penalty
        logs = {"loss": loss.detach(), "nelbo": (recon + kl).detach(), "recon": recon.detach(), "kl": kl.detach()}
        return loss, {**logs, **layer_logs(terms), **schedule}


def layer_logs(terms) -> dict[str, torch.Tensor]:
    """Each stochastic layer's batch-mean KL, ``kl_1`` (bottom) .. ``kl_L``, for hierarchical models (one layer's
    is ``kl`` itself)."""
    layers = terms.kl_layers or []
    return {f"kl_{l + 1}": k.detach().mean() for l, k in enumerate(layers)} if len(layers) > 1 else {}
