"""Maximum likelihood for an autoregressive prior over discrete codes."""
from __future__ import annotations

import math

import torch
from torch import nn

from ..config import RunConfig
from ..models.pixelcnn import code_nll


class PriorObjective:
    """loss = -log p(codes) per grid (nats); ``bits_per_code`` = loss / (H W ln 2)."""

    family = "prior"

    def __init__(self, cfg: RunConfig, total_steps: int):
        pass

    def __call__(self, model: nn.Module, codes: torch.Tensor, y: torch.Tensor | None, step: int
                 ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        loss = code_nll(model(codes, y), codes).mean()
        return loss, {"loss": loss.detach(), "bits_per_code": loss.detach() / (codes[0].numel() * math.log(2))}
