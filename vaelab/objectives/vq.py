"""The VQ-VAE loss (van den Oord et al. 2017, eq. 3), every term per example and returned for logging, with the
codebook's usage: perplexity, fraction of codes used, and dead codes (unused for the quantizer's ``dead_window``
steps: with ``vq.dead_after``, the codes restarted at this step)."""
from __future__ import annotations

import torch
from torch import nn

from ..config import RunConfig
from ..data import DataFacts
from ..models import VQ_FAMILY
from .base import OBJECTIVES, Objective


@OBJECTIVES.register("vq")
class VQObjective(Objective):
    """loss = -log p(x|z_q) + ||sg[z_e] - e||^2 + beta ||z_e - sg[e]||^2, the two codebook terms summed over
    each example's latent grid like the reconstruction is over its pixels, with z_e and e in the space where
    codes are looked up (``vq.lookup_dim``, else the code dimension D). With an EMA codebook the middle term is
    zero: the codes move by moving averages instead."""

    family = VQ_FAMILY

    def __init__(self, cfg: RunConfig, facts: DataFacts, total_steps: int):
        super().__init__(cfg, facts, total_steps)
        self.beta = cfg.vq.beta
        self.lookup_dim = cfg.vq.lookup_dim or cfg.vq.dim  # the quantizer's losses are means over this space

    def forward(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor | None, step: int
                 ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        t = model(x, y)
        n = t.vq.indices[0].numel() * self.lookup_dim  # elements per example in the lookup space: positions x d
        recon = -t.log_px_z.mean()
        codebook, commitment = t.vq.codebook_loss * n, t.vq.commitment_loss * n
        loss = recon + codebook + self.beta * commitment
        return loss, {"loss": loss.detach(), "recon": recon.detach(), "codebook": codebook.detach(),
                      "commitment": commitment.detach(), "perplexity": t.vq.perplexity, "codes_used": t.vq.codes_used,
                      "dead_codes": t.vq.dead_codes}
