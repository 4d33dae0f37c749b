"""Experiment tracking beside the run directory: TensorBoard, MLflow, or none (``train.track``).

A tracker gets the run's config once, each epoch's record, and files (pictures, ``eval.json``) as artifacts. The
run directory stays the record; a tracker is a view of it, for a dashboard or a team's tracking server.

- ``tensorboard``: the per-epoch scalars in ``DIR/tensorboard`` when TensorBoard is installed (else nothing).
- ``mlflow``: one MLflow run per vaelab run, its id kept in ``DIR/mlflow.json`` so that a resumed run, a later
  ``vaelab eval`` or ``vaelab sample`` log into the same one. The store: ``train.tracking_uri``, else
  ``$MLFLOW_TRACKING_URI``, else a SQLite file beside the run directory (``RUNS/mlflow.db``, artifacts in
  ``RUNS/mlartifacts``). The experiment: ``$MLFLOW_EXPERIMENT_NAME``, else ``vaelab``.
- ``none``: nothing beyond the run directory.
"""
from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path
from typing import Any

from .durable import write_atomic
from .registry import Registry

TRACKERS: Registry[type["Tracker"]] = Registry("tracker")
MLFLOW_FILE = "mlflow.json"  # in the run directory: {"tracking_uri", "run_id"}


class TrackingError(RuntimeError):
    """A tracker that cannot start (its package missing, its server unreachable): one line."""


class Tracker:
    """Does nothing: ``train.track=none``, and the base of the others."""

    def __init__(self, path: Path, uri: str | None = None):
        self.path = path

    def start(self, config: dict[str, Any]) -> None:
        """Training (re)starts with this config (nested dicts, as config.yaml holds it)."""

    def log(self, record: dict[str, Any]) -> None:
        """One finished epoch's record (``step`` and ``epoch`` among its keys)."""

    def artifact(self, file: Path) -> None:
        """A file the run wrote (a picture, eval.json)."""

    def close(self, finished: bool = True) -> None:
        """Training ended (``finished``: it reached its last step or stopped early, not on an error or a signal)."""


TRACKERS.register("none")(Tracker)


@TRACKERS.register("tensorboard")
class TensorBoard(Tracker):
    """The per-epoch scalars in ``DIR/tensorboard``, when TensorBoard is installed (else nothing)."""

    def __init__(self, path: Path, uri: str | None = None):
        super().__init__(path)
        self._writer = None  # a SummaryWriter once used; False when tensorboard is not installed

    def log(self, record: dict[str, Any]) -> None:
        if self._writer is None:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:
                self._writer = False
            else:
                self._writer = SummaryWriter(str(self.path / "tensorboard"))
        if self._writer:
            for key, value in record.items():
                if key not in ("epoch", "step"):
                    self._writer.add_scalar(key, value, record["step"])
            self._writer.flush()

    def close(self, finished: bool = True) -> None:
        if self._writer:
            self._writer.close()
        self._writer = None


def flatten(d: dict[str, Any], prefix: str = "") -> dict[str, str]:
    """{"train": {"lr": 0.001}} -> {"train.lr": "0.001"}: a nested config as MLflow parameters."""
    out = {}
    for key, value in d.items():
        if isinstance(value, dict):
            out |= flatten(value, f"{prefix}{key}.")
        else:
            out[f"{prefix}{key}"] = json.dumps(value) if isinstance(value, (list, tuple)) else str(value)
    return out


@TRACKERS.register("mlflow")
class MLflow(Tracker):
    """One MLflow run per vaelab run: the whole config as parameters, each epoch's record as metrics at its step,
    pictures and eval.json as artifacts."""

    BATCH = 100  # parameters per log_batch request: MLflow's limit

    def __init__(self, path: Path, uri: str | None = None):
        super().__init__(path)
        try:
            from mlflow.tracking import MlflowClient
        except ImportError:
            raise TrackingError("train.track=mlflow needs MLflow: pip install 'vaelab[mlflow]'") from None
        logging.getLogger("mlflow").setLevel(logging.WARNING)  # its notes on creating a database's tables
        saved = self._saved()
        self.uri = uri or (saved or {}).get("tracking_uri") or os.environ.get("MLFLOW_TRACKING_URI") or \
            f"sqlite:///{path.resolve().parent / 'mlflow.db'}"
        self.client = MlflowClient(self.uri)
        self.run_id = saved["run_id"] if saved and saved.get("tracking_uri") == self.uri else None

    def _saved(self) -> dict | None:
        try:
            return json.loads((self.path / MLFLOW_FILE).read_text())
        except (OSError, ValueError):
            return None

    def _experiment(self) -> str:
        name = os.environ.get("MLFLOW_EXPERIMENT_NAME", "vaelab")
        found = self.client.get_experiment_by_name(name)
        if found is not None:
            return found.experiment_id
        where = None if not self.uri.startswith("sqlite:///") else \
            (Path(self.uri.removeprefix("sqlite:///")).parent / "mlartifacts").as_uri()
        return self.client.create_experiment(name, artifact_location=where)

    def start(self, config: dict[str, Any]) -> None:
        from mlflow.entities import Param, RunStatus

        if self.run_id is not None:  # a resumed run: the same MLflow run, its parameters already logged
            self.client.update_run(self.run_id, RunStatus.to_string(RunStatus.RUNNING))
            return
        run = self.client.create_run(self._experiment(), run_name=self.path.resolve().name,
                                     tags={"vaelab.run_dir": str(self.path.resolve())})
        self.run_id = run.info.run_id
        params = [Param(k, v) for k, v in flatten(config).items()]
        for i in range(0, len(params), self.BATCH):
            self.client.log_batch(self.run_id, params=params[i:i + self.BATCH])
        write_atomic(self.path / MLFLOW_FILE, json.dumps({"tracking_uri": self.uri, "run_id": self.run_id}))

    def log(self, record: dict[str, Any]) -> None:
        from mlflow.entities import Metric

        if self.run_id is None:
            return
        now = int(time.time() * 1000)
        metrics = [Metric(k, float(v), now, int(record["step"]))
                   for k, v in record.items() if k not in ("epoch", "step") and isinstance(v, (int, float))]
        self.client.log_batch(self.run_id, metrics=metrics)

    def artifact(self, file: Path) -> None:
        if self.run_id is not None:
            self.client.log_artifact(self.run_id, str(file))

    def close(self, finished: bool = True) -> None:
        from mlflow.entities import RunStatus

        if self.run_id is not None:
            self.client.set_terminated(self.run_id, RunStatus.to_string(
                RunStatus.FINISHED if finished else RunStatus.KILLED))


def tracker(name: str, path: str | Path, uri: str | None = None) -> Tracker:
    """Tracker ``name`` (``train.track``) for run directory ``path``."""
    return TRACKERS.get(name)(Path(path), uri)


def attached(path: str | Path) -> Tracker:
    """The tracker a finished run logs its later files to: its MLflow run when it has one, else none."""
    path = Path(path)
    if not (path / MLFLOW_FILE).exists():
        return Tracker(path)
    try:
        return MLflow(path)
    except TrackingError:
        return Tracker(path)
