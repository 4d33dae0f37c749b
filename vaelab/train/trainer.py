"""One trainer for every model: Adam, step-indexed schedules, validation and early stopping,
checkpoints that resume to the same weights, and DDP under torchrun.

Training is a pure function of the config: the example order of epoch e comes from
(seed, e), and the noise of step s from (seed, s) (see :mod:`vaelab.noise`), so a run
resumed from any checkpoint, or spread over several ranks, takes the same steps.
"""
from __future__ import annotations

import math
import signal
import sys
import threading
import time
from contextlib import nullcontext
from pathlib import Path

import torch
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm

from .. import checkpoint, device, noise, track
from ..checkpoint import CheckpointError
from ..config import ConfigError, RunConfig
from ..data import Dataset, binarize, check_finite, load_dataset
from ..data.semi import semi_supervised
from ..data.base import as_float, keep_classes
from ..data.perturb import perturb
from ..durable import warn
from ..eval import evaluate
from ..eval.bpd import check_data
from ..models import build_model
from ..objectives import OBJECTIVES, check_run
from ..rundir import RunDir, RunDirError
from . import distributed
from .collapse import WARN_AFTER_EPOCHS, collapse, collapsed_dims

SCHEDULE_KEYS = ("beta", "capacity")  # logged as their last value; every other log is averaged over the epoch


class NonFiniteLoss(RuntimeError):
    """The loss became NaN or infinite; the last good checkpoint is kept."""


class Stopped(KeyboardInterrupt):
    """Training stopped on Ctrl-C or SIGTERM, after saving a checkpoint at ``step``."""

    def __init__(self, step: int):
        super().__init__(f"stopped by a signal at step {step}")
        self.step = step


def load_run_data(cfg: RunConfig, evaluation: bool = False) -> Dataset:
    """The run's dataset with its fixed binarization applied (for training with ``data.labels``, most training labels
    hidden: :func:`~vaelab.data.semi.semi_supervised`; evaluation sees them all). ``evaluation``: every split binarized as the run was
    trained, the train split of a dynamically binarized run by one fixed draw (for training it stays grey, drawn
    afresh at each step)."""
    d = cfg.data
    options = {k: v for k, v in (("size", d.image_size), ("crop", d.crop), ("channels", d.channels),
                                 ("train_size", d.train_size), ("test_size", d.test_size),
                                 ("attributes", d.attributes)) if v is not None}
    data = load_dataset(d.name, d.data_dir, val_size=d.val_size, seed=d.seed, **options)
    if d.limit is not None:
        data = data.head(d.limit)
    if d.labels is not None and not evaluation:  # semi-supervised training: most labels hidden (y = -1)
        data.train = semi_supervised(data.train, d.labels, data.num_classes, d.seed)
    data = binarize.prepare(data, cfg.data.binarize, cfg.data.seed, evaluation)
    return data if d.classes is None else keep_classes(data, d.classes)  # an image's draw is the same either way


