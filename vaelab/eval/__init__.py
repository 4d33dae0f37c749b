"""Evaluation: ELBO terms, reconstruction error and posterior-collapse diagnostics."""
from .metrics import ACTIVE_UNIT_THRESHOLD, evaluate

__all__ = ["evaluate", "ACTIVE_UNIT_THRESHOLD"]
