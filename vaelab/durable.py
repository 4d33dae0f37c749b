"""Files that survive a kill at any moment: replaced whole or not at all, appended a line at a time, and the leftovers
of killed writers recognised and removed.

A file is replaced by writing a temporary file beside it (``.NAME.PID.XXXXXX.tmp``, in the same folder, so the
rename cannot cross filesystems), flushing it to disk, renaming it over ``NAME`` (atomic on POSIX) and flushing the
folder, so that the rename itself is on disk. A reader sees the old file or the new one, never a part. The PID in
the temporary name tells a later start whether its writer is gone (:func:`remove_stale_temps`).
"""
from __future__ import annotations

import os
import re
import secrets
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

TEMP_NAMES = (re.compile(r"^\..+\.(\d+)\.[0-9a-f]{6}\.tmp$"),  # .NAME.PID.XXXXXX.tmp
              re.compile(r"^\..+\.(\d+)\.tmp$"))  # vaelab 0.1.0's .NAME.PID.tmp


class VaelabWarning(UserWarning):
    """Something in a run directory was found damaged or left behind, and was dealt with; the message says how."""


def warn(message: str) -> None:
    warnings.warn(message, VaelabWarning, stacklevel=3)


def temp_path(path: Path) -> Path:
    """A fresh temporary name beside ``path`` that carries this process's PID."""
    return path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(3)}.tmp")


def fsync_dir(folder: Path) -> None:
    """Flush a folder's entries (a rename, a new file) to disk."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    except OSError:  # some filesystems do not sync folders; the rename is still atomic
        pass
    finally:
        os.close(fd)


def fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextmanager
def replacing(path: str | os.PathLike, sync: bool = True) -> Iterator[Path]:
    """``with replacing(path) as tmp:`` write the new content to ``tmp``; when the block ends without an error, ``tmp``
    is flushed to disk and renamed over ``path``. On any error ``path`` is untouched and ``tmp`` removed. Without
    ``sync``, nothing is flushed to disk: readers still see the old file or the new one, but a machine crash may
    leave either (for files rewritten often that only watchers read)."""
    path = Path(path)
    tmp = temp_path(path)
    try:
        yield tmp
        if sync:
            fsync_file(tmp)
        os.replace(tmp, path)
    except OSError as e:
        if e.filename == str(tmp):
            e.filename = str(path)  # the file being replaced, not its temporary name, in messages
        raise
    finally:
        tmp.unlink(missing_ok=True)  # gone after a successful rename
    if sync:
        fsync_dir(path.parent)


def write_atomic(path: str | os.PathLike, data: str | bytes, sync: bool = True) -> None:
    """Replace ``path`` with ``data`` (text as UTF-8), whole or not at all (flushed to disk unless not ``sync``:
    see :func:`replacing`)."""
    with replacing(path, sync) as tmp:  # which flushes tmp to disk when it syncs
        _write_all(tmp, data.encode() if isinstance(data, str) else data, os.O_CREAT | os.O_EXCL | os.O_WRONLY, False)


def append_line(path: str | os.PathLike, line: str) -> None:
    """Append ``line`` and a newline to ``path`` and flush it to disk. A kill can leave at most this one line torn,
    which readers of append-only files skip (see :meth:`vaelab.rundir.RunDir.records`)."""
    _write_all(Path(path), (line + "\n").encode(), os.O_CREAT | os.O_APPEND | os.O_WRONLY, True)


def _write_all(path: Path, data: bytes, flags: int, sync: bool) -> None:
    fd = os.open(path, flags, 0o644)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        if sync:
            os.fsync(fd)
    finally:
        os.close(fd)


def pid_alive(pid: int | None) -> bool:
    """Whether process ``pid`` runs on this machine (a zombie, exited but not yet reaped, does not)."""
    if not pid or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def stale_temps(folder: Path) -> list[Path]:
    """Temporary files in ``folder`` whose writer is gone: a PID that no longer runs, or a name without one
    (vaelab 0.1.0's checkpoints: ``last.safetensorsXXXXXXXX.tmp``)."""
    try:
        entries = list(folder.iterdir())
    except OSError:
        return []
    stale = []
    for path in entries:
        if not path.name.endswith(".tmp") or not path.is_file():
            continue
        match = next((m for m in (r.match(path.name) for r in TEMP_NAMES) if m), None)
        if match is None or not pid_alive(int(match.group(1))):
            stale.append(path)
    return stale


def remove_stale_temps(folders: list[Path]) -> list[tuple[Path, int]]:
    """Remove the stale temporary files of ``folders`` (see :func:`stale_temps`); the ones removed, with their sizes."""
    removed = []
    for folder in folders:
        for path in stale_temps(folder):
            try:
                size = path.stat().st_size
                path.unlink()
            except FileNotFoundError:
                continue
            removed.append((path, size))
    return removed