class _StopRequests:
    """Ctrl-C or SIGTERM (a preempted job) while training: noted, and acted on at the next step boundary
    (all ranks at the same one), where the trainer saves a consistent checkpoint before it stops."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self):
        self.signal = 0
        self._old = {}

    def install(self) -> None:
        self.signal = 0
        if threading.current_thread() is threading.main_thread():
            self._old = {s: signal.signal(s, self._note) for s in self.SIGNALS}

    def _note(self, signum, frame) -> None:
        self.signal = signum

    def restore(self) -> None:
        for s, handler in self._old.items():
            signal.signal(s, handler)
        self._old = {}


def epoch_line(r: dict, epochs: int) -> str:
    best = " (best)" if r["val/loss"] == r["val/best_loss"] else ""
    shown = ("val/recon", "val/sse", "val/kl", "val/mmd", "val/active_units", "val/class_error", "val/perplexity",
             "val/codes_used", *SCHEDULE_KEYS)
    extra = "".join(f"  {k.removeprefix('val/')} {r[k]:.4g}" for k in shown if k in r)
    return f"epoch {r['epoch']}/{epochs}  train loss {r['train/loss']:.2f}  val loss {r['val/loss']:.2f}{best}{extra}"


class Trainer:
    """Trains ``cfg``'s model on ``data`` (default: the config's dataset) into run directory ``out`` (or nowhere);
    with ``replace``, a run that ``out`` already holds is replaced whole when training begins (``--overwrite``).

    Each step first steps the objective's players (:class:`~vaelab.objectives.Player`: networks with optimizers
    of their own), then the model on the objective's loss."""

    def __init__(self, cfg: RunConfig, out: str | Path | None = None, data: Dataset | None = None,
                 replace: bool = False):
        check_run(cfg)
        t = cfg.train
        self.dist, self.device = distributed.setup(str(device.resolve(t.device, "train.device")))
        if data is not None:
            check_finite(data)
        self.data = data if data is not None else load_run_data(cfg)
        self.facts = self.data.facts
        self.cfg = cfg
        self.run = RunDir(out) if out is not None else None
        self.replace = replace
        if not replace:
            self._check_facts()

        torch.manual_seed(t.seed)  # weight initialization
        self.model = build_model(cfg, self.facts).to(self.device)
        # Conv models on a GPU take NHWC tensors (tensor cores' layout); CPU runs keep NCHW, as measured there.
        self.channels_last = self.device.type == "cuda" and len(self.facts.shape) == 3
        if self.channels_last:
            self.model.to(memory_format=torch.channels_last)
        self._check_likelihood()
        self.net = DistributedDataParallel(self.model) if self.dist.enabled else self.model
        if t.compile:
            self.net = torch.compile(self.net)
        self.dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(t.precision)  # None: float32
        self.scaler = torch.amp.GradScaler(self.device.type) if t.precision == "fp16" else None
        self.opt = torch.optim.Adam(self.model.parameters(), lr=t.lr, betas=(t.adam_beta1, 0.999),
                                    weight_decay=t.weight_decay,
                                    fused=self.device.type in ("cpu", "cuda"))

        n, b = len(self.data.train), t.batch_size
        if b % self.dist.world_size:
            raise ConfigError(f"train.batch_size {b} is not divisible by the {self.dist.world_size} ranks")
        if n < b:
            raise ConfigError(f"train.batch_size {b} is larger than the training set ({n} examples)")
        self.steps_per_epoch = n // b  # the last partial batch of each epoch is dropped
        self.total_steps = t.steps if t.steps is not None else t.epochs * self.steps_per_epoch
        self.objective = OBJECTIVES.get(cfg.objective.name)(cfg, self.facts, self.total_steps).to(self.device)
        self.players = self.objective.players()
        self.binary_train = self.data.binary or cfg.data.binarize == "static"  # what a perturbed pixel becomes
        self.train_y = self.data.train.y.to(self.device) if self.model.conditional else None

        self.step = 0
        self.last_record: dict | None = None  # the last finished epoch's record, carried by checkpoints
        self._last_good = True  # checkpoints/last holds a good checkpoint, to keep as prev at the next save
        self.best = math.inf
        self.bad_epochs = 0
        self.stopped_early = False
        self.stop_requests = _StopRequests()
        self.stopping = False  # a stop request that all ranks agreed on at the last step
        self.sums = self._zero_sums()
        self._t0 = self._progress_t = time.perf_counter()

    # --------------------------------------------------------------------------------- state
    def _check_facts(self) -> None:
        """A resumed run's data must be what its model was built for."""
        if self.run is None or not self.run.config.exists():
            return
        try:
            recorded = self.run.facts()
        except RunDirError:
            return  # a run stopped before its first step
        now = self.facts.to_dict()
        keys = [k for k in ("shape", "num_classes") if k in recorded]  # a version-1 run may not know its classes
        if any(recorded[k] != now[k] for k in keys):
            raise ConfigError(f"{self.run.path} was trained on data of shape {recorded.get('shape')} with "
                              f"{recorded.get('num_classes')} classes; its dataset now gives shape {now['shape']} with "
                              f"{now['num_classes']} classes (a changed data option or data directory?)")

    def _check_likelihood(self) -> None:
        """Binarization is for likelihoods of binary pixels, and an 8-bit likelihood takes 8-bit images only."""
        likelihood = getattr(self.model, "likelihood", None)
        if likelihood is None:
            return
        mode = self.cfg.data.binarize
        if mode != "none" and not likelihood.binary and not self.data.binary:
            raise ConfigError(f"data.binarize={mode} draws binary pixels for a Bernoulli likelihood; "
                              f"model.likelihood={self.cfg.model.likelihood} models grey values: set data.binarize=none")
        check_data(self.model, self.data.train.pixels, f"the {self.cfg.data.name} training images")

    @staticmethod
    def _zero_sums() -> dict[str, list[float]]:
        return {}  # log name -> [sum over examples, examples]

    def _optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"model": self.opt, **{p.name: p.optimizer for p in self.players}}

    def _state(self) -> tuple[dict[str, torch.Tensor], dict]:
        tensors = {**checkpoint.prefixed("model", self.model.state_dict()),
                   **checkpoint.prefixed("objective", self.objective.state_dict()),
                   "trainer.rng_cpu": torch.get_rng_state()}
        groups = {}
        for name, opt in self._optimizers().items():
            opt_tensors, groups[name] = checkpoint.optimizer_state(opt)
            tensors |= checkpoint.prefixed(f"optim.{name}", opt_tensors)
        meta = {"step": self.step, "epoch": self.step // self.steps_per_epoch, "best": self.best, "sums": self.sums,
                "bad_epochs": self.bad_epochs, "stopped_early": self.stopped_early, "optim_groups": groups,
                "record": self.last_record}
        if self.scaler is not None:
            meta["grad_scaler"] = self.scaler.state_dict()
        return tensors, meta

    def load_state(self, path: str | Path) -> None:
        tensors, meta = checkpoint.load(path)
        checkpoint.load_module(self.model, checkpoint.unprefixed("model", tensors), path, "model")
        checkpoint.load_module(self.objective, checkpoint.unprefixed("objective", tensors), path, "objective")
        try:
            for name, opt in self._optimizers().items():
                checkpoint.load_optimizer_state(opt, checkpoint.unprefixed(f"optim.{name}", tensors),
                                                meta["optim_groups"][name])
            torch.set_rng_state(tensors["trainer.rng_cpu"])
            self.sums, self.step, self.best = meta["sums"], int(meta["step"]), float(meta["best"])
            self.bad_epochs, self.stopped_early = int(meta["bad_epochs"]), bool(meta["stopped_early"])
            if self.scaler is not None and "grad_scaler" in meta:
                self.scaler.load_state_dict(meta["grad_scaler"])
        except (KeyError, ValueError, TypeError, RuntimeError) as e:
            raise CheckpointError(f"checkpoint {path} lacks the trainer's state or holds a damaged one "
                                  f"({type(e).__name__}: {' '.join(str(e).split())}); it is not a resumable "
                                  f"`last` checkpoint") from None
        self.last_record = meta.get("record")

    def resume(self) -> Path | None:
        """Load the run's ``last`` checkpoint or, when it is damaged or missing, the one before it (``prev``), with a
        warning; the checkpoint loaded, or None when the run has none yet (it starts again at step 0)."""
        run, problems = self.run, []
        for path in (run.last, run.prev):
            if not path.exists():
                continue
            try:
                self.load_state(path)
            except CheckpointError as e:
                problems.append(str(e))
                continue
            if path != run.last:
                self._last_good = False  # the next save must not keep the damaged last as prev
                why = "; ".join(problems) or f"{run.last} is missing"
                warn(f"{why}; resuming from {path}, the checkpoint before it (step {self.step}), instead")
            return path
        if problems:
            raise CheckpointError(f"{'; and '.join(problems)}; no good checkpoint is left to resume from: "
                                  f"`vaelab check {run.path}` says more, or start again with --overwrite")
        return None

    def _save(self, which: str) -> None:
        if self.run is None or not self.dist.is_main:
            return
        if which == "last":
            checkpoint.save(self.run.last, *self._state(), keep=self.run.prev if self._last_good else None)
            self._last_good = True
        else:
            meta = {"step": self.step, "epoch": self.step // self.steps_per_epoch, "val_loss": self.best}
            checkpoint.save(self.run.best, checkpoint.prefixed("model", self.model.state_dict()), meta)

    def _disk_error(self, e: OSError) -> RunDirError:
        """A failed write (a full disk, a read-only directory), saying which checkpoint is kept."""
        try:
            kept = f"{self.run.last} (step {checkpoint.load(self.run.last)[1]['step']}) is kept"
        except (CheckpointError, KeyError):
            kept = "no checkpoint was written yet"
        return RunDirError(f"cannot write {e.filename or self.run.path} ({e.strerror}); training stopped at step "
                           f"{self.step}, and the last checkpoint, {kept}")

    # ------------------------------------------------------------------------------ training
    def _order(self, epoch: int) -> torch.Tensor:
        g = torch.Generator().manual_seed(noise.mix_seed(self.cfg.train.seed, -1 - epoch))
        return torch.randperm(len(self.data.train), generator=g).to(self.device)

    def _train_step(self, batch: torch.Tensor) -> dict:
        b = len(batch)
        lo, hi = self.dist.rank * b // self.dist.world_size, (self.dist.rank + 1) * b // self.dist.world_size
        idx = batch[lo:hi]  # this rank's slice of the global batch
        pixels = self.data.train.rows(idx, self.device)  # as stored: uint8 for 8-bit images
        y = None if self.train_y is None else self.train_y[idx]
        player_logs = self._step_players()
        with noise.batch_noise(noise.mix_seed(self.cfg.train.seed, self.step), lo, b, self.device):
            x = self._inputs(pixels)
            if self.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            with nullcontext() if self.dtype is None else torch.autocast(self.device.type, self.dtype):
                loss, logs = self.objective(self.net, x, y, self.step)
        logs = {k: float(v) for k, v in logs.items()} | player_logs
        finite, self.stopping = self._agree(math.isfinite(logs["loss"]), self.stop_requests.signal != 0)
        if not finite:
            where = f" ({self.run.last} holds the last good state)" if self.run else ""
            raise NonFiniteLoss(f"loss is {logs['loss']} at step {self.step}{where}; "
                                f"try a lower train.lr or set train.grad_clip")
        self.opt.zero_grad(set_to_none=True)
        self._backward_and_step(loss)
        for k, v in logs.items():
            if k not in SCHEDULE_KEYS:
                total = self.sums.setdefault(k, [0.0, 0.0])
                total[0] += v * len(idx)
                total[1] += len(idx)
        self.step += 1
        return logs

    def _inputs(self, pixels: torch.Tensor) -> torch.Tensor:
        """The step's model inputs from its stored pixels: converted to float, perturbed and dynamically binarized as
        the config says. 8-bit pixels that are only binarized are drawn from their uint8 values (the same draws,
        without a float copy of the batch to convert first)."""
        d = self.cfg.data
        if d.binarize == "dynamic" and not d.perturb and pixels.dtype == torch.uint8:
            return binarize.dynamic(pixels)
        x = as_float(pixels)
        if d.perturb:
            x = perturb(x, d.perturb, binary=self.binary_train)
        return binarize.dynamic(x) if d.binarize == "dynamic" else x

    def _backward_and_step(self, loss: torch.Tensor) -> None:
        """Gradients and the model's update; under fp16, through the loss scaler (its gradients unscaled before
        clipping, steps with infinite gradients skipped)."""
        clip, scaler = self.cfg.train.grad_clip, self.scaler
        (loss if scaler is None else scaler.scale(loss)).backward()
        if scaler is not None and clip:
            scaler.unscale_(self.opt)
        if clip:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), clip)
        if scaler is None:
            self.opt.step()
        else:
            scaler.step(self.opt)
            scaler.update()

    def _step_players(self) -> dict[str, float]:
        """One update of each of the objective's players (their gradients averaged over ranks); their losses."""
        logs = {}
        for player in self.players:
            loss = player.loss(self.step)
            if loss is None:
                continue
            player.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if self.dist.enabled:
                for p in player.module.parameters():
                    if p.grad is not None:
                        self.dist.all_reduce_sum(p.grad).div_(self.dist.world_size)
            player.optimizer.step()
            logs[f"{player.name}_loss"] = float(loss.detach())
        return logs

    def _agree(self, finite: bool, stop: bool) -> tuple[bool, bool]:
        """(every rank's loss is finite, some rank was asked to stop), in one all-reduce, so all ranks act alike."""
        if not self.dist.enabled:
            return finite, stop
        flags = torch.tensor([float(not finite), float(stop)], device=self.device)
        bad, stops = self.dist.all_reduce_sum(flags).tolist()
        return bad == 0, stops > 0

    def fit(self) -> dict:
        """Train to ``total_steps`` (or early stop) holding the run directory's lock; return the last epoch's log
        record."""
        writes = self.run is not None and self.dist.is_main
        with self.run.writing(writes) if self.run is not None else nullcontext():
            if writes:
                if self.replace:
                    self.run.clear()
                    self.replace = False
                self.run.prepare(self.cfg, self.facts.to_dict())
                self.run.repair_metrics(self.step, self.last_record)
                self.run.tracker = track.tracker(self.cfg.train.track, self.run.path, self.cfg.train.tracking_uri)
                self.run.tracker.start(self.cfg.to_dict())
            finished = False
            try:
                record = self._fit()
                finished = True
                return record
            except RunDirError:
                raise
            except OSError as e:
                if not writes:
                    raise
                raise self._disk_error(e) from None
            finally:
                if writes:
                    self.run.tracker.close(finished)

    def _fit(self) -> dict:
        t = self.cfg.train
        bar = tqdm(total=self.total_steps, initial=self.step, unit="step", dynamic_ncols=True,
                   disable=not (t.progress and self.dist.is_main), desc=f"train {self.cfg.model.name}",
                   mininterval=0.1 if sys.stderr.isatty() else 10.0)
        record: dict = {}
        logs: dict = {}
        self.stop_requests.install()
        try:
            while self.step < self.total_steps and not self.stopped_early:
                epoch, first = divmod(self.step, self.steps_per_epoch)
                order = self._order(epoch)
                for b in range(first, self.steps_per_epoch):
                    logs = self._train_step(order[b * t.batch_size:(b + 1) * t.batch_size])
                    bar.update(1)
                    self._report_progress(logs)
                    if self.step % 25 == 0 or self.step == self.total_steps:
                        bar.set_postfix({k: f"{v:.4g}" for k, v in logs.items()}, refresh=False)
                    if self.step >= self.total_steps or self.stopping:
                        break
                    if self.step % t.checkpoint_every == 0 and self.step % self.steps_per_epoch:
                        self._save("last")  # mid-epoch: an epoch's end is saved by _end_epoch, after validation
                if self.step % self.steps_per_epoch == 0 or self.step >= self.total_steps:
                    record = self._end_epoch(epoch, logs)  # exactly once per epoch, before any stop
                    if t.progress and self.dist.is_main:
                        bar.write(epoch_line(record, self.total_steps // self.steps_per_epoch))
                else:
                    self._save("last")  # stopped mid-epoch
                if self.stopping:
                    raise Stopped(self.step)
        finally:
            self.stop_requests.restore()
            bar.close()
            try:
                self._report_progress(logs, now=True)
            except OSError:
                pass  # progress.json is for watchers; the error that brought us here says more
        return record

    def _report_progress(self, logs: dict, now: bool = False) -> None:
        """progress.json in the run directory, at most about once a second: what a watcher (the app) shows."""
        if self.run is None or not self.dist.is_main:
            return
        t = time.perf_counter()
        if not now and t - self._progress_t < 1.0:
            return
        self._progress_t = t
        self.run.write_progress({"step": self.step, "total_steps": self.total_steps,
                                 "steps_per_epoch": self.steps_per_epoch, "seconds": round(t - self._t0, 2),
                                 "logs": logs})

    def _end_epoch(self, epoch: int, logs: dict) -> dict:
        totals = self.dist.all_reduce_sum(torch.tensor(list(self.sums.values()), dtype=torch.float64,
                                                       device=self.device).reshape(-1, 2))
        means = {k: (s / n).item() for k, (s, n) in zip(self.sums, totals)}  # every rank logs the same keys
        self.sums = self._zero_sums()
        val = self._validate()
        record = {"epoch": epoch + 1, "step": self.step, "time": round(time.perf_counter() - self._t0, 3),
                  **{f"train/{k}": v for k, v in means.items()},
                  **{k: v for k, v in logs.items() if k in SCHEDULE_KEYS},
                  **{f"val/{k}": v for k, v in val.items() if k != "n" and isinstance(v, (int, float))},
                  **self._collapse_fields(val)}
        improved = val["loss"] < self.best
        if improved:
            self.best, self.bad_epochs = val["loss"], 0
        else:
            self.bad_epochs += 1
            patience = self.cfg.train.patience
            self.stopped_early = patience is not None and self.bad_epochs >= patience
        record["val/best_loss"] = self.best
        # The record first, then the checkpoints: a kill in between leaves a record from after the last checkpoint,
        # which the resumed run drops and writes again; the checkpoint carries it too (see RunDir.repair_metrics).
        if self.run is not None and self.dist.is_main:
            self.run.log(record)
        self.last_record = record
        if improved:
            self._save("best")
        self._save("last")
        return record

    def _collapse_fields(self, val: dict) -> dict:
        """The posterior-collapse diagnostics of the epoch's record: the KL of each latent dimension, how many carry
        almost none, and, while the model is collapsed, ``collapse`` (a line saying what collapsed and the remedies,
        :mod:`vaelab.train.collapse`) and ``collapse_epochs`` (for how many epochs in a row); warned once, when that
        reaches WARN_AFTER_EPOCHS."""
        fields = {}
        if val.get("kl_per_dim") is not None:
            fields = {"val/kl_per_dim": val["kl_per_dim"], "val/collapsed_dims": collapsed_dims(val)}
        message = collapse(val)
        if message is not None:
            streak = (self.last_record or {}).get("collapse_epochs", 0) + 1
            fields |= {"collapse": message, "collapse_epochs": streak}
            if self.dist.is_main and streak == WARN_AFTER_EPOCHS:
                warn(f"epochs {self.step // self.steps_per_epoch - streak + 1}-{self.step // self.steps_per_epoch}: "
                     f"{message}")
        return fields

    def _validate(self) -> dict:
        """The validation split; under DDP each rank takes every world_size-th example and sums are all-reduced."""
        r, w = self.dist.rank, self.dist.world_size
        val = self.data.val
        shard = val if w == 1 else val.take(torch.arange(r, len(val), w))
        return evaluate(self.model, shard, batch_size=self.cfg.train.eval_batch_size, seed=self.cfg.train.seed + r,
                        reduce=self.dist.all_reduce_sum)
