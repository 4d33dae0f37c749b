"""Hierarchical VAEs with L stochastic layers z_1 (bottom) .. z_L (top) and a top-down generative path
p(x|z_1) p(z_1|z_2) ... p(z_(L-1)|z_L) p(z_L).

Two inference paths:

- ``ladder`` (Ladder VAE, Sønderby et al. 2016, eq. 17-20): a deterministic bottom-up pass gives each
  lower layer a Gaussian (mu_hat, s_hat^2); inference then runs top-down, and q(z_l | z_(l+1), x) is the
  precision-weighted combination of that and the generative p(z_l | z_(l+1)), so each layer's KL is in
  closed form given the sample of its parent.
- ``bottom-up`` (the seed's two-level model): q(z_1|x) q(z_2|z_1) ...; each layer's KL is the Monte Carlo
  estimate log q - log p at the drawn z.

The top layer's posterior is any registered posterior (Gaussian, planar or IAF flow) and its prior any
registered prior (standard, mixture, VampPrior). With one layer and a Gaussian posterior either path is
exactly the plain VAE. ``z`` is the concatenation [z_1, ..., z_L]; ``encode`` gives the posterior means
(deterministic), ``decode`` reads z_1, and :meth:`HierarchicalVAE.top_down` carries an edit of an upper layer
down to z_1 (what latent traversals use).
"""
from __future__ import annotations

import torch
from torch import nn

from .family import VAE
from .likelihood import Likelihood
from .networks import mlp
from .posterior import DiagonalGaussian, gaussian_kl
from .prior import Prior
from .vae import ELBOTerms


LOGVAR_RANGE = (-8.0, 4.0)  # the layers' log-variances are kept here: precision weighting divides by them


def split_gaussian(t: torch.Tensor) -> DiagonalGaussian:
    mu, logvar = t.chunk(2, -1)
    return DiagonalGaussian(mu, logvar.clamp(*LOGVAR_RANGE))


def ladder_posterior(u: DiagonalGaussian, p: DiagonalGaussian) -> DiagonalGaussian:
    """q(z_l | z_(l+1), x): the bottom-up Gaussian u and the top-down p(z_l | z_(l+1)) combined by their
    precisions (Sønderby et al. 2016, eq. 18-19)."""
    prec_u, prec_p = torch.exp(-u.logvar), torch.exp(-p.logvar)
    var = 1 / (prec_u + prec_p)
    return DiagonalGaussian((u.mu * prec_u + p.mu * prec_p) * var, torch.log(var))


