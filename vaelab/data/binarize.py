"""Binarization of [0, 1] images into {0, 1} pixels for Bernoulli likelihoods.

- ``none``: images as they are.
- ``static``: one Bernoulli draw per pixel, fixed once by a seed (Salakhutdinov & Murray 2008).
- ``dynamic``: a new draw at every training step (Burda et al. 2016, §5); validation and test
  images are drawn once, with a fixed seed, so that evaluations compare like with like. Evaluating the
  train split (``prepare(..., evaluation=True)``) draws it once too, with a seed of its own.
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
    """A fresh draw, from the step's noise (see :mod:`vaelab.noise`): float32 0/1 for 8-bit pixels (uint8 k, drawn
    as k / 255 would be), else in x's dtype."""
    return noise.bernoulli(x)


def _seeds(mode: str, seed: int) -> dict[str, int]:
    """The seed of each split's fixed draw: static train, val, test at seed + 0, 1, 2; dynamic val, test at
    seed + 0, 1, and its train split, drawn for evaluation only, at seed + 2."""
    order = ("train", "val", "test") if mode == "static" else ("val", "test", "train")
    return {name: seed + i for i, name in enumerate(order)}


def prepare(data: Dataset, mode: str, seed: int, evaluation: bool = False) -> Dataset:
    """The dataset with the fixed part of the binarization applied: every split if static; val and test if
    dynamic, and train too for ``evaluation`` (training draws it afresh at each step, from the grey images). Each
    binarized split keeps its grey images as ``source``, for pictures and image metrics."""
    if check_mode(mode) == "none" or data.binary:
        return data
    seeds = _seeds(mode, seed)
    splits = ("train", "val", "test") if mode == "static" or evaluation else ("val", "test")
    changed = {name: _drawn(data.split(name), seeds[name]) for name in splits}
    return dataclasses.replace(data, **changed)


def _drawn(split: Split, seed: int) -> Split:
    return dataclasses.replace(split, pixels=fixed(split.images, seed), source=split.images)


def describe(data: Dataset, mode: str, seed: int, split: str) -> str:
    """How ``split`` is binarized for evaluation, as ``eval.json`` says it."""
    if data.binary:
        return "none (the data are binary)"
    if check_mode(mode) == "none":
        return "none"
    fixed_by = f"seed {_seeds(mode, seed)[split]}"
    return f"static ({fixed_by})" if mode == "static" else f"dynamic (evaluated on one fixed draw, {fixed_by})"
