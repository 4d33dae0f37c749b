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

    def __init__(self, cfg: RunConfig, facts: DataFacts, total_steps: int):
        super().__init__()
        self.options = getattr(cfg.objective, self.options_key) if self.options_key else None

    @classmethod
    def check(cls, cfg: RunConfig) -> None:
        """Raise ConfigError for a model or setting this objective cannot train (before anything runs)."""

    def forward(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor | None, step: int
                ) -> tuple[torch.Tensor, dict[str, torch.Tensor | float]]:
        raise NotImplementedError

    def players(self) -> list[Player]:
        """The networks this objective trains with optimizers of their own (none by default)."""
        return []


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
    objective.check(cfg)
