"""``vaelab sweep``: a study of many runs as one command, searched and stored by Optuna.

Each trial is a point of the search space (:mod:`vaelab.studies.space`) trained once per seed, each seed a normal run
directory (``OUT/runs/KEY=VALUE_..._seed=S``: trained, then evaluated to its ``eval.json``); its value is the mean of
the objective over the seeds. A grid is searched with Optuna's GridSampler, ranges with TPE, so one mechanism serves
both; the study lives in Optuna's storage (a journal file ``OUT/optuna.journal`` by default, or an RDB URL), so
several processes (``--jobs``) or machines (the same command with the same ``--storage``) run one study.

A killed sweep continues where it stopped: finished trials are kept in the storage; a trial whose worker died (a
process of this machine no longer alive; under an RDB storage also a trial whose heartbeat stopped, from any machine)
is marked failed and asked again with the same values, so it trains in the same run directories and resumes from
their checkpoints (:meth:`vaelab.train.Trainer.resume`), to the same weights.
"""
from __future__ import annotations

import json
import os
import socket
import warnings
import zlib
from dataclasses import asdict, dataclass
from pathlib import Path

import optuna
import torch
from optuna.trial import TrialState

from ..api import evaluate_run
from ..config import ConfigError, RunConfig
from ..durable import pid_alive, write_atomic
from ..lock import LockError
from ..measures import MEASURES
from ..rundir import RunDir
from ..train import Trainer
from .space import Space, assignments

STUDY_NAME = "vaelab-sweep"
SPEC_FILE = "sweep.spec.json"  # what the sweep is: every process and machine that joins it must agree
JOURNAL_FILE = "optuna.journal"
RETRY_OF = "vaelab_retry_of"  # a queued trial's system attribute: the failed trial it runs again
HEARTBEAT_S, GRACE_S = 60, 180  # an RDB trial without a heartbeat for GRACE_S seconds is taken as dead


@dataclass
class SweepSpec:
    config: dict  # the base RunConfig, as a dict
    space: dict  # Space.to_dict()
    search: str = "grid"  # grid | optuna (TPE over ranges and grid values)
    trials: int | None = None  # optuna: finished trials to reach
    objective: str = "nelbo"  # an eval.json key, minimized or maximized as MEASURES says
    seeds: int = 1  # runs per trial, with train.seed, train.seed + 1, ...
    split: str = "val"  # where trials are evaluated: not the test split, which a search must not see
    disentangle: dict | None = None  # vaelab.api.disentangle_run's options, for factor datasets

    @property
    def space_(self) -> Space:
        return Space.from_dict(self.space)

    def base(self) -> RunConfig:
        return RunConfig.from_dict(self.config)

    def direction(self) -> str:
        m = MEASURES.get(self.objective)
        if m is None or m.better is None:
            raise ConfigError(f"--objective {self.objective}: not a score with a better direction; choose one of "
                              f"{', '.join(k for k, v in MEASURES.items() if v.better)}")
        return "minimize" if m.better == "lower" else "maximize"


def run_path(out: Path, params: dict, seed: int) -> Path:
    """The run directory of a trial's values and seed: the same values give the same directory, so a trial asked
    again after a kill resumes the runs it left."""
    name = "_".join(f"{k}={v}" for k, v in params.items()) or "base"
    return out / "runs" / f"{name}_seed={seed}"


def open_storage(out: Path, url: str | None):
    """The study's storage: an RDB URL (``sqlite:///sweep.db``, ``postgresql://user@host/db``), with heartbeats so a
    trial of a dead machine is retried; else a journal file (default ``OUT/optuna.journal``)."""
    if url is not None and "://" in url:
        return optuna.storages.RDBStorage(url, heartbeat_interval=HEARTBEAT_S, grace_period=GRACE_S)
    path = Path(url) if url is not None else out / JOURNAL_FILE
    return optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(path)))


def load_study(spec: SweepSpec, storage, worker: int = 0) -> optuna.Study:
    """The sweep's study, its sampler seeded by machine and ``worker``: parallel workers with one seed would draw
    the same first points."""
    space, seed = spec.space_, zlib.crc32(f"{socket.gethostname()}/{worker}".encode())
    if spec.search == "grid":
        sampler = optuna.samplers.GridSampler(space.grid, seed=seed)
    else:
        sampler = optuna.samplers.TPESampler(seed=seed)
    return optuna.create_study(study_name=STUDY_NAME, storage=storage, sampler=sampler,
                               direction=spec.direction(), load_if_exists=True)


def write_spec(out: Path, spec: SweepSpec) -> None:
    """Record the sweep in ``OUT/sweep.spec.json``; a sweep already there must be the same one."""
    path = out / SPEC_FILE
    if path.exists():
        old = json.loads(path.read_text())
        if old != json.loads(json.dumps(asdict(spec))):
            changed = sorted(k for k in old if old.get(k) != json.loads(json.dumps(asdict(spec))).get(k))
            raise ConfigError(f"{out} holds another sweep (its {', '.join(changed)} differ); continue it with the same "
                              f"options, or choose another --out")
        return
    out.mkdir(parents=True, exist_ok=True)
    write_atomic(path, json.dumps(asdict(spec), indent=2))


def read_spec(out: Path) -> SweepSpec:
    try:
        return SweepSpec(**json.loads((Path(out) / SPEC_FILE).read_text()))
    except FileNotFoundError:
        raise ConfigError(f"{out} holds no sweep (no {SPEC_FILE})") from None


