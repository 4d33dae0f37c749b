"""Filling the missing entries of images with a trained model: x = (x_o, x_m), ``observed`` True on x_o.

Every method runs ``n`` chains (completions) per image at once, as rows [n * B, ...] of one batch, and returns the
decoder means E[x|z] at each chain's final z with the observed entries put back: [n, B, C, H, W].

- :func:`pseudo_gibbs` (Rezende et al. 2014, §5.2 / appendix F): z ~ q(z|x), then x_m ~ p(x_m|z), repeated. Its
  stationary distribution is p(x_m|x_o) only when q(z|x) is the true posterior.
- :func:`metropolis_within_gibbs` (Mattei & Frellsen 2018, Algorithm 1): z is moved by a Metropolis-Hastings step
  whose independent proposal is q(z|x), accepted with probability
  min(1, p(x|z') p(z') q(z|x) / (p(x|z) p(z) q(z'|x))), then x_m ~ p(x_m|z): a Markov chain whose stationary
  distribution is exactly p(z, x_m|x_o) for any encoder whose support covers the posterior.
- :func:`importance_imputation` (Mattei & Frellsen 2019, §4.1): E[x_m|x_o] ~ sum_k w_k E[x_m|z_k], z_k ~ q(z|x~),
  w_k proportional to p(x_o|z_k) p(z_k) / q(z_k|x~), self-normalized; one estimate per image ([1, B, ...]).

The model needs an encoder q(z|x) with a density and a likelihood that factorizes over pixels (a VAE with
``posterior``, ``decoder_out``, ``prior`` and ``likelihood``).
"""
from __future__ import annotations

import torch
from torch import nn

from .. import noise
from ..config import ConfigError
from ..models.likelihood import observed_only, require_elements
from ..models.vae import VAE
from .common import evaluating


def require_imputation(model: nn.Module, what: str = "imputation") -> None:
    """A clear error when ``model`` cannot impute: no density (an autoencoder, a VQ-VAE), a hierarchy, a
    likelihood that does not factorize over pixels."""
    model.family.require("likelihood", what)
    if not isinstance(model, VAE):
        raise ConfigError(f"{what} needs a VAE with one latent layer (q(z|x), p(z), p(x|z)); this is a "
                          f"{type(model).__name__}")
    require_elements(model.likelihood, what)


def _chains(x: torch.Tensor, observed: torch.Tensor, fill: torch.Tensor, n: int
            ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(x, observed, the starting image: the observed entries, ``fill`` elsewhere), each repeated to n chains
    per image: [n * B, C, H, W]."""
    rep = lambda t: t.expand(n, *x.shape).reshape(n * len(x), *x.shape[1:])  # noqa: E731
    start = torch.where(observed, x, fill.expand_as(x))
    return rep(x), rep(observed), rep(start)


@torch.no_grad()
def pseudo_gibbs(model: nn.Module, x: torch.Tensor, observed: torch.Tensor, fill: torch.Tensor, *, n: int = 5,
                 steps: int = 50, seed: int = 0, draws: bool = False) -> torch.Tensor:
    """n completions of each image x [B, C, H, W] by ``steps`` pseudo-Gibbs sweeps from ``fill``: [n, B, C, H, W].
    ``draws``: the last x_m ~ p(x_m|z) of each chain instead of E[x|z]."""
    require_imputation(model, "pseudo-Gibbs imputation")
    B = len(x)
    x, observed, xs = _chains(x, observed, fill, n)
    with evaluating(model), noise.batch_noise(noise.mix_seed(seed, 0), device=x.device):
        for _ in range(steps):
            out = model.decoder_out(model.posterior(xs).rsample())
            xs = torch.where(observed, x, model.likelihood.sample(out))
    result = xs if draws else torch.where(observed, x, model.likelihood.mean(out))
    return result.reshape(n, B, *x.shape[1:])


@torch.no_grad()
def metropolis_within_gibbs(model: nn.Module, x: torch.Tensor, observed: torch.Tensor, fill: torch.Tensor, *,
                            n: int = 5, steps: int = 50, seed: int = 0, draws: bool = False
                            ) -> tuple[torch.Tensor, float]:
    """n completions of each image x [B, C, H, W] by ``steps`` Metropolis-within-Gibbs sweeps from ``fill``:
    ([n, B, C, H, W], the acceptance rate). ``draws``: the last x_m ~ p(x_m|z) of each chain instead of E[x|z]."""
    require_imputation(model, "Metropolis-within-Gibbs imputation")
    B = len(x)
    x, observed, xs = _chains(x, observed, fill, n)
    accepted = 0.0
    with evaluating(model), noise.batch_noise(noise.mix_seed(seed, 0), device=x.device):
        z = model.posterior(xs).rsample()  # [nB, D]
        out = model.decoder_out(z)
        for _ in range(steps):
            q = model.posterior(xs)
            z_new = q.rsample()
            out_new = model.decoder_out(z_new)
            log_w_new = model.likelihood.log_prob(xs, out_new) + model.prior.log_prob(z_new) - q.log_prob(z_new)
            log_w = model.likelihood.log_prob(xs, out) + model.prior.log_prob(z) - q.log_prob(z)  # [nB]
            accept = torch.log(noise.rand(log_w.shape, device=x.device)) < log_w_new - log_w
            z = torch.where(accept[:, None], z_new, z)
            out = torch.where(accept[:, None, None, None], out_new, out)
            xs = torch.where(observed, x, model.likelihood.sample(out))
            accepted += accept.double().mean().item() / steps
    result = xs if draws else torch.where(observed, x, model.likelihood.mean(out))
    return result.reshape(n, B, *x.shape[1:]), accepted


@torch.no_grad()
def importance_imputation(model: nn.Module, x: torch.Tensor, observed: torch.Tensor, fill: torch.Tensor, *,
                          k: int = 100, seed: int = 0) -> torch.Tensor:
    """The self-normalized importance-sampling estimate of E[x_m|x_o] with k draws from q(z|x~), x~ the image
    filled with ``fill``: [1, B, C, H, W]."""
    require_imputation(model, "importance-sampled imputation")
    x_tilde = torch.where(observed, x, fill.expand_as(x))
    with evaluating(model), noise.batch_noise(noise.mix_seed(seed, 0), device=x.device):
        q = model.posterior(x_tilde)
        z, log_q = q.rsample_and_log_prob(k)  # [k, B, D], [k, B]
        out = model.decoder_out(z)
        with observed_only(model.likelihood, observed):
            log_w = model.likelihood.log_prob(x_tilde, out) + model.prior.log_prob(z) - log_q  # [k, B]
    w = torch.softmax(log_w.double(), 0).to(x.dtype)[..., None, None, None]
    return torch.where(observed, x, (w * model.likelihood.mean(out)).sum(0))[None]


@torch.no_grad()
def iterated_reconstruction(model: nn.Module, x: torch.Tensor, observed: torch.Tensor, fill: torch.Tensor, *,
                            steps: int = 50) -> torch.Tensor:
    """A plain autoencoder's imputation: the missing entries replaced by those of the reconstruction, repeated
    from ``fill`` (the deterministic counterpart of pseudo-Gibbs): [1, B, C, H, W]."""
    xs = torch.where(observed, x, fill.expand_as(x))
    with evaluating(model):
        for _ in range(steps):
            xs = torch.where(observed, x, model.reconstruct(xs))
    return xs[None]
