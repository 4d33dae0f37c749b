"""Seconds for the full disentanglement metric suite at the default protocol sizes (Locatello et al. 2019)
on one trained model, per metric.

    python benchmarks/disentanglement_metrics.py RUN_DIR [--dataset dsprites-procedural]

Without RUN_DIR it trains a small beta-TC-VAE on procedural dSprites first (a few hundred steps).
"""
from __future__ import annotations

import argparse
import tempfile
import time


from common import emit, machine
from vaelab.api import load_run
from vaelab.config import RunConfig
from vaelab.data.factors import load_factor_dataset
from vaelab.disentangle import all_metrics
from vaelab.models import MODELS
from vaelab.train import Trainer


def quick_model(out: str):
    cfg = RunConfig().override(MODELS.get("beta-tcvae").presets).set([
        "model.name=beta-tcvae", "data.name=dsprites-procedural", "model.arch=conv64", "model.latent_dim=10",
        "data.train_size=20000", "train.steps=300", "train.batch_size=64", "train.progress=false"])
    Trainer(cfg, out).fit()
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run", nargs="?")
    p.add_argument("--dataset", default="dsprites-procedural")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        run = args.run or quick_model(tmp)
        _, model = load_run(run)
        factors = load_factor_dataset(args.dataset)
        t = time.perf_counter()
        results = all_metrics(factors, lambda x: model.encode(x), args.seed)
        total = time.perf_counter() - t
    emit({"benchmark": "disentanglement_metrics", "dataset": args.dataset, "total_seconds": round(total, 1),
          "seconds": {k: round(v["seconds"], 2) for k, v in results.items()},
          "scores": {k: {m: round(x, 4) for m, x in v.items() if isinstance(x, float) and m != "seconds"}
                     for k, v in results.items()},
          "machine": machine()})


if __name__ == "__main__":
    main()
