"""Decoder likelihoods p(x|z): each turns the decoder's output into log p(x|z), summed over data dimensions."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..registry import Registry

LIKELIHOODS: Registry[type["Likelihood"]] = Registry("likelihood")

DATA_DIMS = (-3, -2, -1)  # (C, H, W)


class Likelihood(nn.Module):
    """p(x|z) parameterized by the decoder output ``out`` of shape [..., C, H, W]."""

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
    """Bernoulli pixels with logits ``out``; for binary data (dynamically or statically binarized)."""

    def log_prob(self, x, out):
        return -F.binary_cross_entropy_with_logits(out, x.expand_as(out), reduction="none").sum(DATA_DIMS)

    def mean(self, out):
        return torch.sigmoid(out)


@LIKELIHOODS.register("gaussian")
class Gaussian(Likelihood):
    """N(x; out, sigma^2), sigma fixed or learned per pixel (as log sigma, initialized at ``sigma``)."""

    @classmethod
    def from_config(cls, shape, cfg):
        return cls(shape, cfg.sigma, cfg.learn_sigma)

    def __init__(self, shape: tuple[int, int, int], sigma: float = 0.1, learn_sigma: bool = False):
        super().__init__()
        log_sigma = torch.full(shape, math.log(sigma))
        if learn_sigma:
            self.log_sigma = nn.Parameter(log_sigma)
        else:
            self.register_buffer("log_sigma", log_sigma)

    def log_prob(self, x, out):
        z = (x - out) * torch.exp(-self.log_sigma)
        return (-0.5 * z**2 - self.log_sigma - 0.5 * math.log(2 * math.pi)).sum(DATA_DIMS)

    def mean(self, out):
        return out
