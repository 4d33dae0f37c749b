"""Annealed importance sampling for log p(x) (Neal 2001), with HMC transitions (Wu et al. 2017).

The chain anneals from q(z|x) to the posterior through f_t(z) = q(z|x)^(1-b_t) p(x, z)^b_t along a
sigmoid schedule b_0 = 0 < ... < b_T = 1; the log weight adds (b_t - b_(t-1)) [log p(x, z) - log q(z|x)]
at each step, and one HMC move (``leapfrog`` steps) leaves f_t invariant. Every (chain, example) pair
moves at once.

exp(log w) is an unbiased estimate of p(x) only if each step's transition is fixed before the weighted chains
run (Neal 2001): a step size tuned on their own acceptances makes the transition depend on their past.
So a warm-up anneals ``adapt_chains`` separate chains per example along the same schedule, adapting each
example's step size towards 65% acceptance, and the weighted pass reuses the step size each step had there.

A likelihood that draws noise of its own (the dequantized Gaussian's u) sees the same draw at every evaluation of a
chain's p(x, z): each chain anneals towards one fixed target p(y_u, z), and exp(log w) stays unbiased for
E_u p(y_u) (the 8-bit probability times 256^D).
"""
from __future__ import annotations

import math

import torch
from torch import nn
from tqdm import tqdm

from .. import noise
from ..data import Split
from .common import evaluating
from .likelihood import split_of, summarize

TARGET_ACCEPTANCE = 0.65


def sigmoid_schedule(steps: int, rad: float = 4.0) -> torch.Tensor:
    """b_0..b_T from 0 to 1, dense at both ends (Wu et al. 2017, appendix)."""
    s = torch.sigmoid(torch.linspace(-rad, rad, steps + 1, dtype=torch.float64))
    return (s - s[0]) / (s[-1] - s[0])


def ais_log_likelihood(model: nn.Module, data: Split | torch.Tensor, *, steps: int = 500, chains: int = 16,
                       leapfrog: int = 10, step_size: float = 0.05, adapt_chains: int = 4, batch_size: int = 100,
                       seed: int = 0, progress: bool = False) -> dict:
    """AIS estimate of log p(x) per example; same keys as :func:`~vaelab.eval.likelihood.log_likelihood`
    plus ``acceptance`` (mean HMC acceptance rate of the weighted chains). ``step_size`` is where the warm-up
    on ``adapt_chains`` chains per example starts adapting from."""
    split = split_of(data)
    with evaluating(model):
        log_px, acceptance = _ais(model, split, steps, chains, leapfrog, step_size, adapt_chains, batch_size, seed,
                                  progress)
    return summarize(-log_px, model, split.pixels) | {
        "steps": steps, "chains": chains, "leapfrog": leapfrog, "adapt_chains": adapt_chains,
        "acceptance": acceptance, "log_px": log_px}


def _ais(model, split, steps, chains, leapfrog, step_size, adapt_chains, batch_size, seed, progress
         ) -> tuple[torch.Tensor, float]:
    device = next(model.parameters()).device
    betas = sigmoid_schedule(steps).tolist()
    log_px = torch.empty(len(split), dtype=torch.float64)
    accepted = 0.0
    bar = tqdm(total=-(-len(split) // batch_size) * 2 * steps, disable=not progress, desc="AIS")
    for i, start in enumerate(range(0, len(split), batch_size)):
        x = split.batch(slice(start, start + batch_size), device)
        y = None if split.y is None or not model.conditional else split.y[start:start + batch_size].to(device)
        target = noise.mix_seed(seed, -1 - i)  # the likelihood's own noise, fixed per chain
        with noise.batch_noise(noise.mix_seed(seed, i), device=device):
            eps = adapt_step_sizes(model, x, y, betas, adapt_chains, leapfrog, step_size, bar, target)
            log_w, acc = _anneal(model, x, y, betas, chains, leapfrog, eps, bar, target)
        log_px[start:start + len(x)] = (torch.logsumexp(log_w, 0) - math.log(chains)).cpu()
        accepted += acc * len(x)
    bar.close()
    return log_px, accepted / len(split)


def _start(model, x, y, chains, target):
    """z_0 ~ q(z|x) for ``chains`` chains per example ([S, B, D]), log p(x, z) - log q(z|x), and the energy of
    f_beta with its gradient. Every evaluation of log p(x, z) draws the likelihood's noise (if any) from the seed
    ``target``: the same for a chain at every step."""
    with torch.no_grad():
        q = model.posterior(x, y)
        q = getattr(q, "base", q)  # a flow's Gaussian base: any fixed normalized start is valid for AIS
        q = type(q)(q.mu.detach(), q.logvar.detach())
        z = q.rsample(chains)  # [S, B, D]

    def log_ratio(z):  # log p(x, z) - log q(z|x): [S, B]
        with noise.batch_noise(target, device=z.device):
            return model.log_joint(x, z, y) - q.log_prob(z)

    def energy_and_grad(z, beta):  # U = -log f_beta(z) and dU/dz
        with torch.enable_grad():
            z = z.detach().requires_grad_(True)
            u = -(q.log_prob(z) + beta * log_ratio(z))
            (grad,) = torch.autograd.grad(u.sum(), z)
        return u.detach(), grad

    return z, log_ratio, energy_and_grad


def adapt_step_sizes(model, x, y, betas, chains, leapfrog, step_size, bar, target) -> torch.Tensor:
    """The warm-up: anneal ``chains`` chains per example, none weighted, multiplying each example's step size by
    1.02 after a step where more than 65% of its chains accepted, else by 0.98. Returns the step size each
    annealing step used: [T, B]."""
    z, _, energy_and_grad = _start(model, x, y, chains, target)
    eps = torch.full((1, len(x), 1), step_size, device=z.device)  # per example: [1, B, 1]
    used = []
    for b in betas[1:]:
        used.append(eps[0, :, 0])
        z, accept = _hmc(z, b, eps, leapfrog, energy_and_grad)
        eps = eps * torch.where(accept.float().mean(0)[None, :, None] > TARGET_ACCEPTANCE, 1.02, 0.98)
        bar.update(1)
    return torch.stack(used)


def _anneal(model, x, y, betas, chains, leapfrog, eps, bar, target) -> tuple[torch.Tensor, float]:
    """The weighted pass with step sizes fixed in advance, eps [T, B]: (log w [S, B] float64, mean acceptance)."""
    z, log_ratio, energy_and_grad = _start(model, x, y, chains, target)
    log_w = torch.zeros(z.shape[:2], dtype=torch.float64, device=z.device)
    acc_sum = 0.0
    with torch.no_grad():
        r = log_ratio(z)
    for t, (b_prev, b) in enumerate(zip(betas[:-1], betas[1:])):
        log_w += (b - b_prev) * r.double()
        z, accept = _hmc(z, b, eps[t][None, :, None], leapfrog, energy_and_grad)
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
