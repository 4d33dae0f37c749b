"""Training objectives by name (``objective.name``): each is an :class:`~vaelab.objectives.base.Objective` of one
model family, registered by its module, with its own options at ``objective.<key>.*``."""
from .adversarial import AAEObjective, WAEGANObjective
from .base import OBJECTIVES, Objective, Player, check_run, global_batch, inner
from .disentangle import BetaTCObjective, DIPObjective, FactorObjective, tc_decomposition
from .elbo import ELBOObjective
from .infovae import InfoVAEObjective
from .iwae import IWAEObjective, iwae_bound
from .m2 import M2Objective, m2_terms
from .miwae import MIWAEObjective
from .mmd import KERNELS, mmd_u
from .prior import PriorObjective
from .schedules import BETA_SCHEDULES, beta_at, capacity_at, kl_penalty
from .vaegan import VAEGANObjective
from .vq import VQObjective
from .wae import WAEMMDObjective

__all__ = ["OBJECTIVES", "Objective", "Player", "check_run", "global_batch", "inner", "InfoVAEObjective",
           "WAEMMDObjective", "WAEGANObjective", "AAEObjective", "VAEGANObjective", "KERNELS", "mmd_u",
           "BetaTCObjective", "DIPObjective", "FactorObjective", "tc_decomposition", "ELBOObjective",
           "IWAEObjective", "M2Objective", "m2_terms", "MIWAEObjective", "VQObjective", "PriorObjective", "iwae_bound",
           "BETA_SCHEDULES", "beta_at",
           "capacity_at", "kl_penalty"]
