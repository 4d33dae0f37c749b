"""Training throughput of vaelab's trainer against a bare PyTorch loop, same model, same data, same run.

The model: MLP VAE 784-512-512-32 (ReLU), Bernoulli decoder, closed-form KL, dynamically binarized
Fashion-MNIST, batch 128, Adam lr 1e-3 (fused), flushed denormals (``import vaelab`` flushes them; the
bare loop shares this process). The bare loop is the fastest plain loop we know: index-based batches of
in-memory tensors, no DataLoader, no validation. vaelab's figure is its whole ``fit()``: per-epoch
validation on 5,000 images and checkpoints included. ``bare_no_flush`` runs the bare loop in a process
that keeps denormals. The two alternate ``--repeats`` times in one process: each pair's ratio is reported, with
their median and spread, and the load average (the machine may be shared: wall-clock ratios are noisy).

``--profile`` first times one ``fit()`` by part with the wall clock (``wall_clock_split``: the training steps,
validation, checkpoints, the rest), then runs it again under cProfile and reports where its time goes besides the
model: per step, the
trainer's own work (batch gathering, noise, logs and metric syncs, progress) outside the objective's forward pass
and the backward pass and optimizer step; per epoch, validation and checkpoints.

    python benchmarks/train_throughput.py [--epochs 3] [--repeats 5]
    python benchmarks/train_throughput.py --profile [--epochs 1]
"""
from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from common import emit, machine, matmul_peak_gflops
from vaelab.config import RunConfig
from vaelab.train import Trainer, load_run_data

HIDDEN, LATENT, BATCH = [512, 512], 32, 128


def config(epochs: int) -> RunConfig:
    return RunConfig().set(["data.name=fashion-mnist", "model.arch=mlp", f"model.hidden={HIDDEN}",
                            f"model.latent_dim={LATENT}", f"train.batch_size={BATCH}", f"train.epochs={epochs}",
                            "train.progress=false", "train.checkpoint_every=100000"])


class BareVAE(nn.Module):
    def __init__(self):
        super().__init__()
        self.enc = nn.Sequential(nn.Linear(784, 512), nn.ReLU(), nn.Linear(512, 512), nn.ReLU(), nn.Linear(512, 2 * LATENT))
        self.dec = nn.Sequential(nn.Linear(LATENT, 512), nn.ReLU(), nn.Linear(512, 512), nn.ReLU(), nn.Linear(512, 784))

    def forward(self, x):
        mu, logvar = self.enc(x).chunk(2, -1)
        z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)
        recon = F.binary_cross_entropy_with_logits(self.dec(z), x, reduction="none").sum(-1)
        kl = -0.5 * (1 + logvar - mu**2 - logvar.exp()).sum(-1)
        return (recon + kl).mean()