class HierarchicalVAE(nn.Module):
    family = VAE
    conditional = False
    num_classes = 0

    def __init__(self, encoder: nn.Module, top_q: nn.Module, prior: Prior, decoder: nn.Module, likelihood: Likelihood,
                 dims: list[int], hidden: int, act: str = "relu", ladder: bool = True):
        """``top_q`` maps the top layer's input features (width ``encoder.out_features`` with one layer, else
        ``hidden``) to q(z_L | .)."""
        super().__init__()
        self.encoder, self.top_q, self.prior, self.decoder, self.likelihood = encoder, top_q, prior, decoder, likelihood
        self.dims, self.ladder, self.latent_dim = list(dims), ladder, sum(dims)
        f, L = encoder.out_features, len(dims)
        # up[l] makes layer l's input features: from the encoder features (l = 0), from the features below
        # (ladder) or from the sample z_(l-1) (bottom-up)
        self.up = nn.ModuleList([nn.Identity()] + [
            mlp([(f if l == 1 else hidden) if ladder else dims[l - 1], hidden], act) for l in range(1, L)])
        self.q_heads = nn.ModuleList(nn.Linear(f if l == 0 else hidden, 2 * dims[l]) for l in range(L - 1))
        self.down = nn.ModuleList(nn.Sequential(mlp([dims[l + 1], hidden], act), nn.Linear(hidden, 2 * dims[l]))
                                  for l in range(L - 1))  # p(z_l | z_(l+1))
        if hasattr(prior, "attach"):
            if not ladder and L > 1:
                raise ValueError("a VampPrior needs q(z_L|x) in closed form: use the ladder inference path")
            prior.attach(self.top_posterior)

    # ------------------------------------------------------------------------------------ inference
    def _ladder_up(self, x):
        """The ladder's bottom-up Gaussians for layers 1..L-1 and the top layer's features."""
        d, gaussians = self.encoder(x), []
        for l, up in enumerate(self.up):
            d = up(d)
            if l < len(self.q_heads):
                gaussians.append(split_gaussian(self.q_heads[l](d)))
        return gaussians, d

    def _bottom_up_q(self, l: int, h: torch.Tensor, z_below: torch.Tensor | None):
        """The bottom-up path's q(z_1|x) (l = 0, from the encoder features h) or q(z_l | z_(l-1))."""
        inp = h if l == 0 else self.up[l](z_below)
        return self.top_q(inp) if l == len(self.dims) - 1 else split_gaussian(self.q_heads[l](inp))

    def _path(self, x: torch.Tensor, draw) -> tuple[list, list[torch.Tensor]]:
        """Each layer's posterior given the layer it depends on (its parent with the ladder, the layer below
        bottom-up), taken at ``draw(q, first)`` of that layer's posterior (``first``: the layer inferred first,
        which no other layer precedes), and those values z_1..z_L. No decoder or prior."""
        if not self.ladder:
            h, qs, zs = self.encoder(x), [], []
            for l in range(len(self.dims)):
                qs.append(self._bottom_up_q(l, h, zs[-1] if zs else None))
                zs.append(draw(qs[-1], l == 0))
            return qs, zs
        ups, d_top = self._ladder_up(x)
        qs = [self.top_q(d_top)]
        zs = [draw(qs[0], True)]
        for l in range(len(self.dims) - 2, -1, -1):
            qs.insert(0, ladder_posterior(ups[l], self.conditional_prior(l, zs[0])))
            zs.insert(0, draw(qs[0], False))
        return qs, zs

    def _mean_path(self, x: torch.Tensor) -> tuple[list, list[torch.Tensor]]:
        """:meth:`_path` at the posterior means: deterministic."""
        return self._path(x, lambda q, first: q.mean)

    @torch.no_grad()
    def conditional_means(self, x: torch.Tensor, k: int) -> torch.Tensor:
        """Each layer's posterior mean given k joint draws of the layers it depends on, E_q[z_l | z_pa(l), x]:
        [k, B, sum(dims)]. Their average over the draws is E_q(z|x)[z_l] (the tower rule), which the posterior
        mean at the parents' means (:meth:`encode`) is not: a layer's mean is not linear in its parent."""
        qs, _ = self._path(x, lambda q, first: q.rsample_and_log_prob(k if first else None)[0])
        return torch.cat([q.mean.expand(k, len(x), q.mean.shape[-1]) for q in qs], -1)

    def top_posterior(self, x: torch.Tensor, y=None):
        """q(z_L|x) with the ladder (what a VampPrior mixes over its pseudo-inputs)."""
        return self.top_q(self._ladder_up(x)[1])

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None, k: int | None = None) -> ELBOTerms:
        zs, qs, kls, log_q, log_p, per_dim = (self._ladder if self.ladder else self._bottom_up)(x, k)
        log_px_z = self.likelihood.log_prob(x, self.decoder(zs[0]))
        bases = [getattr(q, "base", q) for q in qs]
        lead = zs[0].shape[:-1]  # [k, B] or [B]: the top layer's q has no sample dimension
        cat = lambda ts: torch.cat([t.expand(*lead, t.shape[-1]) for t in ts], -1)  # noqa: E731
        q = DiagonalGaussian(cat([b.mu for b in bases]), cat([b.logvar for b in bases]))
        return ELBOTerms(log_px_z, sum(kls), per_dim, log_p, log_q, q, torch.cat(zs, -1), kls, self.dims)

    def _top(self, q, k):
        z, log_q = q.rsample_and_log_prob(k)
        log_p = self.prior.log_prob(z)
        kl, per_dim = self.prior.kl(q, log_q, log_p)
        return z, kl, log_q, log_p, per_dim

    def _ladder(self, x, k):
        ups, d_top = self._ladder_up(x)
        q_top = self.top_q(d_top)
        z, kl, log_q, log_p, per_dim = self._top(q_top, k)
        zs, qs, kls, dims_kl = [z], [q_top], [kl], [per_dim]
        for l in range(len(self.dims) - 2, -1, -1):
            p = self.conditional_prior(l, zs[0])
            q = ladder_posterior(ups[l], p)
            z = q.rsample()
            kl_dim = gaussian_kl(q, p)
            zs.insert(0, z)
            qs.insert(0, q)
            kls.insert(0, kl_dim.sum(-1))
            dims_kl.insert(0, kl_dim)
            log_q, log_p = log_q + q.log_prob(z), log_p + p.log_prob(z)
        per_dim = None if any(d is None for d in dims_kl) else torch.cat(
            [d.reshape(-1, *d.shape[-2:]).mean(0) for d in dims_kl], -1)  # [B, sum D], averaged over samples
        return zs, qs, kls, log_q, log_p, per_dim

    def _bottom_up(self, x, k):
        L = len(self.dims)
        h = self.encoder(x)
        zs, qs, log_qs = [], [], []
        for l in range(L):
            q = self._bottom_up_q(l, h, zs[-1] if zs else None)
            z, log_q = q.rsample_and_log_prob(k if l == 0 else None)
            zs.append(z), qs.append(q), log_qs.append(log_q)
        log_ps = [self.conditional_prior(l, zs[l + 1]).log_prob(zs[l]) for l in range(L - 1)]
        log_ps.append(self.prior.log_prob(zs[-1]))
        kls = [a - b for a, b in zip(log_qs, log_ps)]
        kls[-1], per_dim = self.prior.kl(qs[-1], log_qs[-1], log_ps[-1]) if L == 1 else (kls[-1], None)
        return zs, qs, kls, sum(log_qs), sum(log_ps), per_dim

    # ---------------------------------------------------------------------- generation and use
    def conditional_prior(self, l: int, z_parent: torch.Tensor) -> DiagonalGaussian:
        """p(z_l | z_(l+1)) for layer index l (0: z_1) given its parent z_(l+1)."""
        return split_gaussian(self.down[l](z_parent))

    def log_joint(self, x: torch.Tensor, z: torch.Tensor, y=None) -> torch.Tensor:
        """log p(x|z_1) + sum_l log p(z_l|z_(l+1)) + log p(z_L) for z = [z_1, ..., z_L]."""
        zs = list(z.split(self.dims, -1))
        out = self.likelihood.log_prob(x, self.decoder(zs[0])) + self.prior.log_prob(zs[-1])
        for l in range(len(self.dims) - 1):
            out = out + self.conditional_prior(l, zs[l + 1]).log_prob(zs[l])
        return out

    def posterior(self, x: torch.Tensor, y=None) -> DiagonalGaussian:
        """The layers' (base) posteriors side by side, each at the posterior mean of the layer it depends on:
        deterministic (AIS starts from it)."""
        bases = [getattr(q, "base", q) for q in self._mean_path(x)[0]]
        return DiagonalGaussian(torch.cat([b.mu for b in bases], -1), torch.cat([b.logvar for b in bases], -1))

    @torch.no_grad()
    def encode(self, x, y=None):
        """The posterior means [z_1, ..., z_L]: [B, sum(dims)], the same at every call."""
        return torch.cat(self._mean_path(x)[1], -1)

    def decoder_out(self, z: torch.Tensor, y=None) -> torch.Tensor:
        """The likelihood's parameters for z = [z_1, ..., z_L]; they depend on z_1 only."""
        return self.decoder(z[..., :self.dims[0]])

    @torch.no_grad()
    def decode(self, z, y=None):
        """The mean image E[x|z_1] for z = [z_1, ..., z_L]. It reads z_1 only: to see an edit of an upper layer,
        pass the edited code through :meth:`top_down` first."""
        return self.likelihood.mean(self.decoder_out(z))

    @torch.no_grad()
    def top_down(self, z0: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """Edits ``z`` [..., D] of a code ``z0`` [D] (e.g. ``encode(x)[0]``) carried down the generative path:
        from the top, each lower layer moves as the mean of p(z_l | z_(l+1)) moves with its (moved) parent,
        z_l + mu_p(z'_(l+1)) - mu_p(z0_(l+1)). Unedited, z stays z0; an edit of z_L reaches z_1 and the image."""
        zs, zs0 = list(z.split(self.dims, -1)), list(z0.split(self.dims, -1))
        for l in range(len(self.dims) - 2, -1, -1):
            zs[l] = zs[l] + self.conditional_prior(l, zs[l + 1]).mu - self.conditional_prior(l, zs0[l + 1]).mu
        return torch.cat(zs, -1)

    @torch.no_grad()
    def sample(self, n: int, y=None, temperature: float = 1.0) -> torch.Tensor:
        """Ancestral sampling from the top: z_L ~ p(z_L), then z_l ~ p(z_l | z_(l+1)), then E[x|z_1]."""
        z = self.prior.sample(n, device=next(self.parameters()).device, temperature=temperature)
        for l in range(len(self.dims) - 2, -1, -1):
            p = self.conditional_prior(l, z)
            z = p.mu + temperature * p.std * torch.randn_like(p.mu)
        return self.likelihood.mean(self.decoder(z))

    @torch.no_grad()
    def reconstruct(self, x, y=None):
        return self.decode(self.encode(x))
