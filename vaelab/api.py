"""Loading trained runs from Python."""
from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from .config import RunConfig
from .models import build_model
from .rundir import RunDir
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
