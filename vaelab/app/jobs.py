"""Background jobs: a ``vaelab`` command run in a process of its own, so it outlives the page that started it.

A job of kind ``K`` (train, train-prior, disentangle, ...) for directory ``DIR`` keeps two files:

    DIR/jobs/K.json   {"state": "running" | "finished" | "failed" | "stopped", "pid", "argv", "returncode", ...}
    DIR/jobs/K.log    everything the command printed

The job process writes its own state (``python -m vaelab.app.jobs DIR K -- ARGV``), so any page, after any
reload, or a second browser, sees the same job; a job whose process vanished without a word (killed) reads
as ``stopped``.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from ..access import MAX_JOBS_ENV
from ..durable import pid_alive, write_atomic

_children: dict[Path, subprocess.Popen] = {}  # the jobs this process started, polled so none stays a zombie


class JobLimit(RuntimeError):
    """As many jobs as the app allows are running: a new one waits until one ends."""


@dataclass
class Job:
    path: Path  # DIR/jobs/K.json
    state: str  # running | finished | failed | stopped | none
    info: dict

    @property
    def log(self) -> Path:
        return self.path.with_suffix(".log")

    @property
    def running(self) -> bool:
        return self.state == "running"

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def job_file(directory: str | Path, kind: str) -> Path:
    return Path(directory) / "jobs" / f"{kind}.json"


def max_jobs() -> int:
    """How many jobs may run at once: $VAELAB_APP_MAX_JOBS, else half the cores (at least one)."""
    value = os.environ.get(MAX_JOBS_ENV, "")
    return int(value) if value.isdigit() and int(value) > 0 else max(1, (os.cpu_count() or 2) // 2)


def running(root: str | Path, depth: int = 4) -> list[Job]:
    """The jobs running in run directories under ``root`` (those the app started, in ``DIR/jobs/``)."""
    files = (f for level in range(depth) for f in Path(root).glob("*/" * level + "jobs/*.json"))
    return [job for job in (status(f.parent.parent, f.stem) for f in files) if job.running]


def start(directory: str | Path, kind: str, argv: list[str], root: str | Path | None = None) -> Job:
    """Run ``vaelab ARGV`` in the background as job ``kind`` of ``directory``; refuse while one is running there,
    and (given the runs directory ``root``) while :func:`max_jobs` jobs are running under it."""
    path = job_file(directory, kind)
    if status(directory, kind).running:
        raise JobLimit(f"a {kind} job is already running in {directory}")
    if root is not None and len(busy := running(root)) >= (limit := max_jobs()):
        raise JobLimit(f"{len(busy)} jobs are running, the most this app runs at once ({limit}; "
                       f"`vaelab app --max-jobs N` changes it): stop one or wait until one ends")
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, json.dumps({"state": "starting", "argv": argv, "started": time.time()}))
    with open(path.with_suffix(".log"), "w") as log:
        child = subprocess.Popen([sys.executable, "-m", "vaelab.app.jobs", str(directory), kind, "--", *argv],
                                 stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                 start_new_session=True,  # a Ctrl-C in the app's terminal leaves it running
                                 env={**os.environ, "PYTHONUNBUFFERED": "1"})
    _children[path] = child
    return Job(path, "running", {"pid": child.pid, "argv": argv})


def status(directory: str | Path, kind: str) -> Job:
    path = job_file(directory, kind)
    info = _read(path)
    state = info.get("state", "none")
    if state in ("starting", "running"):
        child = _children.get(path)
        if child.poll() is None if child is not None else pid_alive(info.get("pid")):
            state = "running"
        else:  # it has exited: its last word, if it had time to write one
            info = _read(path)
            state = info.get("state", "none")
            state = "stopped" if state in ("starting", "running") else state
    return Job(path, state, info)


def _read(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def stop(directory: str | Path, kind: str) -> None:
    """Ask a running job to stop: SIGTERM, on which training saves a checkpoint at the next step and exits."""
    job = status(directory, kind)
    child = _children.get(job.path)
    pid = job.info.get("pid") or (child.pid if child is not None else None)  # a job just started has no pid yet
    if job.running and pid:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass


def main(argv: list[str] | None = None) -> int:
    """``python -m vaelab.app.jobs DIR KIND -- ARGV``: run ``vaelab ARGV``, recording its state in the job file."""
    args = sys.argv[1:] if argv is None else argv
    directory, kind, sep, *command = args
    if sep != "--":
        raise SystemExit("usage: python -m vaelab.app.jobs DIR KIND -- VAELAB_ARGS...")
    from ..cli import main as vaelab

    path = job_file(directory, kind)
    info = {"pid": os.getpid(), "argv": command, "started": time.time()}
    write_atomic(path, json.dumps({**info, "state": "running"}))
    code = 1
    try:
        code = vaelab(command)
    finally:
        state = {0: "finished", 130: "stopped"}.get(code, "failed")
        write_atomic(path, json.dumps({**info, "state": state, "returncode": code, "ended": time.time()}))
    return code


if __name__ == "__main__":
    sys.exit(main())
