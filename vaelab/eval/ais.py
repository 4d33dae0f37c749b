"""Annealed importance sampling for log p(x) (Neal 2001), with HMC transitions (Wu et al. 2017).

The chain anneals from q(z|x) to the posterior through f_t(z) = q(z|x)^(1-b_t) p(x, z)^b_t along a
sigmoid schedule b_0 = 0 < ... < b_T = 1; the log weight adds (b_t - b_(t-1)) [log p(x, z) - log q(z|x)]
at each step, and one HMC move (``leapfrog`` steps) leaves f_t invariant. Every (chain, example) pair
moves at once, with its own step size adapted towards 65% acceptance.
"""
from __future__ import annotations

import math

import torch
from torch import nn
from tqdm import tqdm

from .. import noise
from ..data import Split
from .likelihood import split_of, summarize

TARGET_ACCEPTANCE = 0.65


def sigmoid_schedule(steps: int, rad: float = 4.0) -> torch.Tensor:
    """b_0..b_T from 0 to 1, dense at both ends (Wu et al. 2017, appendix)."""
    s = torch.sigmoid(torch.linspace(-rad, rad, steps + 1, dtype=torch.float64))
    return (s - s[0]) / (s[-1] - s[0])


def ais_log_likelihood(model: nn.Module, data: Split | torch.Tensor, *, steps: int = 500, chains: int = 16,
                       leapfrog: int = 10, step_size: float = 0.05, batch_size: int = 100, seed: int = 0,
                       progress: bool = False) -> dict:
    """AIS estimate of log p(x) per example; same keys as :func:`~vaelab.eval.likelihood.log_likelihood`
    plus ``acceptance`` (mean HMC acceptance rate)."""
    split = split_of(data)
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    betas = sigmoid_schedule(steps).tolist()
    log_px = torch.empty(len(split), dtype=torch.float64)
    accepted = 0.0
    bar = tqdm(total=-(-len(split) // batch_size) * steps, disable=not progress, desc="AIS")
    for i, start in enumerate(range(0, len(split), batch_size)):
        x = split.x[start:start + batch_size].to(device)
        y = None if split.y is None or not model.conditional else split.y[start:start + batch_size].to(device)
        with noise.batch_noise(noise.mix_seed(seed, i), device=device):
            log_w, acc = _anneal(model, x, y, betas, chains, leapfrog, step_size, bar)
        log_px[start:start + len(x)] = (torch.logsumexp(log_w.double(), 0) - math.log(chains)).cpu()
        accepted += acc * len(x)
    bar.close()
    model.train(was_training)
    return summarize(-log_px, model, split.x) | {
        "steps": steps, "chains": chains, "leapfrog": leapfrog, "acceptance": accepted / len(split), "log_px": log_px}


def _anneal(model, x, y, betas, chains, leapfrog, step_size, bar) -> tuple[torch.Tensor, float]:
    with torch.no_grad():
        q = model.posterior(x, y)
        q = getattr(q, "base", q)  # a flow's Gaussian base: any fixed normalized start is valid for AIS
        q = type(q)(q.mu.detach(), q.logvar.detach())
        z = q.rsample(chains)  # [S, B, D]

    def log_ratio(z):  # log p(x, z) - log q(z|x): [S, B]
        return model.log_joint(x, z, y) - q.log_prob(z)

    def energy_and_grad(z, beta):  # U = -log f_beta(z) and dU/dz
        with torch.enable_grad():
            z = z.detach().requires_grad_(True)
            u = -(q.log_prob(z) + beta * log_ratio(z))
            (grad,) = torch.autograd.grad(u.sum(), z)
        return u.detach(), grad

    log_w = torch.zeros(z.shape[:2], dtype=torch.float64, device=z.device)
    eps = torch.full((*z.shape[:2], 1), step_size, device=z.device)
    acc_sum = 0.0
    with torch.no_grad():
        r = log_ratio(z)
    for b_prev, b in zip(betas[:-1], betas[1:]):
        log_w += (b - b_prev) * r.double()
        z, accept = _hmc(z, b, eps, leapfrog, energy_and_grad)
        rate = accept.float().mean(0, keepdim=True)[..., None]  # per example, over chains: [1, B, 1]
        eps = eps * torch.where(rate > TARGET_ACCEPTANCE, 1.02, 0.98)
        acc_sum += accept.float().mean().item()
        with torch.no_grad():
            r = log_ratio(z)
        bar.update(1)
    return log_w, acc_sum / (len(betas) - 1)


def _hmc(z, beta, eps, leapfrog, energy_and_grad):
    """One HMC transition (Neal 2011) for all chains at once; returns the new z and who accepted."""
    p0 = noise.randn(z.shape, batch_dim=1, device=z.device, dtype=z.dtype)
    u0, grad = energy_and_grad(z, beta)
    z_new, p = z, p0 - 0.5 * eps * grad
    for step in range(leapfrog):
        z_new = z_new + eps * p
        u_new, grad = energy_and_grad(z_new, beta)
        p = p - (eps if step < leapfrog - 1 else 0.5 * eps) * grad
    h0 = u0 + 0.5 * (p0**2).sum(-1)
    h1 = u_new + 0.5 * (p**2).sum(-1)
    log_u = torch.log(noise.rand(h0.shape, batch_dim=1, device=z.device, dtype=h0.dtype))
    accept = (log_u < h0 - h1) & torch.isfinite(h1)
    return torch.where(accept[..., None], z_new, z), accept
