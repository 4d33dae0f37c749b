"""Evaluation: ELBO terms, importance-sampled and AIS log-likelihood, reconstruction error and
posterior-collapse diagnostics."""
from .ais import ais_log_likelihood
from .likelihood import log_likelihood
from .metrics import ACTIVE_UNIT_THRESHOLD, evaluate

__all__ = ["evaluate", "log_likelihood", "ais_log_likelihood", "ACTIVE_UNIT_THRESHOLD"]
