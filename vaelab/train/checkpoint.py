"""Checkpoints as safetensors files: tensors plus JSON metadata, no pickle, written atomically.

A training checkpoint holds ``model.*`` weights, ``optim.*`` optimizer state and
``trainer.*`` tensors (RNG state, running sums) in one file, so model and trainer
state can never disagree. :func:`load_weights` reads only the model part.
"""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

FORMAT = "vaelab-checkpoint-1"


class CheckpointError(RuntimeError):
    """A checkpoint that is missing, unreadable, or not vaelab's."""


def save(path: str | Path, tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
    """Write to a temporary file beside ``path``, flush to disk, then rename over it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().contiguous().cpu() for k, v in tensors.items()}
    fd, tmp = tempfile.mkstemp(prefix=path.name, suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        save_file(tensors, tmp, metadata={"format": FORMAT, "meta": json.dumps(meta)})
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def load(path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"no checkpoint at {path}")
    try:
        tensors = load_file(path)
        with open(path, "rb") as f:  # the header: 8-byte length, then JSON
            n = int.from_bytes(f.read(8), "little")
            header = json.loads(f.read(n))
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(f"checkpoint {path} is unreadable ({e}); it may be truncated") from None
    info = header.get("__metadata__", {})
    if info.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a vaelab checkpoint (format {info.get('format')!r}, want {FORMAT})")
    return tensors, json.loads(info["meta"])


def prefixed(prefix: str, tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {f"{prefix}.{k}": v for k, v in tensors.items()}


def unprefixed(prefix: str, tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    n = len(prefix) + 1
    return {k[n:]: v for k, v in tensors.items() if k.startswith(prefix + ".")}


def load_weights(path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """The model's state dict and the checkpoint's metadata."""
    tensors, meta = load(path)
    return unprefixed("model", tensors), meta


def optimizer_state(opt: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], list]:
    """Flatten an optimizer's state dict into tensors ``<param>.<key>`` and JSON-able param groups."""
    sd = opt.state_dict()
    tensors = {f"{pid}.{key}": torch.as_tensor(v) for pid, state in sd["state"].items() for key, v in state.items()}
    return tensors, sd["param_groups"]


def load_optimizer_state(opt: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], groups: list) -> None:
    state: dict[int, dict[str, torch.Tensor]] = {}
    for name, v in tensors.items():
        pid, key = name.split(".", 1)
        state.setdefault(int(pid), {})[key] = v
    opt.load_state_dict({"state": state, "param_groups": groups})
