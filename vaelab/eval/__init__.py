"""Evaluation: ELBO terms, importance-sampled and AIS log-likelihood, reconstruction error and
posterior-collapse diagnostics."""
from .ais import ais_log_likelihood
from .likelihood import log_likelihood
from .image import mse, psnr, ssim
from .metrics import ACTIVE_UNIT_THRESHOLD, eval_batch_size, evaluate, evaluate_elbo
from .vq import evaluate_vq

__all__ = ["evaluate", "evaluate_elbo", "evaluate_vq", "eval_batch_size", "mse", "psnr", "ssim", "log_likelihood",
           "ais_log_likelihood", "ACTIVE_UNIT_THRESHOLD"]
