"""Reproduce rows of the VampPrior paper's table (Tomczak & Welling 2018) on statically binarized MNIST.

Rows: VAE with the standard prior, VAE with a VampPrior, and a two-layer hierarchical VAE (ladder) with a
VampPrior; settings from configs/vampprior-mnist.yaml (latent 40, gated MLP 300-300, 500 pseudo-inputs,
KL warm-up, early stopping), each row's test NLL estimated with k=5000 importance samples and printed as
one JSON row beside the paper's number. The paper warmed up over 100 epochs of up to 2000 with patience 50;
here both scale with the epoch budget: warm-up lasts min(100, epochs / 4) epochs and early stopping waits
max(5, epochs // 4) epochs (patience 50 would never fire within the default 40), and the default epochs fit
2 CPU cores in about an hour.

    python benchmarks/vampprior_table.py [--epochs 40] [--out runs/vampprior-table]
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
from vaelab.train.checkpoint import load_weights

CONFIG = Path(__file__).resolve().parents[1] / "configs" / "vampprior-mnist.yaml"
ROWS = {  # name: (config overrides, the paper's test NLL)
    "VAE standard prior": (["model.prior=standard"], 88.56),
    "VAE VampPrior": (["model.prior=vampprior"], 85.57),
    "HVAE (2 layers) VampPrior": (["model.name=hvae", "model.prior=vampprior", "model.layers=[40, 40]"], 83.19),
}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--epochs", type=int, default=40)
    p.add_argument("--nll-samples", type=int, default=5000)
    p.add_argument("--test-size", type=int, default=None, help="evaluate on the first N test images (default all)")
    p.add_argument("--out", default="runs/vampprior-table")
    p.add_argument("--rows", nargs="+", default=list(ROWS), choices=list(ROWS))
    args = p.parse_args()

    base = RunConfig().override(read_patch(CONFIG))
    steps_per_epoch = 50000 // base.train.batch_size
    warmup = min(100, max(1, args.epochs // 4)) * steps_per_epoch
    patience = max(5, args.epochs // 4)
    for name in args.rows:
        sets, paper = ROWS[name]
        cfg = base.set([*sets, f"train.epochs={args.epochs}", f"kl.warmup_steps={warmup}",
                        f"train.patience={patience}", "train.progress=false"])
        out = Path(args.out) / name.lower().replace(" ", "-").replace("(", "").replace(")", "")
        t0 = time.perf_counter()
        trainer = Trainer(cfg, out)
        record = trainer.fit()
        train_s = time.perf_counter() - t0
        model = trainer.model
        model.load_state_dict(load_weights(trainer.run.checkpoint("best"))[0])  # the early-stopping choice
        test = trainer.data.test if not args.test_size else trainer.data.test.take(torch.arange(args.test_size))
        t0 = time.perf_counter()
        ll = log_likelihood(model, test, k=args.nll_samples)
        diag = evaluate(model, test)
        print(json.dumps({
            "model": name, "dataset": "binarized-mnist", "epochs_run": record["epoch"], "epochs": args.epochs,
            "warmup_epochs": warmup // steps_per_epoch, "patience": patience, "nll": round(ll["nll"], 2),
            "nll_se": round(ll["nll_se"], 2), "nll_samples": args.nll_samples, "paper_nll": paper,
            "nelbo": round(diag["nelbo"], 2),
            "active_units": diag["active_units"], "test_images": len(test), "train_seconds": round(train_s, 1),
            "eval_seconds": round(time.perf_counter() - t0, 1),
        }), flush=True)


if __name__ == "__main__":
    main()
