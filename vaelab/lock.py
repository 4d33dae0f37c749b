"""One writer per run directory: the lock file ``DIR/.vaelab.lock``, locked with flock(2) by the process that trains
into ``DIR`` and holding its PID, host and command.

The kernel drops an flock when its process dies, however it dies, so a lock left by a killed process is free: the
next trainer takes it over, with a warning naming the process that left it. A second trainer while the first runs
gets a :class:`LockError` naming the first. Within one process the lock is re-entrant (the command line takes it
before it loads anything; the trainer takes it again for ``fit``). Under DDP only rank 0 takes it.
"""
from __future__ import annotations

import errno
import fcntl
import json
import os
import socket
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from .durable import fsync_dir, pid_alive, warn

LOCK_NAME = ".vaelab.lock"


class LockError(RuntimeError):
    """A run directory that another process is writing, or that cannot be locked (read-only, missing)."""


@dataclass
class _Held:
    fd: int
    count: int
    created: bool  # this process made the directory (removed on release while it holds nothing else)


_held: dict[Path, _Held] = {}


def lock_path(folder: str | os.PathLike) -> Path:
    return Path(folder) / LOCK_NAME


def holder(folder: str | os.PathLike) -> dict | None:
    """What the lock file of ``folder`` says (pid, host, command, since), if it has a readable one."""
    try:
        info = json.loads(lock_path(folder).read_text())
    except (OSError, ValueError):
        return None
    return info if isinstance(info, dict) else None


def describe(info: dict | None) -> str:
    if not info:
        return "another process"
    return f"process {info.get('pid')} on {info.get('host')} ({info.get('command', '?')})"


def in_use(folder: str | os.PathLike) -> dict | None:
    """The holder of ``folder``'s lock while some process holds it (by flock), else None."""
    path = lock_path(folder)
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return holder(folder) or {}
    finally:
        os.close(fd)
    return None


def acquire(folder: str | os.PathLike) -> None:
    """Lock ``folder`` (created if missing) for this process, or raise :class:`LockError` naming its holder."""
    folder = Path(folder)
    key = folder.resolve()
    if key in _held:
        _held[key].count += 1
        return
    created = not folder.exists()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd = _lock(folder)
    except OSError as e:
        hint = "; vaelab writes into it: give it write access, or choose another directory" if e.errno in (
            errno.EACCES, errno.EPERM, errno.EROFS) else ""
        raise LockError(f"cannot lock {folder} ({e.filename}: {e.strerror}){hint}") from None
    old = _read(fd)
    if old and old.get("pid") != os.getpid():
        alive = " (its PID now belongs to another process)" if pid_alive(old.get("pid")) else ""
        warn(f"took over the lock of {folder} from {describe(old)}, which stopped without releasing it{alive}")
    _write_info(fd)
    _held[key] = _Held(fd, 1, created)


def _write_info(fd: int) -> None:
    info = {"pid": os.getpid(), "host": socket.gethostname(), "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:3]]),
            "since": round(time.time(), 3)}
    os.ftruncate(fd, 0)
    os.pwrite(fd, json.dumps(info).encode(), 0)
    os.fsync(fd)


def _lock(folder: Path) -> int:
    """An open descriptor of ``folder``'s lock file, exclusively flocked."""
    path = lock_path(folder)
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            info = _read(fd)
            os.close(fd)
            raise LockError(f"{folder} is in use by {describe(info)}: one process at a time trains into a run "
                            f"directory; wait for it to finish, or stop it") from None
        try:
            same = os.fstat(fd).st_ino == os.stat(path).st_ino
        except FileNotFoundError:
            same = False
        if same:  # else the holder released (and removed) the file between our open and flock: lock the new one
            return fd
        os.close(fd)


def _read(fd: int) -> dict | None:
    try:
        info = json.loads(os.pread(fd, 4096, 0) or b"null")
    except ValueError:
        return None
    return info if isinstance(info, dict) else None


def release(folder: str | os.PathLike) -> None:
    key = Path(folder).resolve()
    held = _held.get(key)
    if held is None:
        return
    held.count -= 1
    if held.count:
        return
    del _held[key]
    try:
        lock_path(key).unlink(missing_ok=True)  # before closing: a waiter that opened the old file retries
        if held.created and not any(key.iterdir()):
            key.rmdir()  # a run that never began leaves no empty directory behind
        else:
            fsync_dir(key)
    except OSError:
        pass
    finally:
        os.close(held.fd)


def renamed(path: str | os.PathLike, to: str | os.PathLike) -> None:
    """The locked folder ``path`` was just renamed to ``to`` (its lock file, and this process's flock, went with it):
    lock a new empty folder at ``path`` in its place, held as often as the old one was, and let the old lock go."""
    key = Path(path).resolve()
    old = _held.pop(key)
    Path(path).mkdir()
    fd = _lock(Path(path))
    _write_info(fd)
    _held[key] = _Held(fd, old.count, old.created)
    os.close(old.fd)


@contextmanager
def locked(folder: str | os.PathLike, enabled: bool = True) -> Iterator[None]:
    """Hold ``folder``'s lock for the block (nothing when not ``enabled``: a DDP rank other than 0)."""
    if not enabled:
        yield
        return
    acquire(folder)
    try:
        yield
    finally:
        release(folder)
