"""Normalizing-flow posteriors: q_K(z_K|x) = q_0(z_0|x) pushed through invertible maps, with
log q_K(z_K) = log q_0(z_0) - sum_t log |det dz_t/dz_(t-1)|.

- planar flows (Rezende & Mohamed 2015, eq. 10-12), amortized: the encoder outputs each flow's (u, w, b),
  and u is constrained so that w^T u >= -1, which keeps each map invertible (appendix A);
- inverse autoregressive flow (Kingma et al. 2016, eq. 10-14) with MADE networks (Germain et al. 2015)
  that also see the encoder's context h.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .posterior import DiagonalGaussian


def planar_constrained_u(u: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """u_hat = u + (m(w^T u) - w^T u) w / ||w||^2 with m(a) = -1 + softplus(a), so w^T u_hat > -1."""
    wu = (w * u).sum(-1, keepdim=True)
    return u + (-1 + F.softplus(wu) - wu) * w / (w**2).sum(-1, keepdim=True)


def planar(z: torch.Tensor, u: torch.Tensor, w: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """f(z) = z + u_hat tanh(w^T z + b) and log |det df/dz| = log |1 + u_hat^T (1 - tanh^2) w|.
    z [..., B, D]; u, w [B, D]; b [B, 1]."""
    u_hat = planar_constrained_u(u, w)
    a = torch.tanh((z * w).sum(-1, keepdim=True) + b)  # [..., B, 1]
    psi = (1 - a**2) * w
    log_det = torch.log((1 + (psi * u_hat).sum(-1)).abs() + 1e-8)
    return z + u_hat * a, log_det


class MaskedLinear(nn.Linear):
    """A linear layer whose weight is multiplied by a fixed 0/1 mask (Germain et al. 2015)."""

    def __init__(self, n_in: int, n_out: int, mask: torch.Tensor):
        super().__init__(n_in, n_out)
        self.register_buffer("mask", mask)

    def forward(self, x):
        return F.linear(x, self.weight * self.mask, self.bias)


class MADE(nn.Module):
    """Outputs (m, s) [..., D] where output i depends on inputs < i (in ``order``) and on the context h."""

    def __init__(self, dim: int, context: int, hidden: int, order: torch.Tensor):
        super().__init__()
        deg_in = order  # degree of input i: its position in the autoregressive order (1..D)
        deg_h = torch.arange(hidden) % max(1, dim - 1) + 1
        self.inp = MaskedLinear(dim, hidden, (deg_h[:, None] >= deg_in[None, :]).float())
        self.ctx = nn.Linear(context, hidden)
        self.mid = MaskedLinear(hidden, hidden, (deg_h[:, None] >= deg_h[None, :]).float())
        out_mask = (deg_in[:, None] > deg_h[None, :]).float()
        self.out = MaskedLinear(hidden, 2 * dim, torch.cat([out_mask, out_mask]))

    def forward(self, z: torch.Tensor, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        a = F.elu(self.inp(z) + self.ctx(h))
        a = F.elu(self.mid(a))
        return self.out(a).chunk(2, -1)


class FlowGaussian:
    """q_K: a diagonal Gaussian base followed by flow steps. ``steps`` are callables z -> (z', log_det)."""

    def __init__(self, base: DiagonalGaussian, steps: list):
        self.base, self.steps = base, steps

    def _push(self, z, log_q):
        for step in self.steps:
            z, log_det = step(z)
            log_q = log_q - log_det
        return z, log_q

    def rsample_and_log_prob(self, k: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        z0 = self.base.rsample(k)
        return self._push(z0, self.base.log_prob(z0))

    @property
    def mean(self) -> torch.Tensor:
        """The base mean pushed through the flow (the flow's mode-like point, used as the code of x)."""
        return self._push(self.base.mu, torch.zeros(self.base.mu.shape[:-1], device=self.base.mu.device))[0]


class PlanarPosterior(nn.Module):
    """Encoder features h -> q_0 and the (u, w, b) of ``flows`` planar maps."""

    def __init__(self, in_features: int, latent_dim: int, flows: int = 4, **_):
        super().__init__()
        self.head = nn.Linear(in_features, 2 * latent_dim)
        self.flow_params = nn.Linear(in_features, flows * (2 * latent_dim + 1))
        self.flows, self.d = flows, latent_dim

    def forward(self, h):
        mu, logvar = self.head(h).chunk(2, -1)
        params = self.flow_params(h).view(*h.shape[:-1], self.flows, 2 * self.d + 1)
        steps = [lambda z, p=params[..., t, :]: planar(z, p[..., :self.d], p[..., self.d:2 * self.d], p[..., -1:])
                 for t in range(self.flows)]
        return FlowGaussian(DiagonalGaussian(mu, logvar), steps)


class IAFPosterior(nn.Module):
    """Kingma et al. 2016: z_t = sigma_t * z_(t-1) + (1 - sigma_t) * m_t, [m_t, s_t] = MADE_t(z_(t-1), h),
    sigma_t = sigmoid(s_t + 1.5) (the forget-gate bias of the paper); the order reverses at every step."""

    def __init__(self, in_features: int, latent_dim: int, flows: int = 2, hidden: int = 128, **_):
        super().__init__()
        self.head = nn.Linear(in_features, 2 * latent_dim)
        order = torch.arange(1, latent_dim + 1)
        self.mades = nn.ModuleList(MADE(latent_dim, in_features, hidden, order if t % 2 == 0 else order.flip(0))
                                   for t in range(flows))

    def forward(self, h):
        mu, logvar = self.head(h).chunk(2, -1)
        return FlowGaussian(DiagonalGaussian(mu, logvar), [lambda z, made=made: self._step(made, z, h)
                                                           for made in self.mades])

    @staticmethod
    def _step(made, z, h):
        m, s = made(z, h.expand(*z.shape[:-1], h.shape[-1]))
        gate = s + 1.5
        sigma = torch.sigmoid(gate)
        # log det = sum log sigma, as logsigmoid: log(sigmoid) is -inf once sigma underflows (a gate below about -88 in float32)
        return sigma * z + (1 - sigma) * m, F.logsigmoid(gate).sum(-1)
