"""Every path the app reads or writes, confined to its runs directory (no Streamlit here).

A visitor names runs and folders in text fields; each name is checked (:func:`check_name`) and resolved, symlinks
included, before anything is opened or created (:func:`confine`): ``.``, ``..``, absolute paths and links that lead
out of the runs directory are refused with a one-line :class:`PathError`."""
from __future__ import annotations

import re
from pathlib import Path

from ..config import ConfigError

PART = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,99}")  # one folder name: no leading dot, no separators


class PathError(ConfigError):
    """A path typed in the app that leads out of the runs directory, or a name that is not a plain folder name."""


def check_name(name: str) -> str:
    """``name`` if it is a run name: folder names (``a`` or ``group/a``) of letters, digits and ``._+-``, none
    starting with a dot; else a :class:`PathError` that says why."""
    if not name or not name.strip():
        raise PathError("a run name is needed: a folder name inside the runs directory")
    if Path(name).is_absolute() or name.startswith("~"):
        raise PathError(f"{name!r} is an absolute path: name a folder inside the runs directory instead")
    parts = name.split("/")
    if any(p in (".", "..") for p in parts):
        raise PathError(f"{name!r} is not a run name: '.' and '..' are not allowed, only folders inside the runs "
                        f"directory")
    bad = next((p for p in parts if not PART.fullmatch(p)), None)
    if bad is not None:
        raise PathError(f"{name!r} is not a run name: {bad!r} must be letters, digits and . _ + - (not starting "
                        f"with a dot), at most 100 characters")
    return name


def inside(root: str | Path, path: str | Path) -> bool:
    """Whether ``path``, resolved (symlinks followed), lies strictly inside ``root`` (resolved)."""
    root, resolved = Path(root).resolve(), Path(path).resolve()
    return resolved != root and resolved.is_relative_to(root)


def confine(root: str | Path, name: str) -> Path:
    """``root/name`` for a run name (:func:`check_name`), refused when a symlink on the way leads out of ``root``."""
    path = Path(root).resolve() / check_name(name)
    if not inside(root, path):
        raise PathError(f"{name!r} leads out of the runs directory {Path(root).resolve()} (a symlink?): refused")
    return path


def relative(root: str | Path, typed: str) -> Path:
    """A folder typed as a path (absolute, or relative to ``root``) that must lie inside ``root``."""
    root = Path(root).resolve()
    path = Path(typed).expanduser()
    path = path if path.is_absolute() else root / path
    if not inside(root, path):
        raise PathError(f"{typed!r} is outside the runs directory {root}: the app opens only folders inside it")
    return path.resolve()
