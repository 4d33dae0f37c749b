"""Binarization of [0, 1] images into {0, 1} pixels for Bernoulli likelihoods.

- ``none``: images as they are.
- ``static``: one Bernoulli draw per pixel, fixed once by a seed (Salakhutdinov & Murray 2008).
- ``dynamic``: a new draw at every training step (Burda et al. 2016, §5); validation and test
  images are drawn once, with a fixed seed, so that evaluations compare like with like.
"""
from __future__ import annotations

import dataclasses

import torch

from .. import noise
from ..config import BINARIZE_MODES as MODES
from ..config import ConfigError
from .base import Dataset, Split


def check_mode(mode: str) -> str:
    if mode not in MODES:
        raise ConfigError(f"unknown binarization {mode!r}; choose one of {', '.join(MODES)}")
    return mode


def fixed(x: torch.Tensor, seed: int) -> torch.Tensor:
    """One seeded Bernoulli draw per pixel."""
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(x.shape, generator=g) < x).to(x.dtype)


def dynamic(x: torch.Tensor) -> torch.Tensor:
    """A fresh draw, from the step's noise (see :mod:`vaelab.noise`)."""
    return noise.bernoulli(x)


def prepare(data: Dataset, mode: str, seed: int) -> Dataset:
    """The dataset with the fixed part of the binarization applied (all splits if static, val/test if dynamic)."""
    if check_mode(mode) == "none" or data.binary:
        return data
    splits = ("train", "val", "test") if mode == "static" else ("val", "test")
    changed = {name: Split(fixed(data.split(name).x, seed + i), data.split(name).y)
               for i, name in enumerate(splits)}
    return dataclasses.replace(data, **changed)
