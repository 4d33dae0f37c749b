"""Importance-sampled log-likelihood, vectorized over examples and samples.

log p(x) ~= log (1/K) sum_k p(x, z_k) / q(z_k|x),  z_k ~ q(z|x)   (Burda et al. 2016, eq. 8 as K grows).
Each pass decodes ``chunk`` samples for each of ``batch_size`` examples at once (rows = chunk x batch_size, as
many as fit a budget of decoder-output elements); the chunks' log-sum-exps are combined, so no Python loop runs
over examples or samples.
"""
from __future__ import annotations

import math

import torch
from torch import nn
from tqdm import tqdm

from .. import noise
from ..data import Split
from .bpd import bits_per_dim, bpd_convention
from .common import DEFAULT_EVAL_BATCH, eval_batch_size, evaluating

MAX_ELEMENTS = 4096 * 784  # decoded data elements per pass: 4096 (sample, example) rows of 28x28 images,
# enough for fast matmuls, few enough for the [rows, pixels] outputs to stay in cache (16384 rows ran 35% slower
# on 2 cores); 261 rows of 64x64 colour images, so conv decoders' activations stay in memory too


def pass_sizes(k: int, dims: int, batch_size: int | None = None, max_elements: int = MAX_ELEMENTS
               ) -> tuple[int, int]:
    """(examples, samples of each) per pass for K samples of examples of ``dims`` elements (the decoder's output
    per row, for a Bernoulli or Gaussian likelihood): rows = their product, at most max_elements // dims and more
    than half of that unless K is smaller. ``batch_size`` (default: at least 10 examples, more when K is small)
    is capped at the row budget."""
    rows = max(1, max_elements // dims)
    batch = min(batch_size or max(10, rows // k), rows)
    return batch, max(1, min(k, rows // batch))


def split_of(data: Split | torch.Tensor, y: torch.Tensor | None = None) -> Split:
    return data if isinstance(data, Split) else Split(data, y)


@torch.no_grad()
def log_likelihood(model: nn.Module, data: Split | torch.Tensor, *, k: int = 5000, batch_size: int | None = None,
                   max_elements: int | None = None, seed: int = 0, progress: bool = False) -> dict:
    """The K-sample importance-sampled estimate of log p(x) for every example of ``data``.

    Returns ``nll`` (mean -log p(x), nats per example), ``nll_se`` (standard error of that mean over
    examples), ``bpd`` (bits per dimension, None where they mean nothing) and the ``bpd_convention`` that gave
    them (see :mod:`vaelab.eval.bpd`), ``k``, and ``log_px`` (the per-example estimates, [N]).
    The estimate is a stochastic lower bound on log p(x) whose bias shrinks as K grows.
    ``batch_size`` examples (see :func:`pass_sizes`) are estimated together, their samples decoded in passes of
    at most ``max_elements`` decoded data elements: by default MAX_ELEMENTS, scaled down for models with wide
    activations at every pixel as their :func:`~vaelab.eval.eval_batch_size` is (a PixelCNN decoder ran
    3x faster at a fortieth of the rows).
    """
    split = split_of(data)
    with evaluating(model):
        log_px = _log_likelihood(model, split, k, batch_size, max_elements, seed, progress)
    return summarize(-log_px, model, split.pixels) | {"k": k, "log_px": log_px}


def _log_likelihood(model, split, k, batch_size, max_elements, seed, progress) -> torch.Tensor:
    device = next(model.parameters()).device
    max_elements = max_elements or MAX_ELEMENTS * eval_batch_size(model) // DEFAULT_EVAL_BATCH
    batch_size, chunk = pass_sizes(k, split.pixels[0].numel(), batch_size, max_elements)
    n_chunks = -(-k // chunk)
    log_px = torch.empty(len(split), dtype=torch.float64)
    bar = tqdm(total=len(split) * k, unit="sample", unit_scale=True, disable=not progress, desc="log p(x)")
    for i, start in enumerate(range(0, len(split), batch_size)):
        x = split.batch(slice(start, start + batch_size), device)
        y = None if split.y is None or not model.conditional else split.y[start:start + batch_size].to(device)
        parts = []
        for j, c0 in enumerate(range(0, k, chunk)):
            c = min(chunk, k - c0)
            with noise.batch_noise(noise.mix_seed(seed, i * n_chunks + j), device=device):
                log_w = model(x, y, c).log_w  # [c, B]
            parts.append(torch.logsumexp(log_w.double(), 0))
            bar.update(c * len(x))
        log_px[start:start + len(x)] = (torch.logsumexp(torch.stack(parts), 0) - math.log(k)).cpu()
    bar.close()
    return log_px


def summarize(nll: torch.Tensor, model: nn.Module, x: torch.Tensor) -> dict:
    """Mean NLL of data x, its standard error over examples, and bits per dimension under the convention of
    ``model``'s likelihood (None where there is none)."""
    mean = nll.mean().item()
    se = (nll.std() / math.sqrt(len(nll))).item() if len(nll) > 1 else float("nan")
    convention = bpd_convention(model, x)
    return {"nll": mean, "nll_se": se, "bpd": bits_per_dim(mean, x[0].numel(), convention),
            "bpd_convention": convention}
