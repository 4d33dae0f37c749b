"""The runs under the app's runs directory, as the pages list and open them (no Streamlit here)."""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from typing import TYPE_CHECKING

from ..lock import in_use
from ..rundir import RunDir, RunDirError
from . import jobs
from .paths import inside

if TYPE_CHECKING:  # the Runs page lists runs without importing the models (a fast first page)
    from ..data import DataFacts
    from ..models import Family


@dataclass
class RunInfo:
    name: str  # path relative to the runs directory
    run: RunDir
    model: str  # the config's model name ("" when the config is unreadable)
    dataset: str
    error: str | None  # why the run cannot be opened (missing, incompatible version)
    job: jobs.Job  # its training job, when the app started one

    @property
    def path(self) -> Path:
        return self.run.path

    @property
    def family(self) -> Family | None:
        """The model's family (None when the config is unreadable or names a model this vaelab lacks)."""
        from ..models import MODELS

        return MODELS.get(self.model).family if self.model in MODELS else None

    def can(self, view: str) -> bool:
        return self.family is not None and self.family.can(view)

    @property
    def facts(self) -> DataFacts:
        """The data facts its model was built for."""
        from ..models import run_facts

        return run_facts(self.run)

    @property
    def trained(self) -> bool:
        """It has weights to load."""
        return self.error is None and (self.run.best.exists() or self.run.last.exists())

    @property
    def state(self) -> str:
        if self.job.state != "none":
            return self.job.state
        if self.error:
            return "unreadable"
        if in_use(self.path) is not None:  # a `vaelab train` outside the app holds the run's lock
            return "training"
        progress = self.run.read_progress()
        if progress and progress["step"] < progress["total_steps"]:
            return "incomplete"
        return "trained" if self.trained else "empty"

    def eval(self) -> dict | None:
        return read_json(self.run.eval)

    def disentanglement(self) -> dict | None:
        return read_json(self.path / "disentanglement.json")


def read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def run_info(root: str | Path, path: str | Path) -> RunInfo:
    """What the app knows of one run directory; ``error`` says what is wrong with it, if anything."""
    run = RunDir(path)
    name = str(Path(path).relative_to(root)) if Path(path).is_relative_to(root) else str(path)
    if not inside(root, path):
        return RunInfo(name, run, "", "", f"{path} leads out of the runs directory {Path(root).resolve()} (a "
                                          f"symlink?): refused", jobs.Job(jobs.job_file(path, "train"), "none", {}))
    job = jobs.status(path, "train")
    if not run.path.is_dir():
        return RunInfo(name, run, "", "", f"{path} does not exist", job)
    try:
        cfg = run.load_config()
    except RunDirError as e:
        return RunInfo(name, run, "", "", str(e), job)
    return RunInfo(name, run, cfg.model.name, cfg.data.name, None, job)


def find_runs(root: str | Path, depth: int = 3) -> list[RunInfo]:
    """Run directories under ``root`` (those with a config.yaml or a training job), newest first; a code
    prior (``DIR/prior``) belongs to its VQ-VAE run and is not listed on its own."""
    root = Path(root)
    found = set()
    for pattern in ("config.yaml", "jobs/train.json"):
        for level in range(1, depth + 1):
            for f in root.glob("/".join(["*"] * level) + "/" + pattern):
                d = f.parent if pattern == "config.yaml" else f.parent.parent
                if not (d.parent / "config.yaml").exists():
                    found.add(d)
    infos = [run_info(root, d) for d in found]
    return sorted(infos, key=lambda r: _mtime(r.path), reverse=True)


def _mtime(path: Path) -> float:
    return max((p.stat().st_mtime for p in (path / "config.yaml", path / "jobs" / "train.json") if p.exists()),
               default=0.0)
