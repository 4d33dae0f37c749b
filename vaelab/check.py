"""``vaelab check RUN``: read everything in a run directory (config, data facts, checkpoints with their checksums,
metrics, evaluations, jobs, the code prior) and say what is damaged and what to do. It changes nothing."""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from . import checkpoint, lock
from .checkpoint import CheckpointError
from .config import RunConfig
from .data import DataFacts
from .durable import stale_temps
from .models import build_model
from .rundir import RunDir, RunDirError


@dataclass
class Finding:
    level: str  # ok | note (nothing lost; vaelab deals with it) | damaged
    where: str  # the file, as a path under the run directory checked
    what: str
    todo: str = ""


def check_run(path: str | Path) -> list[Finding]:
    """What :class:`Finding` s the run directory ``path`` (and its code prior, ``path/prior``) gives."""
    run = RunDir(path)
    if not run.path.is_dir() and not run.asides():
        raise RunDirError(f"{run.path} is not a folder")
    if not run.config.exists() and not run.asides() and not run.last.exists() and not run.best.exists():
        raise RunDirError(f"{run.path} is not a vaelab run directory (no config.yaml, no checkpoints)")
    return _check(run, "")


def _check(run: RunDir, prefix: str) -> list[Finding]:
    out: list[Finding] = []
    name = lambda p: prefix + str(p.relative_to(run.path))  # noqa: E731
    resume = f"`vaelab train --resume {run.path}`" if not prefix else "`vaelab train-prior RUN --resume`"
    out += _leftovers(run, name, resume)
    if not run.config.exists() and run.asides():
        return out  # the old run is aside: the next `vaelab train` puts it back (a note of _leftovers)
    if not run.config.exists() and not any(p.exists() for p in (run.last, run.prev, run.best)):
        out.append(Finding("note", name(run.config), "missing: its training was stopped before it began",
                           "nothing is lost; training it again starts it"))
        return out
    cfg, facts = _config(run, name, out)
    last = _checkpoints(run, name, cfg, facts, resume, out)
    out += _metrics(run, name, last, resume)
    for file, todo in ((run.eval, f"run `vaelab eval {run.path}` again"),
                       (run.path / "disentanglement.json", f"run `vaelab disentangle {run.path}` again"),
                       (run.progress, "delete it: training writes it again"),
                       *((job, "delete it (the app then shows no job)") for job in sorted(run.path.glob("jobs/*.json")))):
        out += _json_file(file, name, todo)
    if (run.path / "prior").is_dir():
        out += _check(RunDir(run.path / "prior"), prefix + "prior/")
    return out


def _leftovers(run: RunDir, name, resume: str) -> list[Finding]:
    """The lock, an interrupted --overwrite, temporary files of killed writers."""
    out = []
    user = lock.in_use(run.path)
    if user is not None:
        out.append(Finding("note", name(lock.lock_path(run.path)), f"in use by {lock.describe(user)}",
                           "what it writes may change while this check reads"))
    elif lock.lock_path(run.path).exists():
        out.append(Finding("note", name(lock.lock_path(run.path)), f"left by {lock.describe(lock.holder(run.path))}, "
                           "which stopped without releasing it", "the next `vaelab train` takes it over"))
    for aside in run.asides():
        out.append(Finding("note", str(aside), "an --overwrite was killed before it finished",
                           "the next `vaelab train` on this directory puts the old run back, or deletes it if the "
                           "new run had begun"))
    stale = [p for folder in (run.path, run.checkpoints, run.path / "jobs") for p in stale_temps(folder)]
    if stale:
        size = sum(p.stat().st_size for p in stale if p.exists()) / 1e6
        out.append(Finding("note", ", ".join(name(p) for p in stale),
                           f"{len(stale)} temporary file(s) ({size:.1f} MB) left by killed writers",
                           f"{resume} removes them, or delete them"))
    return out


