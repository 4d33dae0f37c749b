"""Training objectives by name (``objective.name``): each is an :class:`~vaelab.objectives.base.Objective` of one
model family, registered by its module, with its own options at ``objective.<key>.*``."""
from .base import OBJECTIVES, Objective, Player, check_run
from .disentangle import BetaTCObjective, DIPObjective, FactorObjective, tc_decomposition
from .elbo import ELBOObjective
from .iwae import IWAEObjective, iwae_bound
from .prior import PriorObjective
from .schedules import BETA_SCHEDULES, beta_at, capacity_at, kl_penalty
from .vq import VQObjective

__all__ = ["OBJECTIVES", "Objective", "Player", "check_run", "BetaTCObjective", "DIPObjective", "FactorObjective",
           "tc_decomposition", "ELBOObjective", "IWAEObjective", "VQObjective", "PriorObjective", "iwae_bound",
           "BETA_SCHEDULES", "beta_at", "capacity_at", "kl_penalty"]
