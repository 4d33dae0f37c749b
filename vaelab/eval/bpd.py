"""Bits per dimension, where they mean something.

bpd = (nll + D * offset) / (D ln 2) is a code length per data dimension only when -log p(x) is one: for a
probability mass function over discrete data (binary pixels; the 256 values of 8-bit pixels, the discretized
logistic of PixelCNN++), or for a density on [0, 1]^D of uniformly dequantized 8-bit data, whose NLL plus D ln 256
bounds the NLL of the 8-bit data from above (Theis et al. 2016; the convention of the flow literature). The two
8-bit conventions measure the same thing, bits per 8-bit value, so their figures compare. A density evaluated at the
data's grid values (a plain Gaussian decoder, the continuous Bernoulli) or a Bernoulli cross-entropy against grey
pixels compares with nothing, and gets no bpd.

Each likelihood declares its convention by name (``Likelihood.bpd_convention``); the convention says which data
it applies to, so a Bernoulli likelihood's bpd appears on binary (or binarized) data only.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn

from ..config import ConfigError
from ..registry import Registry


@dataclass(frozen=True)
class Convention:
    offset: float  # nats per dimension added to the NLL: minus the log-width of a dequantization bin
    fits: Callable[[torch.Tensor], bool]  # the data [N, C, H, W] it applies to


def is_binary(x: torch.Tensor) -> bool:
    """Values 0 and 1 (for 8-bit pixels, uint8: 0 and 255)."""
    return bool(((x == 0) | (x == (255 if x.dtype == torch.uint8 else 1))).all())


def is_8bit(x: torch.Tensor, rows: int = 4096) -> bool:
    """Values k / 255, k = 0..255: 8-bit images scaled to [0, 1] (float32 holds k / 255 within 3e-8 of it). Checked
    ``rows`` examples at a time, so a whole training set needs no temporary copies of its size. uint8 pixels are."""
    if x.dtype == torch.uint8:
        return True
    for part in x.split(rows):
        k = part * 255
        if not (((k - k.round()).abs() < 1e-3).all() and (part >= 0).all() and (part <= 1).all()):
            return False
    return True


CONVENTIONS: Registry[Convention] = Registry("bpd convention")
CONVENTIONS.register("binary")(Convention(0.0, is_binary))  # a pmf over {0, 1}^D
CONVENTIONS.register("discrete-8bit")(Convention(0.0, is_8bit))  # a pmf over {0, ..., 255}^D
CONVENTIONS.register("dequantized-8bit")(Convention(math.log(256), is_8bit))  # a density of (k + u) / 256


def bpd_convention(model: nn.Module, x: torch.Tensor) -> str | None:
    """The name of the convention under which ``model``'s likelihood gives bits per dimension on data x, or None
    where no bpd means anything (the likelihood declares none, or the data are not what it declares)."""
    name = getattr(model.likelihood, "bpd_convention", None)
    return name if name is not None and CONVENTIONS.get(name).fits(x) else None


def check_data(model: nn.Module, x: torch.Tensor, what: str) -> None:
    """Refuse data that ``model``'s likelihood is not defined on: one that declares ``needs_convention`` (the 8-bit
    likelihoods) takes only data its convention fits. ``what`` names the data in the message."""
    name = getattr(model.likelihood, "bpd_convention", None)
    if getattr(model.likelihood, "needs_convention", False) and not CONVENTIONS.get(name).fits(x):
        raise ConfigError(f"this model's likelihood ({type(model.likelihood).__name__}) models 8-bit pixels, values "
                          f"k / 255, and {what} are not on that grid; use another model.likelihood (gaussian, "
                          f"continuous-bernoulli) or data of 8-bit images")


def bits_per_dim(nll: float, dims: int, convention: str | None) -> float | None:
    """(nll + dims * offset) / (dims ln 2) under ``convention``; None without one."""
    if convention is None:
        return None
    return (nll + dims * CONVENTIONS.get(convention).offset) / (dims * math.log(2))