def _config(run: RunDir, name, out: list[Finding]) -> tuple[RunConfig | None, DataFacts | None]:
    cfg = facts = None
    if not run.config.exists():
        out.append(Finding("damaged", name(run.config), "missing", "without it the run cannot be resumed or loaded"))
    else:
        try:
            cfg = run.load_config()
            out.append(Finding("ok", name(run.config), f"version {cfg.version}, {cfg.model.name} on {cfg.data.name}"))
        except RunDirError as e:
            out.append(Finding("damaged", name(run.config), str(e), "restore it from a copy: it holds the settings "
                               "the run was trained with, which nothing else records"))
    try:
        facts = DataFacts.from_dict(run.facts())
        out.append(Finding("ok", name(run.info), f"data of shape {list(facts.shape)}"))
    except RunDirError as e:
        started = run.last.exists() or run.best.exists()
        level = "damaged" if started or run.info.exists() else "note"
        out.append(Finding(level, name(run.info), str(e).split(";")[0],
                           f"`vaelab train --resume {run.path}` writes it again" if level == "damaged" else ""))
    except (KeyError, TypeError, ValueError) as e:
        out.append(Finding("damaged", name(run.info), f"holds no usable data facts ({e})",
                           f"`vaelab train --resume {run.path}` writes it again"))
    return cfg, facts


def _checkpoints(run: RunDir, name, cfg, facts, resume: str, out: list[Finding]) -> dict | None:
    """Each checkpoint read, its checksum verified and its model weights fitted to the model its config builds; the
    metadata of ``last`` (None when it is missing or damaged)."""
    model = None
    if cfg is not None and facts is not None:
        try:
            model = build_model(cfg, facts)
        except Exception as e:  # noqa: BLE001 - any reason the config cannot build: reported, not raised
            out.append(Finding("damaged", name(run.config), f"does not build a model ({e})"))
    good: dict = {}
    problems: dict = {}
    for file in (run.last, run.prev, run.best):
        if not file.exists():
            continue
        try:
            tensors, meta = checkpoint.load(file)
            if file != run.best and not isinstance(meta.get("step"), int):
                raise CheckpointError(f"checkpoint {file} lacks the trainer's state (no step)")
            if model is not None:
                checkpoint.load_module(model, checkpoint.unprefixed("model", tensors), file, "model")
            good[file] = meta
        except CheckpointError as e:
            problems[file] = str(e)
    for file in (run.last, run.prev, run.best):
        if file in good:
            sums = "sha256 verified" if checkpoint.checksummed(file) else "written before checksums: not verifiable"
            out.append(Finding("ok", name(file), f"step {good[file].get('step')}, {sums}"))
        elif file in problems:
            if file == run.best:
                todo = "delete it: commands then load the last checkpoint, and training writes it again at the next " \
                       "better validation loss"
            elif file == run.prev:
                todo = "delete it: the next checkpoint writes it again"
            elif run.prev in good:
                todo = f"{resume} falls back to {name(run.prev)} (step {good[run.prev]['step']})"
            else:
                todo = "no good checkpoint is left to resume from; --checkpoint best still loads its weights, " \
                       "or `vaelab train --overwrite` starts the run again"
            out.append(Finding("damaged", name(file), problems[file], todo))
    return good.get(run.last) or good.get(run.prev)


def _metrics(run: RunDir, name, last: dict | None, resume: str) -> list[Finding]:
    if not run.metrics.exists():
        return []
    records, bad = run.read_records()
    out = [Finding("damaged", name(run.metrics), problem, f"{resume} repairs it") for problem in bad]
    epochs = [r["epoch"] for r in records]
    if epochs != list(range(1, len(epochs) + 1)):
        out.append(Finding("damaged", name(run.metrics), f"the epochs are {epochs}, not 1, 2, 3, ... once each",
                           "delete the lines of repeated epochs"))
    step = last.get("step") if last else 0
    beyond = [r["epoch"] for r in records if r["step"] > step]
    if beyond:
        out.append(Finding("note", name(run.metrics), f"records of epochs {beyond} are from after the last checkpoint "
                           f"(step {step}): a kill fell between the two", f"{resume} drops them and trains those "
                           "epochs again"))
    kept = (last or {}).get("record")
    if kept and not any(r["epoch"] == kept["epoch"] for r in records):
        out.append(Finding("damaged", name(run.metrics), f"lacks epoch {kept['epoch']}'s record",
                           f"{resume} writes it back from the checkpoint"))
    if not out:
        out.append(Finding("ok", name(run.metrics), f"{len(records)} epoch record(s)"))
    return out


def _json_file(file: Path, name, todo: str) -> list[Finding]:
    if not file.exists():
        return []
    try:
        value = json.loads(file.read_text())
        if not isinstance(value, dict):
            raise ValueError("not a JSON object")
    except (OSError, ValueError) as e:
        return [Finding("damaged", name(file), f"unreadable ({' '.join(str(e).split())})", todo)]
    return [Finding("ok", name(file), "readable")]
