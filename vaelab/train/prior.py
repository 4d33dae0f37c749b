"""Training a PixelCNN prior over a finished VQ-VAE's codes, with the same trainer as every model.

The prior's run directory is ``DIR/prior`` inside the VQ-VAE's run ``DIR``; its data are the code grids
of the VQ-VAE's train/val/test images.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

import torch
from torch import nn

from ..config import RunConfig
from ..data import Dataset, Split
from ..eval import batches
from ..models import load_run, run_facts
from ..rundir import RunDir, RunDirError
from .trainer import Trainer, load_run_data


@torch.no_grad()
def encode_codes(model: nn.Module, split: Split, batch_size: int = 500) -> Split:
    device = next(model.parameters()).device
    codes = [model.encode(x).cpu() for _, x, _, _ in batches(split, batch_size, device, False)]
    return Split(torch.cat(codes), split.y)


def code_dataset(model: nn.Module, data: Dataset) -> Dataset:
    return Dataset(f"{data.name}-codes", *(encode_codes(model, data.split(s)) for s in ("train", "val", "test")),
                   num_classes=data.num_classes, binary=False)


def prior_config(vq_run: RunConfig) -> RunConfig:
    """The prior's run config: the VQ run's ``code_prior`` section sets the network and its training."""
    p = vq_run.code_prior
    return RunConfig().override({
        "data": {"name": vq_run.data.name, "binarize": "none"},
        "model": {"name": "pixelcnn-prior"},
        "objective": {"name": "prior"},
        "vq": {"codebook_size": vq_run.vq.codebook_size},
        "code_prior": dataclasses.asdict(p),
        "train": {"epochs": p.epochs, "batch_size": p.batch_size, "lr": p.lr, "seed": vq_run.train.seed,
                  "device": vq_run.train.device, "progress": vq_run.train.progress},
    })


def prior_dir(run: str | Path) -> Path:
    return Path(run) / "prior"


def code_grid(run: str | Path) -> tuple[int, int]:
    """The (H', W') grid of codes that the prior of VQ-VAE run ``run`` was trained on."""
    return run_facts(RunDir(prior_dir(run))).shape


def prior_trainer(run: str | Path, assignments: list[str] = (), resume: bool = False) -> Trainer:
    """A trainer for the prior of VQ-VAE run ``run``; ``assignments`` are ``--set`` strings for its config. Without
    ``resume``, a prior the run already has is replaced when training begins."""
    vq_cfg, model = load_run(run)
    model.family.require("code-prior", "`vaelab train-prior`")
    out = RunDir(prior_dir(run))
    if resume and not out.config.exists():
        raise RunDirError(f"{out.path} holds no prior to resume; train one with `vaelab train-prior {run}`")
    cfg = out.load_config().set(list(assignments)) if resume else prior_config(vq_cfg).set(list(assignments))
    codes = code_dataset(model, load_run_data(vq_cfg))
    trainer = Trainer(cfg, out.path, data=codes, replace=not resume)
    if resume:
        trainer.resume()  # else it was stopped before its first checkpoint: it starts again at step 0
    return trainer
