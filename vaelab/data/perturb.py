"""Input perturbation for the background model of the likelihood ratio (Ren et al. 2019, §3.1): each pixel is
replaced, with probability ``rate``, by a value drawn uniformly from the pixel's values ([0, 1], or {0, 1} for
binary data), afresh at every training step, from the step's noise (:mod:`vaelab.noise`). A model trained on such
inputs learns the population-level background statistics and little of the semantic content."""
from __future__ import annotations

import torch

from .. import noise


def perturb(x: torch.Tensor, rate: float, binary: bool) -> torch.Tensor:
    """x [B, C, H, W] with each element replaced by a uniform draw with probability ``rate``."""
    hit = noise.rand(x.shape, device=x.device, dtype=x.dtype) < rate
    value = noise.rand(x.shape, device=x.device, dtype=x.dtype)
    return torch.where(hit, (value < 0.5).to(x.dtype) if binary else value, x)
