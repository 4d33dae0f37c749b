"""Training objectives by name (``objective.name``); each is built from the run config and total steps
and maps (model, x, y, step) to (loss, logs)."""
from ..registry import Registry
from .elbo import ELBOObjective
from .iwae import IWAEObjective, iwae_bound
from .schedules import BETA_SCHEDULES, beta_at, capacity_at, kl_penalty
from .prior import PriorObjective
from .vq import VQObjective

OBJECTIVES: Registry = Registry("objective")
OBJECTIVES.register("elbo")(ELBOObjective)
OBJECTIVES.register("iwae")(IWAEObjective)
OBJECTIVES.register("vq")(VQObjective)
OBJECTIVES.register("prior")(PriorObjective)

__all__ = ["OBJECTIVES", "ELBOObjective", "IWAEObjective", "VQObjective", "PriorObjective", "iwae_bound", "BETA_SCHEDULES", "beta_at", "capacity_at",
           "kl_penalty"]
