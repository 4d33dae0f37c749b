"""ELBO-based evaluation of a model on a data split, batched; one function for validation and ``vaelab eval``."""
from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from .. import noise
from ..data import Split

ACTIVE_UNIT_THRESHOLD = 0.01  # Burda et al. 2016, §5.2: A_u = Cov_x(E_q[u|x]) > 0.01


@torch.no_grad()
def evaluate(model: nn.Module, split: Split, *, batch_size: int = 1000, seed: int = 0,
             reduce: Callable[[torch.Tensor], torch.Tensor] | None = None) -> dict:
    """Negative ELBO, its reconstruction and KL parts (nats per example), MSE of the reconstruction
    (decoder mean at the posterior mean, per pixel), active units and KL per latent dimension.

    ``reduce`` sums the running totals over processes when each holds a shard of ``split``.
    """
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    d = model.latent_dim
    # running sums: n, -log p(x|z), KL, squared error, mu, mu^2, KL per dim
    sums = {k: torch.zeros((), dtype=torch.float64, device=device) for k in ("n", "recon", "kl", "se")}
    sums.update({k: torch.zeros(d, dtype=torch.float64, device=device) for k in ("mu", "mu2", "kl_dim")})
    for i, start in enumerate(range(0, len(split), batch_size)):
        x = split.x[start:start + batch_size].to(device)
        y = None if split.y is None or not model.conditional else split.y[start:start + batch_size].to(device)
        with noise.batch_noise(noise.mix_seed(seed, i), device=device):
            t = model(x, y)
        mu = t.q.mean.double()
        x_hat = model.decode(t.q.mean, y)
        sums["n"] += len(x)
        sums["recon"] -= t.log_px_z.double().sum()
        sums["kl"] += t.kl.double().sum()
        sums["se"] += ((x_hat - x) ** 2).double().sum() / x[0].numel()
        sums["mu"] += mu.sum(0)
        sums["mu2"] += (mu**2).sum(0)
        if t.kl_per_dim is not None:
            sums["kl_dim"] += t.kl_per_dim.double().sum(0)
    if reduce is not None:
        sums = {k: reduce(v) for k, v in sums.items()}
    model.train(was_training)
    n = sums["n"]
    var_mu = sums["mu2"] / n - (sums["mu"] / n) ** 2  # Cov_x(E_q[z_i]) for each i
    recon, kl = (sums["recon"] / n).item(), (sums["kl"] / n).item()
    return {
        "n": int(n.item()),
        "nelbo": recon + kl,
        "recon": recon,
        "kl": kl,
        "mse": (sums["se"] / n).item(),
        "active_units": int((var_mu > ACTIVE_UNIT_THRESHOLD).sum().item()),
        "kl_per_dim": (sums["kl_dim"] / n).tolist(),
        "var_mu": var_mu.tolist(),
    }
