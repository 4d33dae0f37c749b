"""Running a sweep: the study opened (or joined), its dead and failed trials queued again, ``--jobs`` worker
processes on this machine until no trial is left, then the table and figures (:mod:`vaelab.studies.report`)."""
from __future__ import annotations

import multiprocessing
import os
import sys
from dataclasses import asdict
from pathlib import Path

import optuna

from ..config import ConfigError
from ..durable import warn
from .report import write_report
from .sweep import SweepSpec, load_study, open_storage, revive_dead_trials, work, write_spec


def _spawned_worker(spec: dict, out: str, storage_url: str | None, worker: int, threads: int) -> None:
    """A worker process of ``--jobs``: its error in one line, exit code 2 (the parent says the rest)."""
    try:
        work(SweepSpec(**spec), Path(out), storage_url, worker, threads)
    except Exception as e:  # noqa: BLE001 - a worker's error, shown as vaelab shows errors
        print(f"vaelab: error: worker {os.getpid()}: {' '.join(str(e).split())}", file=sys.stderr)
        sys.exit(2)


def run_sweep(spec: SweepSpec, out: str | Path, storage_url: str | None = None, jobs: int = 1) -> dict:
    """Run (or continue, or join) the sweep in ``out`` with ``jobs`` worker processes; then write its table and
    figures (:func:`vaelab.studies.report.write_report`) and return the report."""
    out = Path(out)
    spec.direction()
    optuna.logging.set_verbosity(optuna.logging.ERROR)  # a failed trial: vaelab says it in one line
    write_spec(out, spec)
    storage = open_storage(out, storage_url)
    study = load_study(spec, storage)
    revived = revive_dead_trials(study, storage)
    if revived:
        warn(f"trial(s) {', '.join(map(str, revived))} of {out} failed or were interrupted; they run again with the "
             f"same values, resuming their runs from the last checkpoints")
    if jobs == 1:
        work(spec, out, storage_url)
    else:
        threads = max(1, (os.cpu_count() or 1) // jobs)
        ctx = multiprocessing.get_context("spawn")
        procs = [ctx.Process(target=_spawned_worker, args=(asdict(spec), str(out), storage_url, i, threads))
                 for i in range(jobs)]
        for p in procs:
            p.start()
        for p in procs:
            p.join()
        failed = [p.exitcode for p in procs if p.exitcode]
        if failed:
            raise ConfigError(f"{len(failed)} of {jobs} sweep workers failed (exit codes {failed}); the study in "
                              f"{out} keeps what finished: run the same command again to continue")
    return write_report(out, storage_url)
