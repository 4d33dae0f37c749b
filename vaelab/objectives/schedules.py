"""KL weight schedules, indexed by training step (never by epoch)."""
from __future__ import annotations

import math

import torch

from ..config import KLConfig
from ..registry import Registry

BETA_SCHEDULES: Registry = Registry("KL schedule")


@BETA_SCHEDULES.register("constant")
def constant(cfg: KLConfig, step: int, total_steps: int) -> float:
    return cfg.beta


@BETA_SCHEDULES.register("linear")
def linear_warmup(cfg: KLConfig, step: int, total_steps: int) -> float:
    """beta rises linearly from 0 to ``cfg.beta`` over ``warmup_steps`` (Bowman et al. 2016; Sønderby et al. 2016)."""
    return cfg.beta * min(1.0, step / max(1, cfg.warmup_steps))


@BETA_SCHEDULES.register("cyclical")
def cyclical(cfg: KLConfig, step: int, total_steps: int) -> float:
    """Fu et al. 2019, eq. 6: ``cycles`` periods over the run; in each, beta rises over the first ``ratio``, then holds.

    The period is rounded up, so that no extra short cycle starts near the end of the run."""
    period = max(1, math.ceil(total_steps / cfg.cycles))
    tau = (step % period) / period
    return cfg.beta * min(1.0, tau / cfg.ratio)


def beta_at(cfg: KLConfig, step: int, total_steps: int) -> float:
    return BETA_SCHEDULES.get(cfg.schedule)(cfg, step, total_steps)


def capacity_at(cfg: KLConfig, step: int) -> float:
    """C(step) of Burgess et al. 2018: linear from 0 to ``capacity`` nats over ``capacity_steps``."""
    assert cfg.capacity is not None
    return cfg.capacity * min(1.0, step / max(1, cfg.capacity_steps))


def kl_penalty(cfg: KLConfig, terms, step: int, total_steps: int) -> tuple[torch.Tensor, dict[str, float]]:
    """The KL part of the loss for a batch of :class:`~vaelab.models.ELBOTerms`, and the schedule values used.

    - capacity set: gamma * |E[KL] - C(step)| (Burgess et al. 2018, eq. 8);
    - else beta(step) * KL, where with free bits lambda each group of latents j counts its batch-mean KL as
      max(lambda * size_j, KL_j) (Kingma et al. 2016, eq. 15): the groups are the latent dimensions when the KL
      splits over them in closed form (``kl_per_dim``), else the stochastic layers (``kl_layers``, e.g. a Monte
      Carlo KL against a VampPrior), each allowed lambda nats per dimension it has.
    """
    if cfg.capacity is not None:
        c = capacity_at(cfg, step)
        return cfg.gamma * (terms.kl.mean() - c).abs(), {"capacity": c}
    beta = beta_at(cfg, step, total_steps)
    if cfg.free_bits > 0 and terms.kl_per_dim is not None:
        kl_term = terms.kl_per_dim.mean(0).clamp(min=cfg.free_bits).sum()
    elif cfg.free_bits > 0:
        kl_term = sum(k.mean().clamp(min=cfg.free_bits * d) for k, d in zip(terms.kl_layers, terms.layer_dims))
    else:
        kl_term = terms.kl.mean()
    return beta * kl_term, {"beta": beta}
