"""The discretized logistic mixture likelihood for 8-bit images (Salimans et al. 2017, PixelCNN++, §2.1-2.2).

Each pixel is a mixture of K logistics, discretized to the 256 values of 8-bit data: on the [-1, 1] scale the value
k sits at x_k = 2k/255 - 1, and its bin is [x_k - 1/255, x_k + 1/255], the two ends open to -inf and +inf, so

    P(k) = sigma((x_k + 1/255 - mu) / s) - sigma((x_k - 1/255 - mu) / s)        (eq. 2),

and the 256 probabilities telescope to 1. With several channels the mixture component is shared and the means
couple to the channels before (eq. 3): mu_G + alpha x_R, mu_B + beta x_R + gamma x_G, with alpha, beta, gamma in
(-1, 1). -log p(x) is a code length for 8-bit images: bits per dimension under ``discrete-8bit`` are those of the
PixelCNN literature (CIFAR-10 figures are quoted in them).

Computed in float32 without the cut-offs of PixelCNN++'s code (which replaces tiny bin probabilities by a density
times the bin width): for a < b, log(sigma(b) - sigma(a)) = -softplus(-b) - softplus(a) + log(1 - e^(a - b)),
exact in every tail.
"""
from __future__ import annotations

import math

import torch

from .likelihood import LIKELIHOODS, Likelihood

LOG_SCALE_MIN = -7.0  # on the [-1, 1] scale, as PixelCNN++ (s >= e^-7: a 255th of a grey level)
HALF_BIN = 1 / 255  # half the width of a bin on the [-1, 1] scale


def softplus(t: torch.Tensor) -> torch.Tensor:
    """log(1 + e^t), exact at every t (F.softplus turns linear above t = 20, 2e-9 off: visible in float64)."""
    return torch.logaddexp(t, torch.zeros_like(t))


def log_bin_mass(centered: torch.Tensor, log_s: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """log P(k) of a logistic discretized to 256 bins, for x_k - mu = ``centered`` on the [-1, 1] scale, log scale
    ``log_s``, and the values k (0..255, a float tensor), elementwise."""
    inv_s = torch.exp(-log_s)
    plus, minus = inv_s * (centered + HALF_BIN), inv_s * (centered - HALF_BIN)
    edge_low = -softplus(-plus)  # k = 0: log sigma(plus)
    edge_high = -softplus(minus)  # k = 255: log(1 - sigma(minus))
    inner = edge_low - softplus(minus) + log1mexp(math.log(2 * HALF_BIN) - log_s)  # plus - minus = 2 HALF_BIN / s
    return torch.where(k == 0, edge_low, torch.where(k == 255, edge_high, inner))


def log1mexp(log_d: torch.Tensor) -> torch.Tensor:
    """log(1 - e^-d) for d = exp(log_d) > 0: log d - d/2 + d^2/24 below d = 1e-3 (the next term, d^4/2880, is under
    float64's resolution), where 1 - e^-d would lose digits and finally underflow; log(-expm1(-d)) above."""
    d = log_d.exp()
    return torch.where(d < 1e-3, log_d - d / 2 + d * d / 24, torch.log(-torch.expm1(-d.clamp(min=1e-3))))


def clamped_mean(mu: torch.Tensor, log_s: torch.Tensor) -> torch.Tensor:
    """E[clamp(X, 0, 1)] for X logistic with mean ``mu`` and log scale ``log_s`` on the [-1, 1] scale, on the
    [0, 1] scale: 1 - int_0^1 F(t) dt = 1 - s [softplus((1 - m) / s) - softplus(-m / s)], m = (mu + 1)/2, s halved.
    The discretized mean differs by the rounding to the 8-bit grid: less than half a grey level."""
    m, s = (mu + 1) / 2, torch.exp(log_s) / 2
    return 1 - s * (softplus((1 - m) / s) - softplus(-m / s))


@LIKELIHOODS.register("discretized-logistic")
class DiscretizedLogisticMixture(Likelihood):
    """A mixture of ``model.mixtures`` (K) discretized logistics per pixel (PixelCNN++), for images of C channels
    whose values are k / 255. The decoder gives, per pixel, K mixture logits (none for K = 1), C K means,
    C K log scales and C(C-1)/2 K coupling coefficients (3K for RGB): ``out`` [..., P, H, W]."""

    bpd_convention = "discrete-8bit"
    needs_convention = True

    @classmethod
    def from_config(cls, shape, cfg):
        return cls(shape, cfg.mixtures)

    def __init__(self, shape: tuple[int, int, int], mixtures: int = 1):
        super().__init__()
        if mixtures < 1:
            raise ValueError(f"model.mixtures must be >= 1, got {mixtures}")
        self.k, self.c = mixtures, shape[0]
        rows, cols = torch.tril_indices(self.c, self.c, -1)  # channel c's mean couples to the channels d < c
        self.register_buffer("rows", rows, persistent=False)
        self.register_buffer("cols", cols, persistent=False)
        self.sizes = [self.k if self.k > 1 else 0, self.c * self.k, self.c * self.k, len(rows) * self.k]

    def out_shape(self, shape):
        return (sum(self.sizes), *shape[1:])

    def params(self, out: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """(log mixture weights [..., K, 1, H, W], means and log scales [..., K, C, H, W], coupling matrices
        [..., K, C, C, H, W], strictly lower triangular) from the decoder output [..., P, H, W]."""
        logits, mu, log_s, coeffs = out.split(self.sizes, dim=-3)
        lead, hw = out.shape[:-3], out.shape[-2:]
        log_pi = (torch.log_softmax(logits, -3) if self.k > 1 else out.new_zeros(*lead, 1, *hw)).unsqueeze(-3)
        coupling = out.new_zeros(*lead, self.k, self.c, self.c, *hw)
        if len(self.rows):
            coupling[..., self.rows, self.cols, :, :] = torch.tanh(coeffs.unflatten(-3, (self.k, -1)))
        return (log_pi, mu.unflatten(-3, (self.k, self.c)),
                log_s.unflatten(-3, (self.k, self.c)).clamp(min=LOG_SCALE_MIN), coupling)

    def log_prob(self, x, out):
        log_pi, mu, log_s, coupling = self.params(out)
        xs = 2 * x - 1  # [B, C, H, W] on the [-1, 1] scale
        mu = mu + (coupling * xs.unsqueeze(-4)[..., None, :, :, :]).sum(-3)  # + sum_{c' < c} a_cc' x_c'
        k = (x * 255).round()
        log_pk = log_bin_mass(xs.unsqueeze(-4) - mu, log_s, k.unsqueeze(-4)).sum(-3, keepdim=True)  # [..., K, 1, H, W]
        return torch.logsumexp(log_pi + log_pk, -4).flatten(-3).sum(-1)

    def mean(self, out):
        """E[x|z]: each component's clamped logistic mean (:func:`clamped_mean`), averaged over the mixture. A
        coupled channel's mean is taken at the mean of the channels before it (a plug-in: exact for one channel)."""
        log_pi, mu, log_s, coupling = self.params(out)
        means = []  # per channel, in coupling order: [..., K, H, W] on the [0, 1] scale
        for c in range(self.c):
            m = mu[..., c, :, :]
            for d in range(c):
                m = m + coupling[..., c, d, :, :] * (2 * means[d] - 1)
            means.append(clamped_mean(m, log_s[..., c, :, :]))
        return (log_pi.exp() * torch.stack(means, -3)).sum(-4)
