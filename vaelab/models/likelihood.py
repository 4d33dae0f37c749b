"""Decoder likelihoods p(x|z): each turns the decoder's output into log p(x|z), summed over data dimensions.

Here the base class, Bernoulli and the Gaussians (at the data's values, or under uniform dequantization); the
continuous Bernoulli (:mod:`.continuous_bernoulli`) and the discretized logistic mixture (:mod:`.logistic`) register
themselves in :data:`LIKELIHOODS` from modules of their own.
"""
from __future__ import annotations

import math
from contextlib import contextmanager
from typing import Iterator

import torch
import torch.nn.functional as F
from torch import nn

from .. import noise
from ..config import ConfigError
from ..registry import Registry

LIKELIHOODS: Registry[type["Likelihood"]] = Registry("likelihood")

DATA_DIMS = (-3, -2, -1)  # (C, H, W)


class Likelihood(nn.Module):
    """p(x|z) parameterized by the decoder output ``out`` of shape [..., P, H, W] (:meth:`out_shape`: P = C unless
    the likelihood needs more parameters per pixel).

    ``bpd_convention`` names the :data:`vaelab.eval.bpd.CONVENTIONS` entry under which its -log p(x) is a code
    length (``binary``: a pmf over {0, 1}^D; ``discrete-8bit``: a pmf over the 256 values of 8-bit pixels;
    ``dequantized-8bit``: a density of uniformly dequantized 8-bit data), or is None: then no bits per dimension
    are reported. ``binary``: it models {0, 1} pixels, so grey images are binarized for it (``data.binarize``).
    ``needs_convention``: it is defined only on data its convention fits (8-bit values k / 255), and training
    refuses other data."""

    bpd_convention: str | None = None
    binary: bool = False
    needs_convention: bool = False
    observed: torch.Tensor | None = None  # inside observed_only(): 1 where an entry is observed [B, C, H, W]

    @classmethod
    def from_config(cls, shape: tuple[int, int, int], cfg) -> "Likelihood":
        return cls()

    def out_shape(self, shape: tuple[int, int, int]) -> tuple[int, int, int]:
        """The decoder output's shape [P, H, W] for images of ``shape`` [C, H, W]."""
        return shape

    def log_prob(self, x: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        """log p(x|z) in nats, summed over C, H, W: [...]."""
        raise NotImplementedError

    def log_prob_elements(self, x: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        """log p(x_i|z) of each data element, [..., C, H, W], for a likelihood that factorizes over them (what
        likelihoods over observed entries only need: MIWAE, imputation)."""
        raise ConfigError(f"the {type(self).__name__} likelihood does not give log p(x|z) per pixel; missing data "
                          "need one that does (bernoulli, gaussian, dequantized-gaussian)")

    def sample(self, out: torch.Tensor) -> torch.Tensor:
        """x ~ p(x|z), drawn through :mod:`vaelab.noise`: [..., C, H, W]."""
        raise ConfigError(f"the {type(self).__name__} likelihood cannot draw x ~ p(x|z) here; imputation needs "
                          "one that can (bernoulli, gaussian)")

    def mean(self, out: torch.Tensor) -> torch.Tensor:
        """E[x|z], the image a decoder shows: [..., C, H, W]."""
        raise NotImplementedError

    def summed(self, log_px: torch.Tensor) -> torch.Tensor:
        """Per-element log-likelihoods [..., C, H, W] summed over the observed ones (all outside
        :func:`observed_only`): [...]."""
        return (log_px if self.observed is None else log_px * self.observed).sum(DATA_DIMS)


def require_elements(likelihood: Likelihood | type[Likelihood], what: str) -> None:
    """A clear error when ``likelihood`` (or its class) gives no log p(x_i|z) per element (it does not factorize
    over pixels)."""
    kind = likelihood if isinstance(likelihood, type) else type(likelihood)
    if getattr(kind, "log_prob_elements", Likelihood.log_prob_elements) is Likelihood.log_prob_elements:
        raise ConfigError(f"{what} needs a likelihood that factorizes over pixels (bernoulli, gaussian, "
                          f"dequantized-gaussian); this model's is {kind.__name__}")


@contextmanager
def observed_only(likelihood: Likelihood, observed: torch.Tensor) -> Iterator[None]:
    """Inside, ``likelihood.log_prob`` sums over the entries where ``observed`` [B, C, H, W] is 1 only: log p(x_o|z)
    of a likelihood that factorizes over entries (Mattei & Frellsen 2019, eq. 4)."""
    require_elements(likelihood, "a likelihood over observed entries")
    likelihood.observed = observed
    try:
        yield
    finally:
        likelihood.observed = None


@LIKELIHOODS.register("bernoulli")
class Bernoulli(Likelihood):
    """Bernoulli pixels with logits ``out``; for binary data (dynamically or statically binarized). On grey pixels
    it is a cross-entropy, not a probability, and its bpd convention does not apply."""

    bpd_convention = "binary"
    binary = True

    def log_prob(self, x, out):
        return -self.summed(self._cross_entropy(x, out))  # the sign on the sums: one pass less over the pixels

    def log_prob_elements(self, x, out):
        return -self._cross_entropy(x, out)

    @staticmethod
    def _cross_entropy(x, out):
        return F.binary_cross_entropy_with_logits(out, x.expand_as(out), reduction="none")

    def mean(self, out):
        return torch.sigmoid(out)

    def sample(self, out):
        return noise.bernoulli(torch.sigmoid(out), batch_dim=out.dim() - 4)


@LIKELIHOODS.register("gaussian")
class Gaussian(Likelihood):
    """N(x; out, sigma^2), sigma fixed or learned (initialized at ``sigma``): one per pixel (``per-pixel``), one per
    channel (``per-channel``) or one shared by all (``isotropic``: p(x|z) = N(out, sigma^2 I), probabilistic PCA's
    noise model). A learned sigma is kept above ``sigma_min``: sigma = sigma_min + exp(log_sigma), so the parameter
    ``log_sigma`` is log(sigma - sigma_min), and log sigma itself when sigma_min is 0 (the default here).

    No bpd convention: vaelab trains and evaluates it at the data's grid values k / 255. On 8-bit images,
    nll + D ln 256 bounds the 8-bit NLL only for a density evaluated at uniformly dequantized data (k + u) / 256,
    and is tight only for one trained on such data (Theis et al. 2016); at the grid values it is an optimistic
    figure, the more so the smaller sigma gets (a learned sigma shrinks without limit on a pixel that is always 0),
    so it is not reported. :class:`DequantizedGaussian` is the one that declares ``dequantized-8bit``."""

    default_sigma_min = 0.0  # what a sigma_min of None (model.sigma_min: null) means

    @classmethod
    def from_config(cls, shape, cfg):
        return cls(shape, cfg.sigma, cfg.learn_sigma, cfg.sigma_mode, cfg.sigma_min)

    def __init__(self, shape: tuple[int, int, int], sigma: float = 0.1, learn_sigma: bool = False,
                 mode: str = "per-pixel", sigma_min: float | None = None):
        super().__init__()
        sigma_min = self.default_sigma_min if sigma_min is None else sigma_min
        if not 0 <= sigma_min < sigma:
            raise ConfigError(f"model.sigma ({sigma}) must be above model.sigma_min ({sigma_min}), which is >= 0")
        size = {"per-pixel": shape, "per-channel": (shape[0], 1, 1), "isotropic": (1, 1, 1)}[mode]  # over C, H, W
        log_sigma = torch.full(size, math.log(sigma - sigma_min))
        self.sigma_min = sigma_min
        if learn_sigma:
            self.log_sigma = nn.Parameter(log_sigma)
        else:
            self.register_buffer("log_sigma", log_sigma)

    def log_scale(self) -> torch.Tensor:
        """log sigma, broadcastable over [C, H, W]: log(sigma_min + exp(log_sigma))."""
        if self.sigma_min == 0:
            return self.log_sigma
        return torch.logaddexp(self.log_sigma, torch.tensor(math.log(self.sigma_min), dtype=self.log_sigma.dtype))

    def log_prob(self, x, out):
        return self.summed(Gaussian.log_prob_elements(self, x, out))  # the density at x itself, in subclasses too

    def log_prob_elements(self, x, out):
        log_sigma = self.log_scale()
        z = (x - out) * torch.exp(-log_sigma)
        return -0.5 * z**2 - log_sigma - 0.5 * math.log(2 * math.pi)

    def mean(self, out):
        return out

    def sample(self, out):
        return out + torch.exp(self.log_scale()) * noise.randn(out.shape, batch_dim=out.dim() - 4, device=out.device,
                                                               dtype=out.dtype)


@LIKELIHOODS.register("dequantized-gaussian")
class DequantizedGaussian(Gaussian):
    """A Gaussian density of uniformly dequantized 8-bit data: x = k / 255 is scored at y = (k + u) / 256,
    u ~ U(0, 1) per pixel, so -log p(y) + D ln 256 bounds the 8-bit NLL from above (Theis et al. 2016, eq. 6-7):
    bits per dimension under ``dequantized-8bit`` compare with the flow and PixelCNN literature's.

    u is drawn inside :meth:`log_prob`, from :mod:`vaelab.noise`: afresh at every training step as a pure function of
    (seed, step, example), so a resumed or DDP run draws the same u, and once per (sample of z, example) elsewhere.
    The encoder sees the 8-bit image, so (u, z) are drawn together from U(0, 1)^D q(z|x): the ELBO bounds
    log P(k) + D ln 256, and the importance-sampled NLL (one u per sample) converges to the 8-bit NLL itself
    (-log P(k) = -log E_u p((k + u) / 256) - D ln 256) as K grows. AIS holds each chain's u fixed.

    sigma_min defaults to 1 / (256 sqrt 12), the standard deviation of u / 256: the variance of dequantized data is at
    least that of its noise, so no smaller sigma ever fits it better, and the bound removes nothing attainable."""

    bpd_convention = "dequantized-8bit"
    needs_convention = True
    default_sigma_min = 1 / (256 * math.sqrt(12))

    def log_prob(self, x, out):
        return self.summed(self.log_prob_elements(x, out))

    def log_prob_elements(self, x, out):
        u = noise.rand(out.shape, batch_dim=out.dim() - 4, device=out.device, dtype=out.dtype)  # one per sample
        return super().log_prob_elements(((x * 255).round() + u) / 256, out)

    def mean(self, out):
        """The Gaussian's mean carried back to the 8-bit scale: k = floor(256 y) has mean 256 E[y] - 1/2 for a
        smooth density, clamped to [0, 1]."""
        return ((256 * out - 0.5) / 255).clamp(0, 1)

    def sample(self, out):
        """k = floor(256 y), y ~ N(out, sigma^2), on the 8-bit scale."""
        return ((256 * super().sample(out)).floor() / 255).clamp(0, 1)
