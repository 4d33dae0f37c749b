"""Devices named in configs and flags (``cpu``, ``cuda``, ``cuda:1``, ``mps``), checked against this machine before
anything runs on them."""
from __future__ import annotations

import torch

from .config import ConfigError


def resolve(name: str, option: str) -> torch.device:
    """The device ``name`` (given as ``option``; ``auto``: cuda when this machine has one, else cpu), or a ConfigError
    that says which devices this machine has."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError, ValueError):
        raise ConfigError(f"{option} {name!r} is not a device; use auto, cpu, cuda, cuda:N or mps") from None
    if device.type == "cuda":
        n = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if n == 0:
            raise ConfigError(f"{option} {name!r}: this machine has no CUDA device (torch.cuda.is_available() is "
                              f"False); use cpu")
        if device.index is not None and device.index >= n:
            raise ConfigError(f"{option} {name!r}: this machine has {n} CUDA device(s): cuda:0 to cuda:{n - 1}")
    elif device.type == "mps":
        if not torch.backends.mps.is_available():
            raise ConfigError(f"{option} {name!r}: this machine has no MPS device; use cpu")
    elif device.type != "cpu":
        raise ConfigError(f"{option} {name!r}: vaelab runs on cpu, cuda or mps")
    return device
