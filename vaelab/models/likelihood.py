"""Decoder likelihoods p(x|z): each turns the decoder's output into log p(x|z), summed over data dimensions."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..config import SIGMA_MODES
from ..registry import Registry

LIKELIHOODS: Registry[type["Likelihood"]] = Registry("likelihood")

DATA_DIMS = (-3, -2, -1)  # (C, H, W)


class Likelihood(nn.Module):
    """p(x|z) parameterized by the decoder output ``out`` of shape [..., C, H, W].

    ``bpd_convention`` names the :data:`vaelab.eval.bpd.CONVENTIONS` entry under which its -log p(x) is a code
    length (``binary``: a pmf over {0, 1}^D; ``dequantized-8bit``: a density of uniformly dequantized 8-bit data),
    or is None: then no bits per dimension are reported."""

    bpd_convention: str | None = None

    @classmethod
    def from_config(cls, shape: tuple[int, int, int], cfg) -> "Likelihood":
        return cls()

    def log_prob(self, x: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        """log p(x|z) in nats, summed over C, H, W: [...]."""
        raise NotImplementedError

    def mean(self, out: torch.Tensor) -> torch.Tensor:
        """E[x|z], the image a decoder shows."""
        raise NotImplementedError


@LIKELIHOODS.register("bernoulli")
class Bernoulli(Likelihood):
    """Bernoulli pixels with logits ``out``; for binary data (dynamically or statically binarized). On grey pixels
    it is a cross-entropy, not a probability, and its bpd convention does not apply."""

    bpd_convention = "binary"

    def log_prob(self, x, out):
        return -F.binary_cross_entropy_with_logits(out, x.expand_as(out), reduction="none").sum(DATA_DIMS)

    def mean(self, out):
        return torch.sigmoid(out)




@LIKELIHOODS.register("gaussian")
class Gaussian(Likelihood):
    """N(x; out, sigma^2), sigma fixed or learned (as log sigma, initialized at ``sigma``): one per pixel, or one
    shared by all (``isotropic``: p(x|z) = N(out, sigma^2 I), probabilistic PCA's noise model).

    No bpd convention: vaelab trains and evaluates it at the data's grid values k / 255. On 8-bit images,
    nll + D ln 256 bounds the 8-bit NLL only for a density evaluated at uniformly dequantized data (k + u) / 256,
    and is tight only for one trained on such data (Theis et al. 2016); at the grid values it is an optimistic
    figure, the more so the smaller sigma gets (a learned sigma shrinks without limit on a pixel that is always 0),
    so it is not reported. A dequantized likelihood declares ``dequantized-8bit``."""

    @classmethod
    def from_config(cls, shape, cfg):
        return cls(shape, cfg.sigma, cfg.learn_sigma, cfg.sigma_mode == "isotropic")

    def __init__(self, shape: tuple[int, int, int], sigma: float = 0.1, learn_sigma: bool = False,
                 isotropic: bool = False):
        super().__init__()
        log_sigma = torch.full((1, 1, 1) if isotropic else shape, math.log(sigma))  # broadcast over C, H, W
        if learn_sigma:
            self.log_sigma = nn.Parameter(log_sigma)
        else:
            self.register_buffer("log_sigma", log_sigma)

    def log_prob(self, x, out):
        z = (x - out) * torch.exp(-self.log_sigma)
        return (-0.5 * z**2 - self.log_sigma - 0.5 * math.log(2 * math.pi)).sum(DATA_DIMS)

    def mean(self, out):
        return out
