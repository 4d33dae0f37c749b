"""Semi-supervised training of M2 (Kingma et al. 2014, §3.1.2): labelled examples by the CVAE's bound, unlabelled
ones with their label marginalized under q(y|x), and the classifier trained on the labels with weight alpha."""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..config import ConfigError, RunConfig
from ..models import VAE_FAMILY
from .base import OBJECTIVES, Objective


@dataclass
class M2Options:
    # objective.m2.alpha: the weight of each labelled example's -log q(y|x) beside its bound, in nats per example.
    # Kingma et al. 2014 set alpha = 0.1 N for sums over the data; 50 is vaelab's choice for 28x28 images (a bound
    # of about 100 nats per example), not tuned against the paper
    alpha: float = 50.0


def m2_terms(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> dict[str, torch.Tensor]:
    """The per-example terms of M2's bound for a batch x [B, ...] with labels y [B] (-1: unlabelled), from one pass of
    the model under every class (terms [K, B]):

    - ``labelled`` [L]: -L(x, y) = -log p(x|y, z) + KL(q(z|x, y) || p(z)) - log p(y), p(y) uniform (eq. 6);
    - ``unlabelled`` [U]: -U(x) = sum_y q(y|x) (-L(x, y)) - H(q(y|x)) (eq. 7);
    - ``ce`` [L]: -log q(y|x) of the labelled rows; ``logits`` [B, K] of q(y|x)."""
    t = model(x)  # y = None: every class
    has = y >= 0
    bound = (-t.log_px_z + t.kl + math.log(t.logits.shape[-1])).T  # [B, K]: -L(x, y) for each y
    log_q = F.log_softmax(t.logits, -1)  # [B, K]
    labelled = bound[has].gather(1, y[has, None]).squeeze(1)  # [L]
    unlabelled = (log_q.exp() * (bound + log_q)).sum(-1)[~has]  # sum_y q (-L + log q) = E_q[-L] - H(q)
    ce = F.cross_entropy(t.logits[has], y[has], reduction="none")
    return {"labelled": labelled, "unlabelled": unlabelled, "ce": ce, "logits": t.logits}


@OBJECTIVES.register("m2")
class M2Objective(Objective):
    """M2's semi-supervised loss, Kingma et al. 2014's J^alpha (eq. 9), per example of the batch.

    The sum over labelled examples of -L(x, y) + alpha (-log q(y|x)), plus the sum over unlabelled ones of -U(x).
    ``nelbo`` is the bound's part (-log p(x, y) or -log p(x) bounded) per example; ``ce`` and ``class_error`` the
    classifier's on the labelled rows of the batch."""

    family = VAE_FAMILY
    Options, options_key = M2Options, "m2"
    semi_supervised = True

    @classmethod
    def check(cls, cfg: RunConfig) -> None:
        if not (cfg.model.conditional and cfg.model.classifier):
            raise ConfigError("objective m2 trains M2, a conditional VAE with a classifier: use --model m2 (or "
                              "model.conditional=true, model.classifier=true)")
        if not (math.isfinite(cfg.objective.m2.alpha) and cfg.objective.m2.alpha >= 0):
            raise ConfigError(f"objective.m2.alpha={cfg.objective.m2.alpha}: expected a finite number >= 0")

    def forward(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor | None, step: int
                ) -> tuple[torch.Tensor, dict[str, torch.Tensor | float]]:
        t = m2_terms(model, x, y)
        n, labelled = len(x), max(len(t["ce"]), 1)
        nelbo = (t["labelled"].sum() + t["unlabelled"].sum()) / n
        loss = nelbo + self.options.alpha * t["ce"].sum() / n
        has = y >= 0
        wrong = (t["logits"][has].argmax(-1) != y[has]).sum()
        return loss, {"loss": loss.detach(), "nelbo": nelbo.detach(), "ce": t["ce"].detach().sum() / labelled,
                      "class_error": wrong.float() / labelled}
