"""The continuous Bernoulli likelihood for pixels in [0, 1] (Loaiza-Ganem & Cunningham 2019).

p(x | lambda) = C(lambda) lambda^x (1 - lambda)^(1 - x) on [0, 1], with C(lambda) = 2 atanh(1 - 2 lambda) / (1 - 2
lambda) (their eq. 7). In the logits eta = log(lambda / (1 - lambda)) that the decoder outputs, 1 - 2 lambda =
-tanh(eta / 2) and atanh(1 - 2 lambda) = -eta / 2, so

    C = eta / tanh(eta / 2),        E[x] = 1/2 + 1 / (2 tanh(eta / 2)) - 1 / eta,

both even/odd in eta and 0/0 at eta = 0 (lambda = 1/2, where C = 2 and E[x] = 1/2). Near there both are Taylor
series in eta (below :data:`TAYLOR_CUT`); elsewhere the closed forms, whose float32 terms no longer cancel.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .likelihood import DATA_DIMS, LIKELIHOODS, Likelihood

# |eta| below which the Taylor series are used: at 0.3 the terms left out are below 2e-11 (log C) and 1e-13 (mean),
# far under float32's resolution, while the closed forms' gradients, 1/eta - 1/eta + ..., still keep 5 digits there.
TAYLOR_CUT = 0.3


def _split(eta: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(near 0?, eta where near else 0, eta where not near else 1): each branch sees only values it is finite at,
    so neither gives a NaN gradient through torch.where."""
    near = eta.abs() < TAYLOR_CUT
    return near, torch.where(near, eta, torch.zeros_like(eta)), torch.where(near, torch.ones_like(eta), eta)


def log_norm(eta: torch.Tensor) -> torch.Tensor:
    """log C(lambda) for logits eta: log(eta / tanh(eta / 2)), by log 2 + eta^2/12 - 7 eta^4/1440 + 62 eta^6/181440
    - 127 eta^8/4838400 near 0 (x/tanh x's series at x = eta/2), else log|eta| - log(1 - e^-|eta|) + log(1 + e^-|eta|)
    (tanh(a/2) = (1 - e^-a) / (1 + e^-a))."""
    near, small, far = _split(eta)
    e2 = small * small
    taylor = math.log(2) + e2 / 12 - 7 * e2**2 / 1440 + 62 * e2**3 / 181440 - 127 * e2**4 / 4838400
    a = far.abs()
    closed = torch.log(a) - torch.log(-torch.expm1(-a)) + torch.log1p(torch.exp(-a))
    return torch.where(near, taylor, closed)


def mean(eta: torch.Tensor) -> torch.Tensor:
    """E[x] for logits eta: 1/2 + eta/12 - eta^3/720 + eta^5/30240 - eta^7/1209600 near 0 (half the Langevin function
    coth a - 1/a at a = eta/2), else 1/2 + 1/(2 tanh(eta/2)) - 1/eta (the paper's lambda / (2 lambda - 1)
    + 1 / (2 atanh(1 - 2 lambda)))."""
    near, small, far = _split(eta)
    taylor = 0.5 + small / 12 - small**3 / 720 + small**5 / 30240 - small**7 / 1209600
    closed = 0.5 + 0.5 / torch.tanh(far / 2) - 1 / far
    return torch.where(near, taylor, closed)


@LIKELIHOODS.register("continuous-bernoulli")
class ContinuousBernoulli(Likelihood):
    """Continuous Bernoulli pixels with logits ``out``: a normalized density on [0, 1] for grey values, where the
    Bernoulli cross-entropy is not one (Loaiza-Ganem & Cunningham 2019, eq. 7). No bpd convention: it is a density
    evaluated at the pixels' own values, not a code length."""

    def log_prob(self, x, out):
        log_px = -F.binary_cross_entropy_with_logits(out, x.expand_as(out), reduction="none") + log_norm(out)
        return log_px.sum(DATA_DIMS)

    def mean(self, out):
        return mean(out)