def bare_loop(x: torch.Tensor, epochs: int) -> float:
    """Samples per second of the plain loop."""
    torch.manual_seed(0)
    model = BareVAE()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, fused=True)
    x = x.flatten(1)
    steps = len(x) // BATCH
    t = time.perf_counter()
    for _ in range(epochs):
        perm = torch.randperm(len(x))
        for b in range(steps):
            xb = x[perm[b * BATCH:(b + 1) * BATCH]]
            xb = (torch.rand_like(xb) < xb).float()
            loss = model(xb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    return epochs * steps * BATCH / (time.perf_counter() - t)


def vaelab_fit(cfg: RunConfig, data) -> float:
    with tempfile.TemporaryDirectory() as out:
        trainer = Trainer(cfg, out, data=data)
        t = time.perf_counter()
        trainer.fit()
        return trainer.total_steps * BATCH / (time.perf_counter() - t)


def split_fit(cfg: RunConfig, data) -> dict:
    """Wall-clock seconds of one fit() by part, no profiler: the training steps, per-epoch validation, checkpoint
    writes, and the rest (run directory, records, progress); the steps' ms each."""
    spent: dict[str, float] = {}

    def timed(trainer, name):
        method = getattr(trainer, name)

        def wrapper(*args, **kwargs):
            t = time.perf_counter()
            try:
                return method(*args, **kwargs)
            finally:
                spent[name] = spent.get(name, 0.0) + time.perf_counter() - t
        setattr(trainer, name, wrapper)

    with tempfile.TemporaryDirectory() as out:
        trainer = Trainer(cfg, out, data=data)
        for name in ("_train_step", "_validate", "_save"):
            timed(trainer, name)
        t = time.perf_counter()
        trainer.fit()
        total = time.perf_counter() - t
    parts = {"steps": spent["_train_step"], "validation": spent["_validate"], "checkpoints": spent["_save"]}
    parts["rest"] = total - sum(parts.values())
    return {"fit_s": round(total, 3), "seconds": {k: round(v, 3) for k, v in parts.items()},
            "share": {k: round(v / total, 4) for k, v in parts.items()},
            "ms_per_step": round(1e3 * parts["steps"] / trainer.total_steps, 3)}


def profile_fit(cfg: RunConfig, data) -> dict:
    """Milliseconds of fit() spent outside the model, per step and per epoch, by cProfile (whose own per-call cost
    inflates Python-heavy parts alike before and after a change)."""
    with tempfile.TemporaryDirectory() as out:
        trainer = Trainer(cfg, out, data=data)
        prof = cProfile.Profile()
        prof.enable()
        trainer.fit()
        prof.disable()
    cum = {(Path(f).name, name): v[3] for (f, _, name), v in pstats.Stats(prof).stats.items()}
    seconds = lambda name, file="trainer.py": cum.get((file, name), 0.0)  # noqa: E731
    steps, epochs = trainer.total_steps, trainer.total_steps // trainer.steps_per_epoch
    model = seconds("forward", "elbo.py") + seconds("_backward_and_step")
    per_epoch = {"validation": seconds("_validate"), "checkpoints": seconds("_save")}
    per_epoch["other"] = seconds("_end_epoch") - per_epoch["validation"] - per_epoch["checkpoints"]
    return {"steps": steps, "epochs": epochs, "fit_s": round(seconds("fit"), 2),
            "model_ms_per_step": round(1e3 * model / steps, 3),
            "trainer_ms_per_step": round(1e3 * (seconds("_fit") - seconds("_end_epoch") - model) / steps, 3),
            "of_which_rows_ms": round(1e3 * seconds("rows", "base.py") / steps, 3),
            "of_which_binarize_ms": round(1e3 * seconds("dynamic", "binarize.py") / steps, 3),
            "per_epoch_ms": {k: round(1e3 * v / epochs, 1) for k, v in per_epoch.items()}}


def bare_without_flush(epochs: int) -> float:
    """The bare loop in a fresh process that leaves denormals alone (the mode must be set before torch's
    worker threads start, so it cannot be switched off in this one)."""
    env = {**os.environ, "VAELAB_FLUSH_DENORMAL": "0"}
    out = subprocess.run([sys.executable, __file__, "--epochs", str(epochs), "--bare-only"], env=env,
                         capture_output=True, text=True, check=True)
    return float(out.stdout)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--repeats", type=int, default=5, help="alternating runs of each, in pairs")
    p.add_argument("--profile", action="store_true", help="where fit()'s time goes besides the model")
    p.add_argument("--bare-only", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()

    cfg = config(args.epochs)
    data = load_run_data(cfg)
    if args.bare_only:
        print(bare_loop(data.train.x, args.epochs))
        return
    if args.profile:
        emit({"benchmark": "train_throughput --profile", "load_average": os.getloadavg(),
              "wall_clock_split": split_fit(cfg, data), **profile_fit(cfg, data), "machine": machine()})
        return
    load = [os.getloadavg()[0]]
    peak = matmul_peak_gflops()
    macs = 784 * 512 + 512 * 512 + 512 * 2 * LATENT + LATENT * 512 + 512 * 512 + 512 * 784
    flops_per_sample = 3 * 2 * macs  # forward, plus backward at about twice the forward
    runs: dict[str, list[float]] = {"vaelab": [], "bare": [], "bare_no_flush": []}
    for _ in range(args.repeats):
        runs["bare"].append(bare_loop(data.train.x, args.epochs))
        runs["vaelab"].append(vaelab_fit(cfg, data))
        load.append(os.getloadavg()[0])
    runs["bare_no_flush"].append(bare_without_flush(args.epochs))
    best = {k: max(v) for k, v in runs.items()}
    ratios = [v / b for v, b in zip(runs["vaelab"], runs["bare"])]  # each pair ran back to back
    emit({
        "benchmark": "train_throughput",
        "model": "MLP VAE 784-512-512-32, Bernoulli, batch 128, fused Adam",
        "dataset": "fashion-mnist (dynamic binarization)",
        "epochs": args.epochs,
        "samples_per_s": {k: round(v) for k, v in best.items()},
        "all_runs": {k: [round(x) for x in v] for k, v in runs.items()},
        "vaelab_over_bare": {"median": round(statistics.median(ratios), 3), "min": round(min(ratios), 3),
                             "max": round(max(ratios), 3), "pairs": [round(r, 3) for r in ratios],
                             "best_over_best": round(best["vaelab"] / best["bare"], 3)},
        "load_average_1min": [round(x, 2) for x in load],
        "gflops": {k: round(v * flops_per_sample / 1e9, 1) for k, v in best.items()},
        "matmul_peak_gflops": round(peak, 1),
        "fraction_of_peak": {k: round(v * flops_per_sample / 1e9 / peak, 3) for k, v in best.items()},
        "machine": machine(),
    })


if __name__ == "__main__":
    main()
