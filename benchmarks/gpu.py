"""Samples per second and the fraction of the device's peak of vaelab's training and evaluation, for a GPU
(``--device cuda``, the default when one is present) or, to check the script, a CPU:

- ``mlp_vae``: ``fit()`` of the MLP VAE 784-512-512-32 on Fashion-MNIST-sized random images (batch 128);
- ``conv_vae``: ``fit()`` of a VAE with the ``conv64`` networks on CelebA-sized random images (3x64x64, batch 128,
  latent 32);
- ``vqvae``: ``fit()`` of the VQ-VAE preset on CIFAR-sized random images (3x32x32, batch 128);
- ``nll``: the importance-sampled log p(x) of the trained conv VAE at K = 5000 (``vaelab.eval.log_likelihood``),
  in importance samples per second.

FLOPs per sample are counted by ``torch.utils.flop_counter`` (one forward and backward step of training; one
forward pass of K samples for the NLL); the peak is this device's best measured matmul throughput at the run's
precision (``--precision bf16`` compares with a bf16 matmul). ``--compile`` runs ``torch.compile`` on the models.

    python benchmarks/gpu.py [--device cuda] [--precision bf16] [--compile] [--steps 50] [--nll-n 64]
    python benchmarks/gpu.py --device cpu --steps 12 --nll-n 2   # the CPU check (with and without --compile)
"""
from __future__ import annotations

import argparse
import time

import torch
from torch.utils.flop_counter import FlopCounterMode

from common import emit, machine
from vaelab.api import run_config
from vaelab.data.base import Dataset, Split
from vaelab.device import resolve
from vaelab.eval import log_likelihood
from vaelab.train import Trainer

BATCH = 128
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


def random_data(shape: tuple[int, ...], n: int) -> Dataset:
    g = torch.Generator().manual_seed(0)
    split = lambda m: Split(torch.randint(0, 256, (m, *shape), dtype=torch.uint8, generator=g), None)  # noqa: E731
    return Dataset("random", split(n), split(BATCH), split(BATCH), num_classes=0, binary=False)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def peak_tflops(device: torch.device, precision: str, n: int = 4096) -> float:
    """Best measured n x n matmul TFLOP/s on ``device`` at ``precision``."""
    n = n if device.type == "cuda" else 1024
    a = torch.randn(n, n, device=device, dtype=DTYPES[precision])
    b = torch.randn(n, n, device=device, dtype=DTYPES[precision])
    best = float("inf")
    for _ in range(10):
        sync(device)
        t = time.perf_counter()
        a @ b
        sync(device)
        best = min(best, time.perf_counter() - t)
    return 2 * n**3 / best / 1e12


def train_rate(model: str, dataset: str, shape, args, extra=()) -> tuple[dict, Trainer]:
    cfg = run_config(model, dataset, [f"train.batch_size={BATCH}", f"train.steps={args.steps}",
                                      "train.progress=false", f"train.device={args.device}",
                                      f"train.precision={args.precision}", f"train.compile={args.compile}", *extra])
    trainer = Trainer(cfg, data=random_data(shape, BATCH * args.steps))
    x = trainer.data.train.batch(torch.arange(BATCH), trainer.device)
    with FlopCounterMode(display=False) as flops, torch.autocast(trainer.device.type, DTYPES[args.precision],
                                                                 enabled=args.precision != "fp32"):
        loss, _ = trainer.objective(trainer.model, x, None, 0)
        loss.backward()  # counted only: the uncompiled model, its gradients dropped
    trainer.opt.zero_grad(set_to_none=True)
    for b in range(args.warmup):  # untimed steps of the run (torch.compile compiles here)
        trainer._train_step(torch.arange(b * BATCH, (b + 1) * BATCH, device=trainer.device))
    sync(trainer.device)
    t = time.perf_counter()
    trainer.fit()  # the remaining steps, and one validation of 128 images
    sync(trainer.device)
    rate = (args.steps - args.warmup) * BATCH / (time.perf_counter() - t)
    return {"samples_per_s": round(rate, 1), "gflop_per_sample": round(flops.get_total_flops() / BATCH / 1e9, 4),
            "tflops": rate * flops.get_total_flops() / BATCH / 1e12}, trainer


def nll_rate(trainer: Trainer, args) -> dict:
    test = trainer.data.test.take(torch.arange(min(args.nll_n, len(trainer.data.test))))
    with torch.no_grad(), FlopCounterMode(display=False) as flops:
        trainer.model(test.batch(torch.arange(1), trainer.device), None, args.k)
    sync(trainer.device)
    t = time.perf_counter()
    log_likelihood(trainer.model, test, k=args.k)
    sync(trainer.device)
    rate = len(test) * args.k / (time.perf_counter() - t)
    per_sample = flops.get_total_flops() / args.k
    return {"samples_per_s": round(rate), "examples": len(test), "k": args.k,
            "gflop_per_sample": round(per_sample / 1e9, 5), "tflops": rate * per_sample / 1e12}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="auto")
    p.add_argument("--precision", default="fp32", choices=list(DTYPES))
    p.add_argument("--compile", action="store_true")
    p.add_argument("--steps", type=int, default=50, help="training steps of each model, --warmup of them untimed")
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--nll-n", type=int, default=64)
    p.add_argument("--k", type=int, default=5000)
    args = p.parse_args()
    device = resolve(args.device, "--device")
    args.device = str(device)
    peak = peak_tflops(device, args.precision)
    results = {}
    results["mlp_vae"], _ = train_rate("vae", "fashion-mnist", (1, 28, 28), args, ["model.hidden=[512,512]",
                                                                                  "model.latent_dim=32"])
    results["conv_vae"], conv = train_rate("vae", "celeba", (3, 64, 64), args, ["model.arch=conv64",
                                                                                "model.latent_dim=32"])
    results["vqvae"], _ = train_rate("vqvae", "cifar10", (3, 32, 32), args)
    results["nll"] = nll_rate(conv, args)
    for r in results.values():
        r["fraction_of_peak"] = round(r.pop("tflops") / peak, 4)
    emit({
        "benchmark": "gpu",
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else f"cpu ({machine()['cpu']})",
        "precision": args.precision, "compile": args.compile, "steps": args.steps,
        "matmul_peak_tflops": round(peak, 3),
        **results,
        "machine": machine(),
    })


if __name__ == "__main__":
    main()
