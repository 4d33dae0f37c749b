"""The run directory: everything a run writes, and how to read it back.

    DIR/config.yaml                  the whole RunConfig (rebuilds the model, resumes training)
    DIR/run.json                     what the run found out: the data facts its model was built for
    DIR/metrics.jsonl                one JSON record per epoch
    DIR/curves.png                   loss, reconstruction and KL per epoch
    DIR/checkpoints/last.safetensors model + optimizer + trainer state
    DIR/checkpoints/best.safetensors model weights at the best validation negative ELBO
    DIR/progress.json                the training step reached, rewritten about once a second while training
    DIR/eval.json                    written by ``vaelab eval``
"""
from __future__ import annotations

import json
import os
from pathlib import Path

from typing import Any

from .config import ConfigError, RunConfig, read_versioned


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
        self.last = self.path / "checkpoints" / "last.safetensors"
        self.best = self.path / "checkpoints" / "best.safetensors"
        self._tensorboard = None  # a SummaryWriter once used; False when tensorboard is not installed
        self._v1_facts: dict[str, Any] | None = None  # the data facts a version-1 config.yaml held

    def load_config(self) -> RunConfig:
        if not self.config.exists():
            raise RunDirError(f"{self.path} is not a vaelab run directory (no config.yaml)")
        try:
            d, self._v1_facts = read_versioned(self.config)
            return RunConfig.from_dict(d)
        except ConfigError as e:
            raise RunDirError(f"{self.path} was written by an incompatible vaelab: {e}") from None

    def facts(self) -> dict[str, Any]:
        """The data facts (:class:`vaelab.data.DataFacts` as a dict) the run's model was built for: from run.json,
        or from the config of a version-1 run directory."""
        try:
            return json.loads(self.info.read_text())["facts"]
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

    def prepare(self, cfg: RunConfig, facts: dict[str, Any], keep_until_step: int) -> None:
        """Write the config and the data facts; drop log records from after the checkpoint a resumed run starts
        from."""
        self.path.mkdir(parents=True, exist_ok=True)
        write_atomic(self.config, cfg.to_yaml())
        write_atomic(self.info, json.dumps({"facts": facts}, indent=2))
        records = [r for r in self.records() if r["step"] <= keep_until_step]
        self.metrics.write_text("".join(json.dumps(r) + "\n" for r in records))

    def records(self) -> list[dict]:
        if not self.metrics.exists():
            return []
        return [json.loads(line) for line in self.metrics.read_text().splitlines() if line.strip()]

    def log(self, record: dict) -> None:
        """Append an epoch record to metrics.jsonl, and to TensorBoard when it is installed."""
        with self.metrics.open("a") as f:
            f.write(json.dumps(record) + "\n")
        if self._tensorboard is None:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:
                self._tensorboard = False
            else:
                self._tensorboard = SummaryWriter(str(self.path / "tensorboard"))
        if self._tensorboard:
            for key, value in record.items():
                if key not in ("epoch", "step"):
                    self._tensorboard.add_scalar(key, value, record["step"])
            self._tensorboard.flush()

    def write_progress(self, progress: dict) -> None:
        """Replace progress.json atomically, so a reader (the app) never sees half a file."""
        write_atomic(self.progress, json.dumps(progress))

    def read_progress(self) -> dict | None:
        try:
            return json.loads(self.progress.read_text())
        except (OSError, ValueError):
            return None

    def plot(self) -> None:
        from .viz.plots import curves_figure, save_figure

        fig = curves_figure(self.records())
        if fig is not None:
            save_figure(fig, self.curves)


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` beside ``path``, then rename over it."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)
