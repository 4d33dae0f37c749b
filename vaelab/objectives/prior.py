"""Maximum likelihood for an autoregressive prior over discrete codes."""
from __future__ import annotations

import math

import torch
from torch import nn

from ..models import CODE_PRIOR
from ..models.pixelcnn import code_nll
from .base import OBJECTIVES, Objective


@OBJECTIVES.register("prior")
class PriorObjective(Objective):
    """loss = -log p(codes) per grid (nats); ``bits_per_code`` = loss / (H W ln 2)."""

    family = CODE_PRIOR

    def forward(self, model: nn.Module, codes: torch.Tensor, y: torch.Tensor | None, step: int
                 ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        loss = code_nll(model(codes, y), codes).mean()
        return loss, {"loss": loss.detach(), "bits_per_code": loss.detach() / (codes[0].numel() * math.log(2))}
