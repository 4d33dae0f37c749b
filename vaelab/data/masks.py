"""Missingness masks for images: True where an entry is observed, False where it is missing (Mattei & Frellsen
2019's convention). A mask spec names one: ``random:P`` (each pixel missing with probability P, all its channels
together: missing completely at random), ``half-top`` / ``half-left`` (the top / left half missing), ``square:S``
(a centred S x S square missing), or a ``.npy`` file of 0/1 masks: one [H, W], a stack [N, H, W] (all channels
of a pixel together) or [N, C, H, W].
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..config import ConfigError
from .errors import DataError

KINDS = ("random:P", "half-top", "half-left", "square:S", "FILE.npy")


def read_mask_file(path: str | Path, shape: tuple[int, int, int]) -> torch.Tensor:
    """The 0/1 masks of a ``.npy`` file as bool [M, C, H, W] for images of ``shape`` (C, H, W)."""
    try:
        a = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as e:
        raise DataError(f"{path}: not a readable .npy mask file ({e})") from None
    if not np.isin(a, (0, 1)).all():
        raise DataError(f"{path}: a mask holds 0 (missing) and 1 (observed) only")
    m = torch.from_numpy(a.astype(bool))
    m = m[None, None] if m.dim() == 2 else m[:, None] if m.dim() == 3 else m  # [M, C or 1, H, W]
    if m.dim() != 4 or m.shape[2:] != shape[1:] or m.shape[1] not in (1, shape[0]):
        raise DataError(f"{path}: masks of shape {tuple(a.shape)} do not fit images of shape {shape}")
    return m.expand(-1, shape[0], -1, -1)


def make_masks(spec: str, n: int, shape: tuple[int, int, int], seed: int = 0) -> torch.Tensor:
    """n masks [n, C, H, W] (bool, True observed) for images of ``shape`` by ``spec`` (see the module); a file's
    single mask is repeated, a stack's first n taken (it must hold n)."""
    c, h, w = shape
    kind, _, arg = spec.partition(":")
    m = torch.ones(n, 1, h, w, dtype=torch.bool)
    if kind == "random":
        p = _number(spec, arg, float)
        if not 0 < p < 1:
            raise ConfigError(f"mask {spec}: the missing rate must be in (0, 1)")
        m = torch.rand(n, 1, h, w, generator=torch.Generator().manual_seed(seed)) >= p
    elif kind == "half-top":
        m[:, :, : h // 2] = False
    elif kind == "half-left":
        m[:, :, :, : w // 2] = False
    elif kind == "square":
        s = _number(spec, arg, int)
        if not 0 < s <= min(h, w):
            raise ConfigError(f"mask {spec}: the square's side must be in 1..{min(h, w)}")
        m[:, :, (h - s) // 2:(h - s) // 2 + s, (w - s) // 2:(w - s) // 2 + s] = False
    elif spec.endswith(".npy"):
        f = read_mask_file(spec, shape)
        if 1 < len(f) < n:
            raise DataError(f"{spec}: {len(f)} masks for {n} images")
        return f.expand(n, -1, -1, -1).clone() if len(f) == 1 else f[:n].clone()
    else:
        raise ConfigError(f"unknown mask {spec!r}; choose one of {', '.join(KINDS)}")
    return m.expand(-1, c, -1, -1).clone()


def _number(spec: str, text: str, kind: type):
    try:
        return kind(text)
    except ValueError:
        raise ConfigError(f"mask {spec}: expected a number after ':'") from None
