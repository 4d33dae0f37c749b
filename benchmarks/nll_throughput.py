"""Importance samples per second of ``vaelab.eval.log_likelihood`` against, in the same run:

- ``bare``: a bare PyTorch computation of the same quantity (encode once, decode chunks of samples for a
  batch of examples, logsumexp), written without vaelab, in passes of vaelab's sizes (``pass_sizes``);
- ``per_example``: the common pattern that loops over examples in Python and batches only the K samples
  of one example.

Targets: vaelab at least 0.9x as fast as ``bare`` and 3x as fast as ``per_example`` (``target_met``). At large K
the per-example loop already decodes K rows per pass, as many as vaelab's budget, so it is about as fast.

Model: the MLP VAE of the training benchmark (784-512-512-32, Bernoulli), on Fashion-MNIST test images.

    python benchmarks/nll_throughput.py [--n 200 --k 5000]
"""
from __future__ import annotations

import argparse
import math
import time

import torch
import torch.nn.functional as F

from common import emit, machine, matmul_peak_gflops
from vaelab.config import RunConfig
from vaelab.eval import log_likelihood
from vaelab.eval.likelihood import pass_sizes
from vaelab.models import build_model
from vaelab.train import load_run_data

LOG_2PI = math.log(2 * math.pi)
TARGETS = {"vaelab_over_bare": 0.9, "vaelab_over_per_example": 3.0}


def log_w_bare(model, x, k):
    """log p(x|z) + log p(z) - log q(z|x) for k samples of each x, in plain torch: [k, B]."""
    h = model.encoder.net(x.flatten(1))
    mu, logvar = model.q.head(h).chunk(2, -1)
    std = torch.exp(0.5 * logvar)
    eps = torch.randn(k, *mu.shape)
    z = mu + std * eps
    logits = model.decoder.net(z)  # [k, B, 784]
    log_px_z = -F.binary_cross_entropy_with_logits(logits, x.flatten(1).expand_as(logits), reduction="none").sum(-1)
    log_pz = -0.5 * (LOG_2PI + z**2).sum(-1)
    log_qz = -0.5 * (LOG_2PI + logvar + eps**2).sum(-1)
    return log_px_z + log_pz - log_qz


@torch.no_grad()
def bare(model, x, k):
    batch, chunk = pass_sizes(k, x[0].numel())
    out = []
    for b in range(0, len(x), batch):
        xb = x[b:b + batch]
        parts = [torch.logsumexp(log_w_bare(model, xb, min(chunk, k - c)).double(), 0) for c in range(0, k, chunk)]
        out.append(torch.logsumexp(torch.stack(parts), 0) - math.log(k))
    return torch.cat(out)


@torch.no_grad()
def per_example(model, x, k):
    return torch.stack([torch.logsumexp(log_w_bare(model, xi[None], k).double(), 0)[0] - math.log(k) for xi in x])


def timed(fn):
    t = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=200, help="test images")
    p.add_argument("--k", type=int, nargs="+", default=[5000, 50], help="importance samples per image")
    p.add_argument("--repeats", type=int, default=2)
    args = p.parse_args()

    cfg = RunConfig().set(["data.name=fashion-mnist", "model.hidden=[512, 512]", "model.latent_dim=32"])
    data = load_run_data(cfg)
    torch.manual_seed(0)
    model = build_model(cfg.model).eval()
    x = data.test.x[:args.n]
    peak = matmul_peak_gflops()
    macs = 32 * 512 + 512 * 512 + 512 * 784  # decoder, per sample (the encoder runs once per image)
    rows = [measure(model, x, k, args.repeats, peak, macs) for k in args.k]
    emit({"benchmark": "nll_throughput",
          "model": "MLP VAE 784-512-512-32, Bernoulli (untrained weights; speed does not depend on them)",
          "images": args.n, "rows": rows, "matmul_peak_gflops": round(peak, 1), "machine": machine()})


def measure(model, x, k, repeats, peak, macs) -> dict:
    runs = {"vaelab": [], "bare": [], "per_example": []}
    estimates = {}
    for _ in range(repeats):
        for name, fn in (("vaelab", lambda: log_likelihood(model, x, k=k)["log_px"]),
                         ("bare", lambda: bare(model, x, k)),
                         ("per_example", lambda: per_example(model, x, k))):
            estimates[name], dt = timed(fn)
            runs[name].append(len(x) * k / dt)
    best = {name: max(v) for name, v in runs.items()}
    ratios = {"vaelab_over_bare": best["vaelab"] / best["bare"],
              "vaelab_over_per_example": best["vaelab"] / best["per_example"]}
    return {
        "k": k,
        "samples_per_s": {name: round(v) for name, v in best.items()},
        "all_runs": {name: [round(v) for v in r] for name, r in runs.items()},
        **{name: round(r, 3) for name, r in ratios.items()},
        "targets": TARGETS, "target_met": {name: r >= TARGETS[name] for name, r in ratios.items()},
        "nll_per_method": {name: round(-v.mean().item(), 3) for name, v in estimates.items()},
        "decoder_gflops": {name: round(v * 2 * macs / 1e9, 1) for name, v in best.items()},
        "decoder_fraction_of_peak": {name: round(v * 2 * macs / 1e9 / peak, 3) for name, v in best.items()},
    }


if __name__ == "__main__":
    main()
