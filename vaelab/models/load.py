"""Trained models read back from run directories: the config, the data facts recorded beside it, the weights."""
from __future__ import annotations

from pathlib import Path

from torch import nn

from ..checkpoint import load_module, load_weights
from ..config import RunConfig
from ..device import resolve
from ..data import DataFacts
from ..rundir import RunDir
from .build import build_model


def run_facts(run: RunDir) -> DataFacts:
    """The data facts run ``run``'s model was built for."""
    return DataFacts.from_dict(run.facts())


def load_run(path: str | Path, checkpoint: str = "best", device: str = "cpu") -> tuple[RunConfig, nn.Module]:
    """The run's config and its model in eval mode, weights from the ``best`` (else ``last``) or ``last`` checkpoint."""
    run = RunDir(path)
    cfg = run.load_config()
    on = resolve(device, "device")
    model = build_model(cfg, run_facts(run))
    file = run.checkpoint(checkpoint)
    weights, _ = load_weights(file)
    load_module(model, weights, file, "model")
    return cfg, model.to(on).eval()


def load(path: str | Path, checkpoint: str = "best", device: str = "cpu") -> nn.Module:
    """The trained model of run directory ``path``: ``model.encode``, ``decode``, ``sample``, ``reconstruct``."""
    return load_run(path, checkpoint, device)[1]
