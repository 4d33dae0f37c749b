"""Checkpoints as safetensors files: tensors plus JSON metadata, no pickle, written atomically.

A training checkpoint holds ``model.*`` weights, ``optim.<name>.*`` the state of each optimizer (``model``, and
those of the objective's own networks), ``objective.*`` the objective's networks and buffers and ``trainer.*``
tensors (RNG state) in one file, so model and trainer state can never disagree. :func:`load_weights` reads only
the model part. Files of the first format (vaelab 0.1.0) are read through :func:`migrate_v1`.
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

FORMAT = "vaelab-checkpoint-2"
FORMAT_V1 = "vaelab-checkpoint-1"


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
    if info.get("format") not in (FORMAT, FORMAT_V1):
        raise CheckpointError(f"{path} is not a vaelab checkpoint (format {info.get('format')!r}, want {FORMAT})")
    meta = json.loads(info["meta"])
    return migrate_v1(tensors, meta) if info["format"] == FORMAT_V1 else (tensors, meta)


def migrate_v1(tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> tuple[dict[str, torch.Tensor], dict]:
    """A first-format checkpoint in the second format: the model's optimizer ``optim.*`` -> ``optim.model.*``, an
    objective's own optimizer ``objective.disc_opt.*`` -> ``optim.disc.*`` (FactorVAE's discriminator, the only one
    then), their param groups under ``optim_groups[name]``, and the epoch's running sums as (sum, count) pairs."""
    if "optim_groups" not in meta:  # a best checkpoint: model weights only
        return tensors, meta
    renamed = {}
    for k, v in tensors.items():
        if k.startswith("optim."):
            k = "optim.model." + k.removeprefix("optim.")
        elif k.startswith("objective.disc_opt."):
            k = "optim.disc." + k.removeprefix("objective.disc_opt.")
        renamed[k] = v
    groups = {"model": meta["optim_groups"]}
    if meta.get("objective"):
        groups["disc"] = meta["objective"]["groups"]
    n = meta["sums"].get("n", 0.0)
    sums = {k: [v, n] for k, v in meta["sums"].items() if k != "n"}
    return renamed, {**{k: v for k, v in meta.items() if k != "objective"}, "optim_groups": groups, "sums": sums}


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
