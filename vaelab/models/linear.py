"""The linear-Gaussian VAE, whose log p(x) is known exactly: the reference every likelihood estimator is checked
against.

With p(z) = N(0, I) and p(x|z) = N(W z + b, Psi), Psi = diag(sigma^2), the marginal is Gaussian,
x ~ N(b, W W^T + Psi): probabilistic PCA for an isotropic Psi = sigma^2 I (Tipping & Bishop 1999),
factor analysis for a per-pixel one. A VAE with a linear decoder and a learned isotropic sigma (``linear-vae``)
trains towards PPCA's maximum-likelihood solution, whose W spans the data's top principal components
(Tipping & Bishop 1999, eq. 7-8; Lucas et al. 2019). Its computations are float64.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from ..config import ConfigError, RunConfig
from ..data import DataFacts
from .build import MODELS, build_model
from .likelihood import Gaussian
from .networks import MLPDecoder
from .prior import StandardNormal
from .vae import VAE

LOG_2PI = math.log(2 * math.pi)


def linear_gaussian_parts(model: nn.Module) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None:
    """(W [D, d], b [D], psi [D]) of a VAE whose p(x) is the Gaussian N(b, W W^T + diag(psi)): a standard normal
    prior, a decoder that is one linear map, a Gaussian likelihood at the data's values (not a dequantized one), no
    label; else None. Float64."""
    decoder = getattr(model, "decoder", None)
    if not (isinstance(model, VAE) and not model.conditional and isinstance(model.prior, StandardNormal)
            and isinstance(decoder, MLPDecoder) and type(model.likelihood) is Gaussian):
        return None
    linears = [m for m in decoder.modules() if not isinstance(m, (MLPDecoder, nn.Sequential))]
    if len(linears) != 1 or not isinstance(linears[0], nn.Linear):
        return None
    psi = torch.exp(2 * model.likelihood.log_scale().detach().double()).expand(decoder.shape).flatten()
    return linears[0].weight.detach().double(), linears[0].bias.detach().double(), psi


def _parts(model: nn.Module) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    parts = linear_gaussian_parts(model)
    if parts is None:
        raise ConfigError("an exact log p(x) needs a linear-Gaussian VAE (model linear-vae: model.hidden=[], a "
                          "Gaussian likelihood, the standard normal prior, not conditional)")
    return parts


def linear_vae(W: torch.Tensor, b: torch.Tensor, sigma: float) -> VAE:
    """A ``linear-vae`` with decoder W [D, d], bias b [D] (an image of shape [1, 1, D]) and isotropic ``sigma``,
    its encoder set to the exact posterior's mean and the best diagonal variance, 1 / diag(M) (the KL(q || p)
    optimum; exact when W's columns are orthogonal)."""
    D, d = W.shape
    cfg = RunConfig().override(MODELS.get("linear-vae").presets).override(
        {"model": {"name": "linear-vae", "latent_dim": d, "sigma": sigma}})
    model = build_model(cfg, DataFacts((1, 1, D)))
    with torch.no_grad():
        model.decoder.net[-1].weight.copy_(W)
        model.decoder.net[-1].bias.copy_(b)
        G, c, S = exact_posterior(model)
        model.q.head.weight.zero_()
        model.q.head.weight[:d].copy_(G)
        model.q.head.bias.copy_(torch.cat([c, -torch.linalg.inv(S).diagonal().log()]))
    return model


def _woodbury(W: torch.Tensor, psi: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(A = Psi^-1 W [D, d], the Cholesky factor L of M = I + W^T Psi^-1 W [d, d])."""
    A = W / psi[:, None]
    return A, torch.linalg.cholesky(torch.eye(W.shape[1], dtype=W.dtype, device=W.device) + W.T @ A)


@torch.no_grad()
def exact_log_px(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """log N(x; b, C), C = W W^T + Psi, for x [N, C, H, W]: [N] float64, in O(N D d) by the matrix determinant
    lemma and the Woodbury identity, never forming C: log|C| = log|Psi| + log|M| and
    r^T C^-1 r = r^T Psi^-1 r - |L^-1 A^T r|^2, with r = x - b, A = Psi^-1 W, M = I + W^T A = L L^T."""
    W, b, psi = _parts(model)
    r = x.flatten(1).to(W) - b  # [N, D]
    A, L = _woodbury(W, psi)
    s = torch.linalg.solve_triangular(L, (r @ A).T, upper=False)  # L^-1 A^T r: [d, N]
    quad = (r**2 / psi).sum(1) - (s**2).sum(0)
    log_det = psi.log().sum() + 2 * L.diagonal().log().sum()
    return -0.5 * (len(b) * LOG_2PI + log_det + quad)


@torch.no_grad()
def exact_posterior(model: nn.Module) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The true posterior p(z|x) = N(G x + c, S) of a linear-Gaussian VAE: (G [d, D], c [d], S [d, d]), with
    S = M^-1 and G = M^-1 W^T Psi^-1, c = -G b (for Psi = sigma^2 I: Tipping & Bishop 1999)."""
    W, b, psi = _parts(model)
    A, L = _woodbury(W, psi)
    S = torch.cholesky_inverse(L)
    G = S @ A.T
    return G, -G @ b, S


def ppca_fit(x: torch.Tensor, d: int) -> tuple[torch.Tensor, torch.Tensor, float]:
    """Probabilistic PCA's maximum-likelihood (W [D, d], b [D], sigma^2) for data x [N, ...] (Tipping & Bishop
    1999, eq. 7-8): b the mean, sigma^2 the mean of the D - d smallest eigenvalues of the sample covariance, W the
    top d eigenvectors scaled by sqrt(lambda - sigma^2) (up to a rotation of z). Float64."""
    x = x.flatten(1).double()
    b = x.mean(0)
    lam, U = torch.linalg.eigh((x - b).T @ (x - b) / len(x))  # ascending
    lam, U = lam.flip(0), U.flip(1)
    sigma2 = lam[d:].mean().item()
    return U[:, :d] * (lam[:d] - sigma2).clamp(min=0).sqrt(), b, sigma2


def principal_angles(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """The principal angles (radians, ascending) between the column spaces of a [D, p] and b [D, q]
    (Björck & Golub 1973): arccos of the singular values of Q_a^T Q_b. Float64."""
    qa, qb = torch.linalg.qr(a.double()).Q, torch.linalg.qr(b.double()).Q
    return torch.arccos(torch.linalg.svdvals(qa.T @ qb).clamp(max=1))
