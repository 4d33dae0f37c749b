"""The contract between the trainer and an objective.

An :class:`Objective` turns a batch at a step into the model's loss and its logs. It is a module: networks of its
own (a discriminator) are submodules, so they move with ``.to(device)`` and their weights and buffers sit in its
``state_dict``, which checkpoints hold. A network it trains against the model, with an optimizer of its own, is a
:class:`Player`: the trainer steps each player before each of the model's steps, averages its gradients over DDP
ranks and checkpoints its optimizer, so multi-optimizer training (FactorVAE's discriminator; adversarial
autoencoders, WAE-GAN) is the trainer's general case.

Adding an objective is one module: a subclass with its ``family``, its options dataclass (``Options``, read from
``objective.<options_key>.*``) and ``@OBJECTIVES.register(name)``; then one import line in ``__init__``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, ClassVar

import torch
import torch.distributed as dist
from torch import nn

from ..config import ConfigError, RunConfig, register_options
from ..data import DataFacts
from ..models import MODELS, Family
from ..registry import Registry


@dataclass
class Player:
    """A network the objective trains with an optimizer of its own; ``loss(step)`` is its loss before the model's
    update at ``step`` (None: no update at this step)."""

    name: str  # checkpoints hold its optimizer as optim.<name>.*; logs its loss as <name>_loss
    module: nn.Module
    optimizer: torch.optim.Optimizer
    loss: Callable[[int], torch.Tensor | None]


class Objective(nn.Module):
    """What training minimizes for a model of ``family``: ``forward(model, x, y, step) -> (loss, logs)``, logs a
    dict of scalars (``loss`` among them; ``nelbo`` where there is an ELBO) that the trainer averages per epoch."""

    family: ClassVar[Family]
    Options: ClassVar[type | None] = None  # its options dataclass, at objective.<options_key>
    options_key: ClassVar[str | None] = None
    # Tensors a step leaves for the players' next update (FactorVAE's codes; a discriminator's fakes): buffers that
    # start empty, change size and are checkpointed, so a resumed run steps its players as the uninterrupted one
    pending_buffers: ClassVar[tuple[str, ...]] = ()
    semi_supervised: ClassVar[bool] = False  # it trains on splits with unlabelled examples (y = -1, data.labels)

    def __init__(self, cfg: RunConfig, facts: DataFacts, total_steps: int):
        super().__init__()
        self.options = getattr(cfg.objective, self.options_key) if self.options_key else None
        for name in self.pending_buffers:
            self.register_buffer(name, torch.empty(0))

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        """A pending buffer takes the saved one's size (empty when saved before the first step)."""
        for name in self.pending_buffers:
            saved = state_dict.setdefault(prefix + name, torch.empty(0))
            setattr(self, name, getattr(self, name).new_empty(saved.shape))
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    @classmethod
    def check(cls, cfg: RunConfig) -> None:
        """Raise ConfigError for a model or setting this objective cannot train (before anything runs)."""

    def forward(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor | None, step: int
                ) -> tuple[torch.Tensor, dict[str, torch.Tensor | float]]:
        raise NotImplementedError

    def players(self) -> list[Player]:
        """The networks this objective trains with optimizers of their own (none by default)."""
        return []


def inner(model: nn.Module) -> nn.Module:
    """The model itself when the trainer passes it wrapped for DDP (its parts: ``prior``, ``decoder_mean``)."""
    return getattr(model, "module", model)


class _GatherBatch(torch.autograd.Function):
    """All ranks' equal slices, concatenated in rank order; the gradient of a slice is the sum over ranks of the
    gradients that reach it (each rank computes the same statistic of the global batch, and DDP then averages)."""

    @staticmethod
    def forward(ctx, t: torch.Tensor) -> torch.Tensor:
        parts = [torch.empty_like(t) for _ in range(dist.get_world_size())]
        dist.all_gather(parts, t.contiguous())
        ctx.rank, ctx.n = dist.get_rank(), len(t)
        return torch.cat(parts)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        grad = grad.contiguous().clone()
        dist.all_reduce(grad)
        return grad[ctx.rank * ctx.n:(ctx.rank + 1) * ctx.n]


def global_batch(t: torch.Tensor) -> torch.Tensor:
    """This rank's examples t [b, ...] as the global batch [B, ...] (the trainer's slices in rank order), with
    gradient: batch statistics (an MMD) then do not depend on how many ranks share the batch. ``t`` itself in a
    single process."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return t
    return _GatherBatch.apply(t)


class _Objectives(Registry[type[Objective]]):
    def register(self, name: str) -> Callable[[type[Objective]], type[Objective]]:
        """Register an objective class under ``name``, with its options group (``objective.<options_key>``)."""
        add = super().register(name)

        def both(cls: type[Objective]) -> type[Objective]:
            if cls.Options is not None:
                register_options("objective", cls.options_key, cls.Options, name)
            return add(cls)

        return both

    def for_family(self, family: Family) -> list[str]:
        """The objectives that train models of ``family``."""
        return [n for n in self.names() if self.get(n).family is family]


OBJECTIVES = _Objectives("objective")


def check_run(cfg: RunConfig) -> None:
    """Everything that can be known wrong about a run config before data are loaded: its values, and whether its
    objective trains its model."""
    cfg.check()
    family = MODELS.get(cfg.model.name).family
    objective = OBJECTIVES.get(cfg.objective.name)
    if objective.family is not family:
        able = ", ".join(OBJECTIVES.for_family(family))
        raise ConfigError(f"objective {cfg.objective.name!r} trains {objective.family.about}; {cfg.model.name!r} is "
                          f"{family.about}, trained by: {able}")
    if cfg.data.labels is not None and not objective.semi_supervised:
        able = ", ".join(n for n in OBJECTIVES.names() if OBJECTIVES.get(n).semi_supervised)
        raise ConfigError(f"data.labels={cfg.data.labels} leaves most training examples unlabelled, which objective "
                          f"{cfg.objective.name!r} cannot train on; semi-supervised objectives: {able} (--model m2)")
    objective.check(cfg)
