"""Checkpoints as safetensors files: tensors plus JSON metadata, no pickle, written atomically and checksummed.

A training checkpoint holds ``model.*`` weights, ``optim.<name>.*`` the state of each optimizer (``model``, and
those of the objective's own networks), ``objective.*`` the objective's networks and buffers and ``trainer.*``
tensors (RNG state) in one file, so model and trainer state can never disagree. :func:`load_weights` reads only
the model part. Files of the first format (vaelab 0.1.0) are read through :func:`migrate_v1`.

The file's metadata carries a SHA-256 of every tensor (name, dtype, shape, bytes) and of the metadata itself
(:func:`digest`); :func:`load` checks it, so a bit flip or a partial copy is an error, never silently wrong weights.
Files written before the checksum (no ``sha256``) load unchecked.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from .durable import replacing, temp_path

FORMAT = "vaelab-checkpoint-2"
FORMAT_V1 = "vaelab-checkpoint-1"


class CheckpointError(RuntimeError):
    """A checkpoint that is missing, unreadable, damaged, or not vaelab's."""


def digest(tensors: dict[str, torch.Tensor], meta: str) -> str:
    """SHA-256 over the tensors in name order (each name, dtype, shape and bytes) and the metadata string."""
    h = hashlib.sha256()
    for name in sorted(tensors):
        t = tensors[name]
        h.update(f"{name}|{t.dtype}|{list(t.shape)}\n".encode())
        h.update(t.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy())
    h.update(meta.encode())
    return h.hexdigest()


def save(path: str | Path, tensors: dict[str, torch.Tensor], meta: dict[str, Any], keep: Path | None = None) -> None:
    """Write to a temporary file beside ``path``, flush to disk, then rename over it. With ``keep``, the file that
    ``path`` held becomes ``keep`` first (a hard link, so ``path`` itself is never missing)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().contiguous().cpu() for k, v in tensors.items()}
    meta_json = json.dumps(meta)
    with replacing(path) as tmp:
        save_file(tensors, tmp, metadata={"format": FORMAT, "meta": meta_json, "sha256": digest(tensors, meta_json)})
        if keep is not None and path.exists():
            _keep(path, keep)


def _keep(path: Path, keep: Path) -> None:
    """``keep`` becomes the file at ``path``, atomically."""
    link = temp_path(keep)
    try:
        os.link(path, link)
        os.replace(link, keep)
    finally:
        link.unlink(missing_ok=True)


def load(path: str | Path, verify: bool = True) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """The tensors and metadata of checkpoint ``path``, its checksum verified (when it has one, and ``verify``)."""
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"no checkpoint at {path}")
    try:
        tensors = load_file(path)
        info = _metadata(path)
    except (SafetensorError, OSError, ValueError, AttributeError) as e:
        raise CheckpointError(f"checkpoint {path} is unreadable ({_one_line(e)}); it may be truncated") from None
    if info.get("format") not in (FORMAT, FORMAT_V1):
        raise CheckpointError(f"{path} is not a vaelab checkpoint (format {info.get('format')!r}, want {FORMAT})")
    try:
        meta = json.loads(info["meta"])
        if not isinstance(meta, dict):
            raise ValueError("not a mapping")
    except (KeyError, TypeError, ValueError) as e:
        raise CheckpointError(f"checkpoint {path} has unreadable metadata ({_one_line(e)}); it is damaged") from None
    if verify and "sha256" in info and digest(tensors, info["meta"]) != info["sha256"]:
        raise CheckpointError(f"checkpoint {path} is damaged: its content does not match the sha256 in its "
                              f"metadata (a bit flip, or a partial copy)")
    if info["format"] != FORMAT_V1:
        return tensors, meta
    try:
        return migrate_v1(tensors, meta)
    except (KeyError, TypeError, AttributeError) as e:
        raise CheckpointError(f"checkpoint {path} has unreadable metadata (no {_one_line(e)}); it is damaged") from None


def _metadata(path: Path) -> dict:
    """The metadata of a safetensors file's header (8-byte length, then JSON)."""
    with open(path, "rb") as f:
        n = int.from_bytes(f.read(8), "little")
        return json.loads(f.read(n)).get("__metadata__") or {}


def checksummed(path: str | Path) -> bool:
    """Whether checkpoint ``path`` carries a sha256 (files of vaelab 0.1.0 do not)."""
    return "sha256" in _metadata(Path(path))


def _one_line(e: Exception) -> str:
    return " ".join(str(e).split()) or type(e).__name__


def load_module(module: torch.nn.Module, state: dict[str, torch.Tensor], path: str | Path, part: str) -> None:
    """``module.load_state_dict(state)``, or a CheckpointError that names the checkpoint and the missing, unexpected
    or misshapen tensors of ``part`` (``model``, ``objective``)."""
    try:
        module.load_state_dict(state)
    except (RuntimeError, KeyError, ValueError, TypeError) as e:
        lines = [line.strip().rstrip(".") for line in str(e).splitlines()[1:] if line.strip()] or [_one_line(e)]
        raise CheckpointError(f"checkpoint {path} does not fit the {part} that its run's config builds: "
                              f"{'; '.join(lines)}") from None


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
