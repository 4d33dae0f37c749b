"""Evaluation of a VQ-VAE: reconstruction quality and how the codebook is used."""
from __future__ import annotations

import math

import torch
from torch import nn

from .. import noise
from ..data import Split
from ..models import CODE_PRIOR, VQ_FAMILY
from .common import EVALUATORS, Reduce, batches, reconstruction_sums


@EVALUATORS.register(VQ_FAMILY.name)
@torch.no_grad()
def evaluate_vq(model: nn.Module, split: Split, *, batch_size: int = 1000, seed: int = 0,
                reduce: Reduce = None) -> dict:
    """``recon`` (-log p(x|z_q), nats per example; also the ``loss``), ``mse`` (per pixel), ``psnr`` (dB),
    ``ssim`` (against ``split.images``, the grey originals of a binarized split); codebook ``perplexity`` and ``codes_used`` (fraction) over the whole split, ``dead_codes``
    (codes no training batch used in the quantizer's last ``dead_window`` steps: ``vq.dead_after`` when set, as
    in the training logs) and ``code_counts`` (uses of each code)."""
    device = next(model.parameters()).device
    k = model.quantizer.num_codes
    sums = {name: torch.zeros((), dtype=torch.float64, device=device) for name in ("n", "recon", "se", "psnr", "ssim")}
    counts = torch.zeros(k, dtype=torch.float64, device=device)
    for i, x, _, images in batches(split, batch_size, device, False):
        with noise.batch_noise(noise.mix_seed(seed, i), device=device):  # a dequantizing likelihood draws u
            t = model(x)
        sums["n"] += len(x)
        sums["recon"] -= t.log_px_z.double().sum()
        for name, v in reconstruction_sums(images, model.likelihood.mean(t.out)).items():
            sums[name] += v
        counts += torch.bincount(t.vq.indices.flatten(), minlength=k).double()
    if reduce is not None:
        sums = {name: reduce(v) for name, v in sums.items()}
        counts = reduce(counts)
    n = sums["n"].item()
    p = counts / counts.sum()
    recon = sums["recon"].item() / n
    return {
        "n": int(n), "loss": recon, "recon": recon, "mse": sums["se"].item() / n, "psnr": sums["psnr"].item() / n,
        "ssim": sums["ssim"].item() / n,
        "perplexity": math.exp(-(p * torch.log(p.clamp(min=1e-30))).sum().item()),
        "codes_used": (counts > 0).double().mean().item(), "dead_codes": model.quantizer.dead_codes(),
        "code_counts": counts.long().tolist(),
    }


@EVALUATORS.register(CODE_PRIOR.name)
@torch.no_grad()
def evaluate_prior(model: nn.Module, split: Split, *, batch_size: int = 1000, seed: int = 0,
                   reduce: Reduce = None) -> dict:
    """A code prior on grids of codes: ``loss`` = -log p(codes) per grid (nats), and ``bits_per_code``."""
    device = next(model.parameters()).device
    n, nll = (torch.zeros((), dtype=torch.float64, device=device) for _ in range(2))
    for _, codes, _, _ in batches(split, batch_size, device, False):
        n += len(codes)
        nll += model.nll(codes).double().sum()
    if reduce is not None:
        n, nll = reduce(n), reduce(nll)
    loss = (nll / n).item()
    return {"n": int(n.item()), "loss": loss, "bits_per_code": loss / (split.pixels[0].numel() * math.log(2))}
