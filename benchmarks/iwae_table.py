"""Reproduce the one-stochastic-layer rows of the IWAE paper's table 1 (Burda et al. 2016) on MNIST.

Trains VAE (k=1), IWAE (k=5) and IWAE (k=50) with the paper's architecture (configs/iwae-mnist.yaml),
then estimates each model's test NLL with k=5000 importance samples, and prints one JSON row per model
beside the paper's number. The paper trained for 3280 passes with a decaying learning rate; the
default here (60 epochs at lr 1e-3, batch 100) is sized to finish on 2 CPU cores within an hour.

    python benchmarks/iwae_table.py [--epochs 60] [--static] [--out runs/iwae-table]

--static trains on the statically binarized MNIST of Larochelle & Murray (``binarized-mnist``).
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from vaelab.config import RunConfig, read_patch
from vaelab.eval import evaluate, log_likelihood
from vaelab.train import Trainer

CONFIG = Path(__file__).resolve().parents[1] / "configs" / "iwae-mnist.yaml"
ROWS = [("VAE", "elbo", 1), ("IWAE", "iwae", 5), ("IWAE", "iwae", 50)]
PAPER = {"mnist": {("VAE", 1): 86.76, ("IWAE", 5): 85.54, ("IWAE", 50): 84.78},  # table 1, k=1 training rows
         "binarized-mnist": {("IWAE", 50): 87.10}}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--epochs", type=int, default=60)
    p.add_argument("--static", action="store_true", help="statically binarized MNIST (binarized-mnist)")
    p.add_argument("--nll-samples", type=int, default=5000)
    p.add_argument("--test-size", type=int, default=None, help="evaluate on the first N test images (default all)")
    p.add_argument("--out", default="runs/iwae-table")
    p.add_argument("--rows", nargs="+", default=[f"{name}-k{k}" for name, _, k in ROWS], help="e.g. IWAE-k50")
    args = p.parse_args()

    dataset = "binarized-mnist" if args.static else "mnist"
    base = RunConfig().override(read_patch(CONFIG)).set(
        [f"data.name={dataset}", f"train.epochs={args.epochs}", "train.progress=false"])
    for name, objective, k in ROWS:
        if f"{name}-k{k}" not in args.rows:
            continue
        cfg = base.set([f"objective.name={objective}", f"objective.k={k}"])
        out = Path(args.out) / dataset / f"{name.lower()}-k{k}"
        t0 = time.perf_counter()
        trainer = Trainer(cfg, out)
        trainer.fit()
        train_s = time.perf_counter() - t0
        test = trainer.data.test
        if args.test_size:
            test = test.take(torch.arange(args.test_size))
        t0 = time.perf_counter()
        ll = log_likelihood(trainer.model, test, k=args.nll_samples)
        diag = evaluate(trainer.model, test)
        print(json.dumps({
            "model": name, "train_k": k, "dataset": dataset, "epochs": args.epochs,
            "nll": round(ll["nll"], 2), "nll_se": round(ll["nll_se"], 2), "nll_samples": args.nll_samples,
            "paper_nll": PAPER[dataset].get((name, k)), "nelbo": round(diag["nelbo"], 2),
            "active_units": diag["active_units"], "test_images": len(test),
            "train_seconds": round(train_s, 1), "eval_seconds": round(time.perf_counter() - t0, 1),
        }), flush=True)


if __name__ == "__main__":
    main()
