"""Evaluation of an autoencoder without a likelihood (WAE, AAE, VAE-GAN): what it shares with every model, not an
ELBO. Reconstruction (squared error per example, MSE per pixel, PSNR, SSIM), the MMD between its codes and the
prior, active units, and for a Gaussian encoder the KL to the prior."""
from __future__ import annotations

import torch
from torch import nn

from .. import noise
from ..data import Split
from ..models import AUTOENCODER
from .common import EVALUATORS, CodeSample, Reduce, batches, reconstruction_sums
from .metrics import ACTIVE_UNIT_THRESHOLD


@EVALUATORS.register(AUTOENCODER.name)
@torch.no_grad()
def evaluate_autoencoder(model: nn.Module, split: Split, *, batch_size: int = 1000, seed: int = 0,
                         reduce: Reduce = None) -> dict:
    """``loss`` (the validation criterion) and ``sse``: ||x - x^||^2 summed over pixels, per example, x^ decoded
    at the posterior mean; ``mse``/``psnr``/``ssim`` of the same reconstruction; ``mmd``
    (:class:`~vaelab.eval.common.CodeSample`, codes z ~ q(z|x)); ``active_units`` (Cov_x(E_q[z_i|x]) > 0.01);
    ``kl`` for a Gaussian encoder."""
    device = next(model.parameters()).device
    d = model.latent_dim
    sums = {k: torch.zeros((), dtype=torch.float64, device=device) for k in ("n", "sse", "kl", "se", "psnr", "ssim")}
    sums.update({k: torch.zeros(d, dtype=torch.float64, device=device) for k in ("mu", "mu2")})
    codes = CodeSample()
    gaussian = False
    for i, x, y, images in batches(split, batch_size, device, model.conditional):
        with noise.batch_noise(noise.mix_seed(seed, i), device=device):
            t = model(x, y)
        x_hat = model.decoder_mean(t.q.mean, y)
        sums["n"] += len(x)
        sums["sse"] += ((x - x_hat) ** 2).flatten(1).sum(1).double().sum()
        for k, v in reconstruction_sums(images, x_hat).items():  # against a binarized split's grey originals
            sums[k] += v
        mu = t.q.mean.double()
        sums["mu"] += mu.sum(0)
        sums["mu2"] += (mu**2).sum(0)
        gaussian = t.kl is not None
        if gaussian:
            sums["kl"] += t.kl.double().sum()
        codes.add(t.z)
    sums |= codes.sums(model.prior, seed)
    if reduce is not None:
        sums = {k: reduce(v) for k, v in sums.items()}
    n = sums["n"]
    var_mu = (sums["mu2"] / n - (sums["mu"] / n) ** 2).clamp(min=0)
    sse = (sums["sse"] / n).item()
    result = {"n": int(n.item()), "loss": sse, "sse": sse, "mse": (sums["se"] / n).item(),
              "psnr": (sums["psnr"] / n).item(), "ssim": (sums["ssim"] / n).item(),
              "mmd": (sums["mmd"] / sums["mmd_parts"]).item(),
              "active_units": int((var_mu > ACTIVE_UNIT_THRESHOLD).sum().item()), "var_mu": var_mu.tolist()}
    return result | ({"kl": (sums["kl"] / n).item()} if gaussian else {})
