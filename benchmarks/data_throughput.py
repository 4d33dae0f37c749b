"""Images per second and peak resident memory of vaelab's data paths on a folder of 64x64 JPEGs, against the
images per second of a conv VAE's training step.

The benchmark writes the folder first (``--images``, default 100,000, smooth random colour images, JPEG quality 90;
kept for later runs) and says how long that took. Then, each in a fresh process so that its peak RSS is its own:

- ``decode``: the one-time decode of the listing into the memory-mapped uint8 cache (:mod:`vaelab.data.cache`); on
  later runs, the check that finds it (``cache_was_there``).
- ``memory-mapped``: batches of 128 in random order gathered from the mapped cache and converted to float32
  (:meth:`vaelab.data.Split.batch`, what the trainer does at each step).
- ``in-memory``: the same from the cache read whole into memory (uint8: 4x smaller than the float32 of before).
- ``worker-decoded``: a torch DataLoader whose ``--workers`` processes decode the JPEGs of each batch.

The model: vaelab's ``fit()`` of a VAE with the ``conv64`` networks (discretized logistic likelihood, batch 128) on
64x64 random images, ``--threads`` threads; the target is every data path at >= 3x its images/s.

    python benchmarks/data_throughput.py [--images 100000] [--dir /tmp/vaelab-jpegs] [--seconds 10]
"""
from __future__ import annotations

import argparse
import gc
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from common import emit, machine
from vaelab.data import cache
from vaelab.data.base import Dataset, Split, as_float
from vaelab.data.images import ImageOptions, decode
from vaelab.api import run_config
from vaelab.train import Trainer

SIZE, BATCH = 64, 128
OPT = ImageOptions(size=SIZE)


def write_folder(root: Path, n: int) -> float | None:
    """``n`` JPEGs of smooth random colour (8x8 noise, upsampled bicubically) in ``root``; seconds taken, or None when
    a complete folder was there already."""
    done = root / ".complete"
    if done.exists() and done.read_text() == str(n):
        return None
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    t = time.perf_counter()
    for i in range(n):
        small = Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8))
        small.resize((SIZE, SIZE), Image.Resampling.BICUBIC).save(root / f"{i:06d}.jpg", quality=90)
    done.write_text(str(n))
    return time.perf_counter() - t


def paths_of(root: Path) -> list[Path]:
    return sorted(root.glob("*.jpg"))


def peak_rss_mb(who: int = resource.RUSAGE_SELF) -> float:
    return resource.getrusage(who).ru_maxrss / 1024  # kB on Linux


def drain(batches, seconds: float) -> float:
    """Images per second taking float32 batches from ``batches`` for about ``seconds``."""
    n, t = 0, time.perf_counter()
    for x in batches:
        n += len(x)
        if time.perf_counter() - t > seconds:
            break
    return n / (time.perf_counter() - t)


def random_batches(split: Split):
    while True:
        order = torch.randperm(len(split))
        for b in range(len(split) // BATCH):
            yield split.batch(order[b * BATCH:(b + 1) * BATCH])


class Files(torch.utils.data.Dataset):
    def __init__(self, paths):
        self.paths = paths

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, i):
        return torch.from_numpy(np.ascontiguousarray(decode(self.paths[i], OPT)))


def run_mode(mode: str, root: Path, seconds: float, workers: int) -> dict:
    paths = paths_of(root)
    if mode == "decode":
        cached = cache.cache_path(paths, OPT).exists()
        t = time.perf_counter()
        cache.cached_images(paths, OPT, progress=False)
        return {"seconds": round(time.perf_counter() - t, 1), "cache_was_there": cached,
                "cache_mb": round(cache.cache_path(paths, OPT).stat().st_size / 2**20)}
    if mode == "worker-decoded":
        loader = torch.utils.data.DataLoader(Files(paths), batch_size=BATCH, shuffle=True, num_workers=workers,
                                             drop_last=True)
        batches = iter(loader)
        rate = drain(map(as_float, batches), seconds)
        del batches  # its workers are joined: their peak RSS counts among this process's children
        gc.collect()
        return {"images_per_s": round(rate), "peak_rss_mb": round(peak_rss_mb()),
                "worker_peak_rss_mb": round(peak_rss_mb(resource.RUSAGE_CHILDREN)), "workers": workers}
    if mode == "in-memory":  # the cache read whole into this process's memory
        pixels = torch.from_numpy(np.load(cache.cache_path(paths, OPT)))
    else:
        pixels = cache.cached_images(paths, OPT, progress=False)
    rate = drain(random_batches(Split(pixels, None)), seconds)
    return {"images_per_s": round(rate), "peak_rss_mb": round(peak_rss_mb())}


def model_rate(steps: int, threads: int) -> float:
    """Images per second of vaelab's fit() of a conv64 VAE on random 64x64 images (batch 128)."""
    torch.set_num_threads(threads)
    g = torch.Generator().manual_seed(0)
    images = lambda n: Split(torch.randint(0, 256, (n, 3, SIZE, SIZE), dtype=torch.uint8, generator=g), None)  # noqa
    data = Dataset("random", images(BATCH * steps), images(BATCH), images(BATCH), num_classes=0, binary=False)
    cfg = run_config("vae", "celeba", ["model.arch=conv64", "model.latent_dim=32", f"train.batch_size={BATCH}",
                                       f"train.steps={steps}", "train.progress=false", "train.device=cpu"])
    trainer = Trainer(cfg, data=data)
    t = time.perf_counter()
    trainer.fit()
    return steps * BATCH / (time.perf_counter() - t)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--images", type=int, default=100_000)
    p.add_argument("--dir", type=Path, default=Path(tempfile.gettempdir()) / "vaelab-jpegs")
    p.add_argument("--seconds", type=float, default=10.0, help="per data path")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--threads", type=int, default=2, help="torch threads of the model's steps")
    p.add_argument("--steps", type=int, default=20, help="timed training steps of the model")
    p.add_argument("--mode", help=argparse.SUPPRESS)
    args = p.parse_args()
    root = args.dir / f"{args.images}"
    os.environ.setdefault("XDG_CACHE_HOME", str(args.dir / "cache"))
    if args.mode:
        print(json.dumps(run_mode(args.mode, root, args.seconds, args.workers)))
        return
    written = write_folder(root, args.images)
    paths = {}
    for mode in ("decode", "memory-mapped", "in-memory", "worker-decoded"):
        out = subprocess.run([sys.executable, __file__, "--mode", mode, "--images", str(args.images), "--dir",
                              str(args.dir), "--seconds", str(args.seconds), "--workers", str(args.workers)],
                             capture_output=True, text=True, check=True, env=os.environ)
        paths[mode] = json.loads(out.stdout.strip().splitlines()[-1])
    model = model_rate(args.steps, args.threads)
    emit({
        "benchmark": "data_throughput",
        "folder": f"{args.images} JPEGs, {SIZE}x{SIZE}, quality 90",
        "write_folder_s": None if written is None else round(written, 1),
        "paths": paths,
        "model": f"fit() of a conv64 VAE, batch {BATCH}, {args.threads} threads",
        "model_images_per_s": round(model, 1),
        "data_over_model": {m: round(r["images_per_s"] / model, 1) for m, r in paths.items() if "images_per_s" in r},
        "machine": machine(),
    })


if __name__ == "__main__":
    main()
