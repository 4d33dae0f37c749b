from .elbo import ELBOObjective
from .schedules import BETA_SCHEDULES, beta_at, capacity_at, kl_penalty

__all__ = ["ELBOObjective", "BETA_SCHEDULES", "beta_at", "capacity_at", "kl_penalty"]
