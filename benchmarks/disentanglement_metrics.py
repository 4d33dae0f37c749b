"""Seconds for the full disentanglement metric suite at the default protocol sizes (Locatello et al. 2019)
on one trained model, per metric, with the images each metric asked for and the images encoded (the suite
encodes each factor combination once).

    python benchmarks/disentanglement_metrics.py RUN_DIR [--dataset dsprites-procedural]
    python benchmarks/disentanglement_metrics.py --keep DIR  # train into DIR once, then reuse it
    python benchmarks/disentanglement_metrics.py --render   # ms per image of the procedural renderer by batch size
    python benchmarks/disentanglement_metrics.py --keep DIR --encoder  # ms per image of the encoder by batch size

Without RUN_DIR it trains a small beta-TC-VAE on procedural dSprites first (a few hundred steps, ~8 min on 2
cores); ``--keep DIR`` keeps that model in DIR and reuses it when DIR is there, so the protocol can be re-timed
without training again. ``--num-train N`` runs the reduced protocol of ``vaelab disentangle --num-train N``.
``--render`` times ``images()`` of procedural dSprites at batches of 64 and 1024, alternately, on factors drawn
once (all of them rendered and cached first, as most of the protocol's are): the cost per image must not grow
with the batch.
"""
from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time

import numpy as np

from common import emit, machine
from vaelab.api import load_run, protocol_sizes
from vaelab.config import RunConfig
from vaelab.data.factors import load_factor_dataset
from vaelab.disentangle import all_metrics
from vaelab.models import MODELS
from vaelab.train import Trainer


def quick_model(out: str) -> str:
    """A 300-step beta-TC-VAE on procedural dSprites trained into ``out`` (reused when ``out`` exists: it is made
    by renaming a finished run, so a present ``out`` is complete)."""
    if os.path.isdir(out):
        return out
    parent = os.path.dirname(os.path.abspath(out))
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=".training-", dir=parent)
    cfg = RunConfig().override(MODELS.get("beta-tcvae").presets).set([
        "model.name=beta-tcvae", "data.name=dsprites-procedural", "model.arch=conv64", "model.latent_dim=10",
        "data.train_size=20000", "train.steps=300", "train.batch_size=64", "train.progress=false"])
    Trainer(cfg, tmp).fit()
    os.replace(tmp, out)
    return out


def render_times(repeats: int = 9, images: int = 16384) -> dict:
    """Median and best ms per image of cached procedural dSprites images at batch 64 and batch 1024."""
    sprites = load_factor_dataset("dsprites-procedural")
    pool = sprites.sample_factors(20000, np.random.default_rng(0))
    sprites.images(pool)  # rendered once, then read from the cache
    times: dict[int, list[float]] = {64: [], 1024: []}
    for _ in range(repeats):
        for b in times:
            t = time.perf_counter()
            for i in range(images // b):
                start = i * b % 16000
                sprites.images(pool[start:start + b])
            times[b].append((time.perf_counter() - t) / images * 1e3)
    return {f"batch_{b}": {"median_ms_per_image": round(statistics.median(v), 5), "best": round(min(v), 5)}
            for b, v in times.items()}


def encoder_times(run: str, repeats: int = 5, images: int = 4096) -> dict:
    """Best and median ms per image of ``run``'s ``encode`` by batch size, under ``torch.no_grad`` (what the metrics
    use) and ``torch.inference_mode``, the settings taken in turn within each repeat (a shared machine's load then
    moves them alike): whether either would encode faster."""
    import torch

    _, model = load_run(run)
    sprites = load_factor_dataset("dsprites-procedural")
    x = sprites.images(sprites.sample_factors(images, np.random.default_rng(0)))
    times: dict[str, list[float]] = {f"{m}_batch_{b}": [] for m in ("no_grad", "inference_mode")
                                     for b in (256, 1024, 4096)}
    for _ in range(repeats):
        for key in times:
            mode, b = key.split("_batch_")
            with getattr(torch, mode)():
                t = time.perf_counter()
                for start in range(0, images, int(b)):
                    model.encode(x[start:start + int(b)])
                times[key].append((time.perf_counter() - t) / images * 1e3)
    return {k: {"median_ms_per_image": round(statistics.median(v), 4), "best": round(min(v), 4)}
            for k, v in times.items()}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run", nargs="?")
    p.add_argument("--keep", metavar="DIR", help="train the model into DIR when absent, else reuse it")
    p.add_argument("--dataset", default="dsprites-procedural")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--num-train", type=int, help="a reduced protocol: N training points, N / 2 test points")
    p.add_argument("--render", action="store_true", help="time the procedural renderer by batch size only")
    p.add_argument("--encoder", action="store_true", help="time the model's encoder by batch size and grad mode only")
    args = p.parse_args()
    if args.encoder:
        with tempfile.TemporaryDirectory() as tmp:
            emit({"benchmark": "disentanglement_metrics --encoder",
                  **encoder_times(args.run or quick_model(args.keep or os.path.join(tmp, "run"))),
                  "load_average": [round(x, 2) for x in os.getloadavg()], "machine": machine()})
        return
    if args.render:
        emit({"benchmark": "disentanglement_metrics --render", **render_times(),
              "load_average": [round(x, 2) for x in os.getloadavg()], "machine": machine()})
        return
    with tempfile.TemporaryDirectory() as tmp:
        run = args.run or quick_model(args.keep or os.path.join(tmp, "run"))
        _, model = load_run(run)
        factors = load_factor_dataset(args.dataset)
        t = time.perf_counter()
        results = all_metrics(factors, lambda x: model.encode(x), args.seed, protocol_sizes(args.num_train))
        total = time.perf_counter() - t
    emit({"benchmark": "disentanglement_metrics", "dataset": args.dataset, "num_train": args.num_train or "protocol",
          "total_seconds": round(total, 1),
          "load_average": [round(x, 2) for x in os.getloadavg()],
          "seconds": {k: round(v["seconds"], 2) for k, v in results.items()},
          "images_encoded": {k: v["images_encoded"] for k, v in results.items()},
          "images_requested": {k: v["images_requested"] for k, v in results.items()},
          "images_encoded_total": sum(v["images_encoded"] for v in results.values()),
          "images_requested_total": sum(v["images_requested"] for v in results.values()),
          "scores": {k: {m: round(x, 4) for m, x in v.items() if isinstance(x, float) and m != "seconds"}
                     for k, v in results.items()},
          "machine": machine()})


if __name__ == "__main__":
    main()
