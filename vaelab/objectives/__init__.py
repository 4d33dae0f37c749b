"""Training objectives by name (``objective.name``); each is built from the run config and total steps
and maps (model, x, y, step) to (loss, logs). An objective's ``family`` (default ``vae``) is the model family it
trains."""
from ..registry import Registry
from .disentangle import BetaTCObjective, DIPObjective, FactorObjective, tc_decomposition
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
OBJECTIVES.register("beta-tc")(BetaTCObjective)
OBJECTIVES.register("factor")(FactorObjective)
OBJECTIVES.register("dip-i")(DIPObjective)
OBJECTIVES.register("dip-ii")(DIPObjective)

__all__ = ["OBJECTIVES", "BetaTCObjective", "DIPObjective", "FactorObjective", "tc_decomposition", "ELBOObjective", "IWAEObjective", "VQObjective", "PriorObjective", "iwae_bound", "BETA_SCHEDULES", "beta_at", "capacity_at",
           "kl_penalty"]
