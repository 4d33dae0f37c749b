"""The run directory: everything a run writes, and how to read it back.

    DIR/config.yaml                  the whole RunConfig (rebuilds the model, resumes training)
    DIR/run.json                     what the run found out: the data facts its model was built for
    DIR/metrics.jsonl                one JSON record per finished epoch, appended
    DIR/curves.png                   loss, reconstruction and KL per epoch
    DIR/checkpoints/last.safetensors model + optimizer + trainer state
    DIR/checkpoints/prev.safetensors the ``last`` before it, for when ``last`` is found damaged
    DIR/checkpoints/best.safetensors model weights at the best validation negative ELBO
    DIR/progress.json                the training step reached, rewritten about once a second while training
    DIR/eval.json                    written by ``vaelab eval``
    DIR/.vaelab.lock                 while a process trains into it (:mod:`vaelab.lock`)

Every file vaelab rewrites is replaced whole (:func:`vaelab.durable.write_atomic`); metrics.jsonl is only appended
to, and repaired by a resumed run (:meth:`RunDir.repair_metrics`).
"""
from __future__ import annotations

import json
import os
import shutil
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from . import lock
from .config import ConfigError, RunConfig, read_versioned
from .durable import append_line, fsync_dir, remove_stale_temps, warn, write_atomic
from .track import Tracker

__all__ = ["RunDir", "RunDirError", "write_atomic"]


class RunDirError(FileNotFoundError):
    """A path that is not (or no longer) a usable vaelab run directory."""


