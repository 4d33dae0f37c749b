"""Evaluation: ELBO terms, importance-sampled and AIS log-likelihood, reconstruction error and
posterior-collapse diagnostics, codebook usage, and the MMD between codes and the prior; one evaluator per model
family (:data:`EVALUATORS`)."""
from .ais import ais_log_likelihood
from .common import EVALUATORS, batches, eval_batch_size, evaluate, evaluating
from .image import mse, psnr, ssim
from .likelihood import log_likelihood
from .autoencoder import evaluate_autoencoder
from .metrics import ACTIVE_UNIT_THRESHOLD, evaluate_elbo
from .vq import evaluate_prior, evaluate_vq

__all__ = ["EVALUATORS", "evaluate", "evaluating", "batches", "evaluate_elbo", "evaluate_vq", "evaluate_prior",
           "evaluate_autoencoder", "eval_batch_size", "mse", "psnr", "ssim", "log_likelihood", "ais_log_likelihood",
           "ACTIVE_UNIT_THRESHOLD"]
