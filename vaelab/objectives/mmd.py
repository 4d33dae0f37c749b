"""Maximum mean discrepancy (Gretton et al. 2012) between a sample of codes and a sample of the prior, the latent
penalty of InfoVAE (Zhao et al. 2019) and WAE-MMD (Tolstikhin et al. 2018).

MMD^2_u = 1/(n(n-1)) sum_{i != j} k(x_i, x_j) + 1/(m(m-1)) sum_{i != j} k(y_i, y_j) - 2/(nm) sum_{i,j} k(x_i, y_j)
is the unbiased U-statistic (Gretton et al. 2012, eq. 3): its expectation is MMD^2 (0 when both samples come from
one distribution), so single draws fall below 0 as often as above. The diagonals k(x_i, x_i) are left out.
"""
from __future__ import annotations

import torch

from torch import nn

from ..config import ConfigError
from ..registry import Registry
from .base import global_batch, inner

WAE_SCALES = (0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0)  # the multiples of C summed over (the WAE's released code)
KERNELS: Registry = Registry("MMD kernel")


@KERNELS.register("imq")
def imq(d2: torch.Tensor, dim: int, scale: float) -> torch.Tensor:
    """Inverse multiquadratic k(x, y) = C / (C + ||x - y||^2), C = 2 d_z sigma_z^2 x scale for the prior N(0, I)
    (Tolstikhin et al. 2018, §4): heavier tails than a Gaussian, so distant codes still get a gradient."""
    c = 2.0 * dim * scale
    return (d2 / c).add_(1).reciprocal_()  # 1 / (1 + d2 / C): one [n, m] tensor made, not two


@KERNELS.register("rbf")
def rbf(d2: torch.Tensor, dim: int, scale: float) -> torch.Tensor:
    """Gaussian k(x, y) = exp(-||x - y||^2 / (2 sigma^2)) with 2 sigma^2 = d_z x scale: InfoVAE's kernel (Zhao et al.
    2019; 2 sigma^2 = d_z as in the authors' MMD-VAE tutorial)."""
    return (d2 * (-1 / (dim * scale))).exp_()


def check_kernel(where: str, kernel: str, scales) -> None:
    """ConfigError for an unknown kernel or scales that are not positive numbers (``where``: the option group)."""
    if kernel not in KERNELS.names():
        raise ConfigError(f"{where}.kernel must be one of {', '.join(KERNELS.names())}; got {kernel!r}")
    if not scales or any(not s > 0 for s in scales):
        raise ConfigError(f"{where}.scales must be a list of numbers > 0; got {scales!r}")


def squared_distances(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """||a_i - b_j||^2: [n, m] for a [n, D], b [m, D], in a's dtype, as |a|^2 + |b|^2 - 2 a.b in float64 (one GEMM,
    no [n, m, D] tensor: 1000 codes of 64 dimensions would take 0.5 GB). The cancellation costs ~1e-16 |a|^2."""
    a64, b64 = a.double(), b.double()
    d2 = (a64**2).sum(-1)[:, None] + (b64**2).sum(-1)[None] - 2 * a64 @ b64.T
    return d2.clamp(min=0).to(a.dtype)


def mmd_u(x: torch.Tensor, y: torch.Tensor, kernel: str = "imq", scales=WAE_SCALES) -> torch.Tensor:
    """The unbiased MMD^2 between samples x [n, D] and y [m, D] under the sum of ``kernel`` at ``scales``: a
    scalar tensor, differentiable in x and y."""
    if len(x) < 2 or len(y) < 2:
        raise ConfigError(f"the unbiased MMD needs at least 2 examples in each sample; got {len(x)} and {len(y)}")
    k = KERNELS.get(kernel)
    dim, n, m = x.shape[-1], len(x), len(y)
    dxx, dyy, dxy = squared_distances(x, x), squared_distances(y, y), squared_distances(x, y)
    total = x.new_zeros(())
    for s in scales:  # a handful of scales: one [n, n] matrix each
        kxx, kyy = k(dxx, dim, s), k(dyy, dim, s)
        off_xx = (kxx.sum() - kxx.diagonal().sum()) / (n * (n - 1))
        off_yy = (kyy.sum() - kyy.diagonal().sum()) / (m * (m - 1))
        total = total + off_xx + off_yy - 2 * k(dxy, dim, s).mean()
    return total


def prior_mmd(model: nn.Module, z: torch.Tensor, kernel: str, scales) -> torch.Tensor:
    """MMD^2_u between the global batch's codes z (this rank's [b, D]) and as many draws of the model's prior, a
    penalty on the distance of the aggregate posterior q(z) from p(z) (Zhao et al. 2019; Tolstikhin et al. 2018,
    Algorithm 2). The prior draws are the trainer's noise, so any number of ranks draws the same ones."""
    p = inner(model).prior.sample(len(z), device=z.device)  # [b, D]
    return mmd_u(global_batch(z), global_batch(p), kernel, scales)