class RunDir:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.config = self.path / "config.yaml"
        self.info = self.path / "run.json"
        self.metrics = self.path / "metrics.jsonl"
        self.curves = self.path / "curves.png"
        self.eval = self.path / "eval.json"
        self.progress = self.path / "progress.json"
        self.checkpoints = self.path / "checkpoints"
        self.last = self.checkpoints / "last.safetensors"
        self.prev = self.checkpoints / "prev.safetensors"
        self.best = self.checkpoints / "best.safetensors"
        self.tracker = Tracker(self.path)  # epoch records beside metrics.jsonl: none, until the trainer sets its own
        self._v1_facts: dict[str, Any] | None = None  # the data facts a version-1 config.yaml held

    def load_config(self) -> RunConfig:
        if not self.config.exists():
            aside = self.asides()
            moved = f"; an interrupted --overwrite moved the run to {aside[-1]}, which the next `vaelab train` on " \
                    f"it puts back" if aside else ""
            raise RunDirError(f"{self.path} is not a vaelab run directory (no config.yaml){moved}")
        try:
            d, self._v1_facts = read_versioned(self.config, written=True)
            return RunConfig.from_dict(d)
        except ConfigError as e:
            raise RunDirError(f"{self.path} cannot be used: {e}") from None

    def facts(self) -> dict[str, Any]:
        """The data facts (:class:`vaelab.data.DataFacts` as a dict) the run's model was built for: from run.json,
        or from the config of a version-1 run directory."""
        try:
            facts = json.loads(self.info.read_text())["facts"]
            if not isinstance(facts, dict) or not isinstance(facts.get("shape"), list):
                raise ValueError("no data shape")
            return facts
        except FileNotFoundError:
            pass
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise RunDirError(f"{self.info} is damaged ({e}); `vaelab train --resume {self.path}` rewrites it") from None
        if self._v1_facts is None and self.config.exists():
            self.load_config()
        if self._v1_facts is None or self._v1_facts.get("shape") is None:
            raise RunDirError(f"{self.path} has no run.json yet: its training has not started")
        return self._v1_facts

    def checkpoint(self, which: str = "best"):
        """The ``best`` (falling back to ``last``) or ``last`` checkpoint file."""
        order = {"best": [self.best, self.last], "last": [self.last]}[which]
        for path in order:
            if path.exists():
                return path
        raise RunDirError(f"{self.path} has no checkpoint yet ({', '.join(p.name for p in order)} missing)")

    # ------------------------------------------------------------------------------------- writing
    @contextmanager
    def writing(self, enabled: bool = True) -> Iterator[None]:
        """Hold the run directory's lock (:mod:`vaelab.lock`) for the block, after finishing what a killed process
        left: an interrupted ``--overwrite`` is undone or completed, stale temporary files are removed; the same
        when the block fails. Nothing when not ``enabled`` (DDP ranks other than 0)."""
        with lock.locked(self.path, enabled):
            if enabled:
                self._recover()
            try:
                yield
            except BaseException:
                if enabled and self.asides():
                    self._recover()  # an --overwrite that failed before its new run began: the old run comes back
                raise

    def _recover(self) -> None:
        asides = self.asides()
        if asides and not self.config.exists():  # killed before the new run began: the old run comes back
            *older, newest = asides
            self._restore(newest)
            asides = older
        for aside in asides:
            shutil.rmtree(aside)
        removed = remove_stale_temps([self.path, self.checkpoints])
        if removed:
            size = sum(n for _, n in removed) / 1e6
            names = ", ".join(p.name for p, _ in removed[:3]) + (" ..." if len(removed) > 3 else "")
            warn(f"removed {len(removed)} temporary file(s) ({size:.1f} MB) that killed writers left in {self.path}: "
                 f"{names}")

    def asides(self) -> list[Path]:
        """Old runs that ``--overwrite`` moved aside and has not deleted yet (a kill came in between)."""
        return sorted(self.path.parent.glob(f".{self.path.name}.overwritten-*"), key=lambda p: p.stat().st_mtime)

    def _restore(self, aside: Path) -> None:
        entries = [e for e in aside.iterdir() if e.name != lock.LOCK_NAME and not (self.path / e.name).exists()]
        for entry in sorted(entries, key=lambda e: e.name == self.config.name):  # config.yaml last: then it is whole
            os.replace(entry, self.path / entry.name)
        fsync_dir(self.path)
        shutil.rmtree(aside)
        warn(f"put back the run in {self.path}: an --overwrite was killed before the new run began")

    def clear(self) -> None:
        """``--overwrite``: nothing of the old run stays. Called holding the lock (:meth:`writing`). The old run is
        moved aside in one rename and deleted once the new run has written its config (:meth:`prepare`), so a kill
        leaves the old run or the new one, never a mix."""
        if not any(e.name != lock.LOCK_NAME for e in self.path.iterdir()):
            return
        user = lock.in_use(self.path / "prior")
        if user is not None:
            raise lock.LockError(f"{self.path / 'prior'} is in use by {lock.describe(user)}; --overwrite would "
                                 f"delete it: wait for it to finish, or stop it")
        aside = self.path.parent / f".{self.path.name}.overwritten-{os.getpid()}"
        os.rename(self.path, aside)
        fsync_dir(self.path.parent)
        lock.renamed(self.path, aside)

    def prepare(self, cfg: RunConfig, facts: dict[str, Any]) -> None:
        """Write the config and the data facts; delete an old run that ``--overwrite`` moved aside."""
        self.path.mkdir(parents=True, exist_ok=True)
        write_atomic(self.info, json.dumps({"facts": facts}, indent=2))
        write_atomic(self.config, cfg.to_yaml())
        for aside in self.asides():
            shutil.rmtree(aside)
        if not self.metrics.exists():
            write_atomic(self.metrics, "")

    # ------------------------------------------------------------------------------------- metrics
    def read_records(self) -> tuple[list[dict], list[str]]:
        """(the epoch records of metrics.jsonl, what is wrong with each line that is not one)."""
        try:
            lines = self.metrics.read_bytes().split(b"\n")
        except FileNotFoundError:
            return [], []
        except OSError as e:
            return [], [f"{self.metrics} cannot be read: {e.strerror}"]
        records, bad = [], []
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                if not (isinstance(record, dict) and isinstance(record.get("epoch"), int)
                        and isinstance(record.get("step"), int)):
                    raise ValueError("not an epoch record")
            except (ValueError, UnicodeDecodeError) as e:
                torn = " (torn: the last line, cut by a kill)" if number == len(lines) else ""
                bad.append(f"line {number}{torn}: {e}")
                continue
            records.append(record)
        return records, bad

    def records(self) -> list[dict]:
        """The epoch records; lines that are not records (a torn last line) are skipped with a warning."""
        records, bad = self.read_records()
        if bad:
            warn(f"{self.metrics}: skipped {'; '.join(bad)}; `vaelab train --resume {self.path}` repairs it")
        return records

    def repair_metrics(self, step: int, record: dict | None) -> None:
        """Make metrics.jsonl hold exactly the records of the epochs that the checkpoint at ``step`` finished:
        lines that are not records and records from after ``step`` go; the checkpoint's own last record
        ``record`` comes back if the file lost it. Rewritten whole, and only when something changes."""
        records, bad = self.read_records()
        keep = [r for r in records if r["step"] <= step]
        restored = record is not None and not any(r["epoch"] == record["epoch"] for r in keep)
        if restored:
            keep.append(record)
        if keep == records and not bad:
            return
        write_atomic(self.metrics, "".join(json.dumps(r) + "\n" for r in keep))
        if bad or restored:
            fixed = [f"dropped {'; '.join(bad)}"] if bad else []
            fixed += [f"wrote back epoch {record['epoch']}'s record from the checkpoint"] if restored else []
            warn(f"repaired {self.metrics}: {', and '.join(fixed)}")

    def log(self, record: dict) -> None:
        """Append an epoch record to metrics.jsonl, and to the run's tracker (:mod:`vaelab.track`)."""
        append_line(self.metrics, json.dumps(record))
        self.tracker.log(record)

    def write_progress(self, progress: dict) -> None:
        """Replace progress.json atomically, so a reader (the app) never sees half a file; not flushed to disk (it is
        rewritten every second for watchers; a machine crash leaves an older one, and the next write replaces it)."""
        write_atomic(self.progress, json.dumps(progress), sync=False)

    def read_progress(self) -> dict | None:
        try:
            progress = json.loads(self.progress.read_text())
        except (OSError, ValueError):
            return None
        return progress if isinstance(progress, dict) else None

    def plot(self) -> None:
        from .viz.plots import curves_figure, save_figure

        fig = curves_figure(self.records())
        if fig is not None:
            save_figure(fig, self.curves)
