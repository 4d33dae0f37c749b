"""Training throughput of vaelab's trainer against a bare PyTorch loop, same model, same data, same run.

The model: MLP VAE 784-512-512-32 (ReLU), Bernoulli decoder, closed-form KL, dynamically binarized
Fashion-MNIST, batch 128, Adam lr 1e-3 (fused), flushed denormals (``import vaelab`` flushes them; the
bare loop shares this process). The bare loop is the fastest plain loop we know: index-based batches of
in-memory tensors, no DataLoader, no validation. vaelab's figure is its whole ``fit()``: per-epoch
validation on 5,000 images and checkpoints included. ``bare_no_flush`` runs the bare loop in a process
that keeps denormals.

    python benchmarks/train_throughput.py [--epochs 3]
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time

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
    p.add_argument("--repeats", type=int, default=2, help="alternating runs of each; the best is reported")
    p.add_argument("--bare-only", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()

    cfg = config(args.epochs)
    data = load_run_data(cfg)
    if args.bare_only:
        print(bare_loop(data.train.x, args.epochs))
        return
    peak = matmul_peak_gflops()
    macs = 784 * 512 + 512 * 512 + 512 * 2 * LATENT + LATENT * 512 + 512 * 512 + 512 * 784
    flops_per_sample = 3 * 2 * macs  # forward, plus backward at about twice the forward
    runs: dict[str, list[float]] = {"vaelab": [], "bare": [], "bare_no_flush": []}
    for _ in range(args.repeats):
        runs["bare"].append(bare_loop(data.train.x, args.epochs))
        runs["vaelab"].append(vaelab_fit(cfg, data))
    runs["bare_no_flush"].append(bare_without_flush(args.epochs))
    best = {k: max(v) for k, v in runs.items()}
    emit({
        "benchmark": "train_throughput",
        "model": "MLP VAE 784-512-512-32, Bernoulli, batch 128, fused Adam",
        "dataset": "fashion-mnist (dynamic binarization)",
        "epochs": args.epochs,
        "samples_per_s": {k: round(v) for k, v in best.items()},
        "all_runs": {k: [round(x) for x in v] for k, v in runs.items()},
        "vaelab_over_bare": round(best["vaelab"] / best["bare"], 3),
        "gflops": {k: round(v * flops_per_sample / 1e9, 1) for k, v in best.items()},
        "matmul_peak_gflops": round(peak, 1),
        "fraction_of_peak": {k: round(v * flops_per_sample / 1e9 / peak, 3) for k, v in best.items()},
        "machine": machine(),
    })


if __name__ == "__main__":
    main()
