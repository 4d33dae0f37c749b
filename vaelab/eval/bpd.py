"""Bits per dimension, where they mean something.

bpd = (nll + D * offset) / (D ln 2) is a code length per data dimension only when -log p(x) is one: for a
probability mass function over discrete data, or for a density on [0, 1]^D of uniformly dequantized 8-bit data,
whose NLL plus D ln 256 bounds the NLL of the 8-bit data from above (Theis et al. 2016; the convention of the flow
and PixelCNN literature). A density evaluated at the data's grid values (a plain Gaussian decoder) or
a Bernoulli cross-entropy against grey pixels compares with nothing, and gets no bpd.

Each likelihood declares its convention by name (``Likelihood.bpd_convention``); the convention says which data
it applies to, so a Bernoulli likelihood's bpd appears on binary (or binarized) data only.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn

from ..registry import Registry


@dataclass(frozen=True)
class Convention:
    offset: float  # nats per dimension added to the NLL: minus the log-width of a dequantization bin
    fits: Callable[[torch.Tensor], bool]  # the data [N, C, H, W] it applies to


def is_binary(x: torch.Tensor) -> bool:
    return bool(((x == 0) | (x == 1)).all())


def is_8bit(x: torch.Tensor) -> bool:
    """Values k / 255, k = 0..255: 8-bit images scaled to [0, 1] (float32 holds k / 255 within 3e-8 of it)."""
    k = x * 255
    return bool(((k - k.round()).abs() < 1e-3).all() and (x >= 0).all() and (x <= 1).all())


CONVENTIONS: Registry[Convention] = Registry("bpd convention")
CONVENTIONS.register("binary")(Convention(0.0, is_binary))  # a pmf over {0, 1}^D
CONVENTIONS.register("dequantized-8bit")(Convention(math.log(256), is_8bit))  # a density of (k + u) / 256


def bpd_convention(model: nn.Module, x: torch.Tensor) -> str | None:
    """The name of the convention under which ``model``'s likelihood gives bits per dimension on data x, or None
    where no bpd means anything (the likelihood declares none, or the data are not what it declares)."""
    name = getattr(model.likelihood, "bpd_convention", None)
    return name if name is not None and CONVENTIONS.get(name).fits(x) else None


def bits_per_dim(nll: float, dims: int, convention: str | None) -> float | None:
    """(nll + dims * offset) / (dims ln 2) under ``convention``; None without one."""
    if convention is None:
        return None
    return (nll + dims * CONVENTIONS.get(convention).offset) / (dims * math.log(2))