# --------------------------------------------------------------------------------------------- trials
def train_run(cfg: RunConfig, path: Path) -> None:
    """Train ``cfg`` into run directory ``path``, or continue the run there from its last checkpoint."""
    run = RunDir(path)
    with run.writing():
        if run.config.exists():
            trainer = Trainer(run.load_config(), path)
            trainer.resume()
            if trainer.stopped_early or trainer.step >= trainer.total_steps:
                run.repair_metrics(trainer.step, trainer.last_record)
                return
        else:
            trainer = Trainer(cfg, path)
        trainer.fit()
    run.plot()


def run_trial(spec: SweepSpec, out: Path, params: dict) -> list[dict]:
    """Train and evaluate every seed of a trial's values; their eval.json figures."""
    base = spec.base().set(assignments(params))
    results = []
    for s in range(spec.seeds):
        seed = base.train.seed + s
        path = run_path(out, params, seed)
        train_run(base.set([f"train.seed={seed}", "train.progress=false"]).check(), path)
        result = evaluate_run(path, spec.split)
        if spec.objective not in result:
            raise ConfigError(f"--objective {spec.objective}: {spec.base().model.name} runs do not report it; "
                              f"they report {', '.join(result['metrics'])}")
        if spec.disentangle is not None:
            from ..api import disentangle_run
            disentangle_run(path, **spec.disentangle)
        results.append(result)
    return results


def objective(spec: SweepSpec, out: Path):
    def run(trial: optuna.Trial) -> float:
        trial.set_user_attr("worker", {"host": socket.gethostname(), "pid": os.getpid()})
        if spec.search != "grid" and surplus(spec, trial):
            raise optuna.TrialPruned(f"--trials {spec.trials} were started before this one")
        params = spec.space_.suggest(trial)
        try:
            results = run_trial(spec, out, params)
        except LockError as e:  # two workers drew the same grid point at once: the other one runs it
            raise optuna.TrialPruned(str(e)) from None
        value = sum(r[spec.objective] for r in results) / len(results)
        print(f"trial {trial.number}: {' '.join(assignments(params))}: {spec.objective} {value:.4f}", flush=True)
        return value
    return run


def surplus(spec: SweepSpec, trial: optuna.Trial) -> bool:
    """Whether ``--trials`` trials were started before this one (parallel workers that asked at once)."""
    started = trial.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.RUNNING))
    return sum(t.number < trial.number for t in started) >= spec.trials


def revive_dead_trials(study: optuna.Study, storage) -> list[int]:
    """Trials left RUNNING by a worker of this machine that is no longer alive (a killed sweep), or whose heartbeat
    stopped (an RDB storage: any machine), are marked failed; each failed trial not retried yet is queued again with
    its values and system attributes (as Optuna's heartbeat retry does: a grid trial keeps its grid point), so its
    runs resume. The numbers of the trials queued again."""
    host = socket.gethostname()
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        worker = t.user_attrs.get("worker")
        if worker and worker.get("host") == host and not pid_alive(worker.get("pid")):
            storage.set_trial_state_values(t._trial_id, TrialState.FAIL)
    with warnings.catch_warnings():  # "experimental" since Optuna 2.9
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)  # heartbeats: only an RDB storage has them
    trials = study.get_trials(deepcopy=False)
    retried = {t.system_attrs.get(RETRY_OF) for t in trials}
    again = [t for t in trials if t.state == TrialState.FAIL and t.number not in retried]
    for t in again:
        study.add_trial(optuna.create_trial(state=TrialState.WAITING, params=t.params, distributions=t.distributions,
                                            system_attrs={**t.system_attrs, RETRY_OF: t.number}))
    return [t.number for t in again]


def remaining(spec: SweepSpec, study: optuna.Study) -> int:
    """Trials still to start: grid points (or, searching, trials) that no finished, running or queued trial has."""
    counted = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING,
                                                       TrialState.WAITING))
    if spec.search == "grid":
        return spec.space_.size() - len({t.system_attrs.get("grid_id") for t in counted} - {None})
    return max(0, spec.trials - sum(t.state != TrialState.PRUNED for t in counted))


def work(spec: SweepSpec, out: Path, storage_url: str | None, worker: int = 0, threads: int | None = None) -> None:
    """Worker number ``worker`` of this machine: trials until the study has none left to start."""
    if threads:
        torch.set_num_threads(threads)
    optuna.logging.set_verbosity(optuna.logging.ERROR)  # a failed trial: vaelab says it in one line
    study = load_study(spec, open_storage(out, storage_url), worker)

    def stop_when_done(study: optuna.Study, trial) -> None:
        if remaining(spec, study) == 0:
            study.stop()

    if remaining(spec, study) > 0 or study.get_trials(deepcopy=False, states=(TrialState.WAITING,)):  # retries
        study.optimize(objective(spec, out), callbacks=[stop_when_done], catch=())


def sweep_values(out: str | Path, storage_url: str | None = None) -> list[dict]:
    """The finished trials of the sweep in ``out``: number, values (config key -> value), objective value, and the
    run directories of its seeds."""
    out = Path(out)
    spec = read_spec(out)
    study = load_study(spec, open_storage(out, storage_url))
    trials = {}
    for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        key = tuple(sorted(t.params.items()))
        trials.setdefault(key, t)  # a grid point finished twice (a race at the end of a parallel sweep): the first
    return [{"trial": t.number, "params": t.params, "value": t.value,
             "runs": [run_path(out, t.params, spec.base().train.seed + s) for s in range(spec.seeds)]}
            for t in sorted(trials.values(), key=lambda t: t.number)]

