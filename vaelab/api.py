"""Loading and evaluating trained runs from Python."""
from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import nn

from .config import ConfigError, RunConfig
from .data import binarize
from .eval import ais_log_likelihood, evaluate, log_likelihood
from .models import build_model
from .models.linear import exact_log_px, linear_gaussian_parts
from .rundir import RunDir, write_atomic
from .train.checkpoint import load_weights


def load_run(path: str | Path, checkpoint: str = "best", device: str = "cpu") -> tuple[RunConfig, nn.Module]:
    """The run's config and its model in eval mode, weights from the ``best`` (else ``last``) or ``last`` checkpoint."""
    run = RunDir(path)
    cfg = run.load_config()
    model = build_model(cfg)
    weights, _ = load_weights(run.checkpoint(checkpoint))
    model.load_state_dict(weights)
    return cfg, model.to(torch.device(device)).eval()


def load(path: str | Path, checkpoint: str = "best", device: str = "cpu") -> nn.Module:
    """The trained model of run directory ``path``: ``model.encode``, ``decode``, ``sample``, ``reconstruct``."""
    return load_run(path, checkpoint, device)[1]


def evaluate_run(path: str | Path, split: str = "test", checkpoint: str = "best", device: str = "cpu", *,
                 batch_size: int | None = None, seed: int = 0, nll_samples: int = 0, ais_steps: int = 0,
                 ais_chains: int = 16, progress: bool = False) -> dict:
    """Evaluate run ``path`` on a split of its dataset, write ``path/eval.json`` and return it (``vaelab eval``).

    Every model: its family's metrics (:func:`vaelab.eval.evaluate`) on the split binarized as the run was trained
    (``binarization`` says how); a VQ-VAE with a code prior: the prior's bits per code; a VAE with ``nll_samples`` /
    ``ais_steps``: -log p(x) by importance sampling / AIS, the gap, and bits per dimension where a
    ``bpd_convention`` gives them meaning (:mod:`vaelab.eval.bpd`); a linear-Gaussian VAE: the exact
    ``nll_exact`` (:mod:`vaelab.models.linear`)."""
    from .train import load_run_data
    from .train.prior import encode_codes, prior_dir

    cfg, model = load_run(path, checkpoint, device)
    if (nll_samples or ais_steps) and model.family != "vae":
        raise ConfigError(f"likelihood estimates need a continuous latent space (a VAE); {path} holds a "
                          f"{model.family} model")
    dataset = load_run_data(cfg, evaluation=True)
    data = dataset.split(split)
    result = {"split": split, "checkpoint": checkpoint, "dataset": cfg.data.name, "model": cfg.model.name,
              "binarization": binarize.describe(dataset, cfg.data.binarize, cfg.data.seed, split),
              **evaluate(model, data, batch_size=batch_size, seed=seed)}
    if model.family == "vq" and (prior_dir(path) / "config.yaml").exists():
        _, prior = load_run(prior_dir(path), "best", device)
        result["prior_bits_per_code"] = evaluate(prior, encode_codes(model, data))["bits_per_code"]
    if linear_gaussian_parts(model) is not None:
        result["nll_exact"] = -exact_log_px(model, data.x).mean().item()
    if nll_samples:
        ll = log_likelihood(model, data, k=nll_samples, seed=seed, progress=progress)
        result |= {"nll": ll["nll"], "nll_se": ll["nll_se"], "bpd": ll["bpd"], "bpd_convention": ll["bpd_convention"],
                   "nll_samples": ll["k"], "gap": result["nelbo"] - ll["nll"]}
    if ais_steps:
        ais = ais_log_likelihood(model, data, steps=ais_steps, chains=ais_chains, seed=seed, progress=progress)
        result["ais"] = {k: v for k, v in ais.items() if k != "log_px"}
    write_atomic(RunDir(path).eval, json.dumps(result, indent=2))
    return result
