"""Objectives that penalize dependence between latent dimensions: beta-TC-VAE, FactorVAE, DIP-VAE.

All use the reconstruction term of the ELBO and each example's posterior N(mu, diag(s^2)); their penalties
are functions of the minibatch's posteriors and samples. Each objective's ``check`` (run before data are loaded)
refuses the models that have no such posterior.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..config import ConfigError, RunConfig
from ..data import DataFacts
from ..models import VAE_FAMILY
from ..models.posterior import LOG_2PI
from .base import OBJECTIVES, Objective, Player
from .critics import Discriminator


def log_q_pairs(z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """log q(z_i,d | x_j) for every pair of batch members and dimension: [B, B, D] (i: sample, j: posterior)."""
    z, mu, logvar = z[:, None], mu[None], logvar[None]
    return -0.5 * (LOG_2PI + logvar + (z - mu) ** 2 * torch.exp(-logvar))


def log_importance_weights(batch: int, dataset_size: int, estimator: str, device) -> torch.Tensor:
    """log of the weights over the batch's posteriors that estimate log q(z) = log E_x[q(z|x)]:
    minibatch-weighted sampling (Chen et al. 2018, §4.1) gives each one 1/(N M); minibatch-stratified
    sampling (appendix C.2) weights the sample's own posterior 1/N, one other (N - M + 1)/(N (M - 1)) and
    the rest 1/(M - 1), which sum to 1. These are the appendix's weights; the authors' released code
    (rtqichen/beta-tcvae) puts the 1/N in the first column rather than on the diagonal (a stride of M instead
    of M + 1), so its rows are not the sample's own posterior."""
    n, m = dataset_size, batch
    if estimator == "mws":
        return torch.full((m, m), -math.log(n * m), device=device)
    if estimator != "mss":
        raise ConfigError(f"unknown beta-TC estimator {estimator!r}; known: mws, mss")
    if m < 3:
        raise ConfigError("the minibatch-stratified estimator needs batches of at least 3")
    strat = (n - m + 1) / (n * (m - 1))
    w = torch.full((m, m), 1 / (m - 1), device=device)
    w.view(-1)[:: m + 1] = 1 / n  # its own posterior
    w[torch.arange(m - 1), torch.arange(1, m)] = strat  # the next one stands for the stratum
    w[m - 1, 0] = strat
    return w.log()


def tc_decomposition(z, mu, logvar, log_pz, dataset_size: int, estimator: str = "mss") -> dict[str, torch.Tensor]:
    """Chen et al. 2018, eq. 2: E[KL(q(z|x) || p(z))] = index-code MI + total correlation + dimension-wise KL,
    each estimated on the minibatch: [B] tensors ``mi``, ``tc``, ``dw_kl``, and ``kl`` (their sum)."""
    lw = log_importance_weights(len(z), dataset_size, estimator, z.device)  # [B, B]
    pairs = log_q_pairs(z, mu, logvar)  # [B, B, D]
    log_qz_x = pairs.diagonal(dim1=0, dim2=1).sum(0)  # log q(z_i | x_i): [B]
    log_qz = torch.logsumexp(pairs.sum(-1) + lw, dim=1)  # log q(z_i)
    log_prod_qz = torch.logsumexp(pairs + lw[..., None], dim=1).sum(-1)  # sum_d log q(z_i,d)
    return {"mi": log_qz_x - log_qz, "tc": log_qz - log_prod_qz, "dw_kl": log_prod_qz - log_pz,
            "kl": log_qz_x - log_pz}


def check_one_gaussian_layer(cfg: RunConfig) -> None:
    """ConfigError unless the run's model has the posterior these objectives read: one diagonal Gaussian
    q(z|x) = N(mu, diag s^2) over the whole code, at one sample z per example. A hierarchical model's code is not
    one (a layer's Gaussian depends on the drawn layer it is conditioned on, so log q(z_i | x_j) from the
    concatenated means and variances is wrong, and FactorVAE's discriminator is sized by model.latent_dim), a
    flow posterior is not Gaussian, and they take one z, so objective.k > 1 would be ignored."""
    m, o = cfg.model, cfg.objective
    got = [f"model.layers {m.layers}"] if m.layers else []
    got += [f"model.posterior {m.posterior}"] if m.posterior != "gaussian" else []
    got += [f"objective.k {o.k}"] if o.k != 1 else []
    if got:
        raise ConfigError(f"objective {o.name!r} trains one-layer VAEs with a Gaussian posterior and one sample of z "
                          f"(model.layers empty, model.posterior gaussian, objective.k 1); got {', '.join(got)}")


@dataclass
class BetaTCOptions:
    """objective.btc: the weights of index-code MI, total correlation and dimension-wise KL (Chen et al. 2018,
    eq. 4), and the estimator of log q(z)."""

    alpha: float = 1.0
    beta: float = 6.0
    gamma: float = 1.0
    estimator: str = "mss"  # mws (minibatch-weighted) | mss (minibatch-stratified)


@OBJECTIVES.register("beta-tc")
class BetaTCObjective(Objective):
    """beta-TC-VAE (Chen et al. 2018, eq. 4): recon + alpha MI + beta TC + gamma dimension-wise KL."""

    family = VAE_FAMILY
    Options, options_key = BetaTCOptions, "btc"
    check = staticmethod(check_one_gaussian_layer)

    def __init__(self, cfg: RunConfig, facts: DataFacts, total_steps: int):
        super().__init__(cfg, facts, total_steps)
        if facts.train_size < 2:
            raise ConfigError(f"beta-TC-VAE's estimators need the training set's size; got {facts.train_size}")
        self.dataset_size = facts.train_size

    def forward(self, model, x, y, step):
        o = self.options
        t = model(x, y)
        d = tc_decomposition(t.z, t.q.mu, t.q.logvar, t.log_pz, self.dataset_size, o.estimator)
        recon = -t.log_px_z.mean()
        mi, tc, dw = d["mi"].mean(), d["tc"].mean(), d["dw_kl"].mean()
        loss = recon + o.alpha * mi + o.beta * tc + o.gamma * dw
        kl = t.kl.mean()
        return loss, {"loss": loss.detach(), "nelbo": (recon + kl).detach(), "recon": recon.detach(),
                      "kl": kl.detach(), "mi": mi.detach(), "tc": tc.detach(), "dw_kl": dw.detach()}


DIP_LAMBDA_D_FACTOR = {"dip-i": 10.0, "dip-ii": 1.0}  # lambda_d / lambda_od by variant


def dip_lambda_d(variant: str, lambda_od: float, lambda_d: float | None = None) -> float:
    """``lambda_d`` as given, or (None) the variant's default: 10 lambda_od for DIP-I, lambda_od for DIP-II
    (Kumar et al. 2018; disentanglement_lib's lambda_d_factor)."""
    if variant not in DIP_LAMBDA_D_FACTOR:
        raise ConfigError(f"unknown DIP-VAE variant {variant!r}; known: {', '.join(DIP_LAMBDA_D_FACTOR)}")
    return DIP_LAMBDA_D_FACTOR[variant] * lambda_od if lambda_d is None else lambda_d


def dip_penalty(mu: torch.Tensor, logvar: torch.Tensor, variant: str, lambda_od: float, lambda_d: float
                ) -> torch.Tensor:
    """DIP-VAE (Kumar et al. 2018, eq. 6-7): push the covariance of the aggregate posterior towards I.
    DIP-I uses Cov[mu(x)]; DIP-II adds E[diag s^2(x)], the covariance of q(z) itself."""
    cov = torch.cov(mu.t())  # [D, D]
    if variant == "dip-ii":
        cov = cov + torch.diag(torch.exp(logvar).mean(0))
    diag = torch.diagonal(cov)
    off = cov - torch.diag(diag)
    return lambda_od * (off**2).sum() + lambda_d * ((diag - 1) ** 2).sum()


@dataclass
class DIPOptions:
    """objective.dip: DIP-VAE's off-diagonal and diagonal covariance penalties (Kumar et al. 2018)."""

    lambda_od: float = 10.0
    lambda_d: float | None = None  # None: the variant's default, 10 * lambda_od (DIP-I) or lambda_od (DIP-II)


class DIPObjective(Objective):
    """DIP-VAE (Kumar et al. 2018, eq. 6-7): ELBO + :func:`dip_penalty`; variant ``dip-i`` or ``dip-ii`` (the
    objective's name), ``lambda_d`` None for the variant's default (:func:`dip_lambda_d`)."""

    family = VAE_FAMILY
    Options, options_key = DIPOptions, "dip"
    check = staticmethod(check_one_gaussian_layer)
    variant: str

    def __init__(self, cfg: RunConfig, facts: DataFacts, total_steps: int):
        super().__init__(cfg, facts, total_steps)
        self.lambda_od = self.options.lambda_od
        self.lambda_d = dip_lambda_d(self.variant, self.lambda_od, self.options.lambda_d)

    def forward(self, model, x, y, step):
        t = model(x, y)
        recon, kl = -t.log_px_z.mean(), t.kl.mean()
        penalty = dip_penalty(t.q.mu, t.q.logvar, self.variant, self.lambda_od, self.lambda_d)
        loss = recon + kl + penalty
        return loss, {"loss": loss.detach(), "nelbo": (recon + kl).detach(), "recon": recon.detach(),
                      "kl": kl.detach(), "dip": penalty.detach()}


def permute_dims(z: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Each latent dimension shuffled independently across the batch: samples of prod_d q(z_d)
    (Kim & Mnih 2018, Algorithm 1)."""
    b, d = z.shape
    idx = torch.argsort(torch.rand(b, d, generator=generator, device=z.device), dim=0)
    return z.gather(0, idx)


@OBJECTIVES.register("dip-i")
class DIPIObjective(DIPObjective):
    """DIP-VAE-I (Kumar et al. 2018, eq. 6): the covariance of the posterior means pushed to I."""

    variant = "dip-i"


@OBJECTIVES.register("dip-ii")
class DIPIIObjective(DIPObjective):
    """DIP-VAE-II (Kumar et al. 2018, eq. 7): the covariance of q(z) itself pushed to I."""

    variant = "dip-ii"


@dataclass
class FactorOptions:
    """objective.factor: FactorVAE's TC weight gamma and its discriminator (Kim & Mnih 2018)."""

    gamma: float = 35.0
    disc_lr: float = 1e-4
    disc_hidden: int = 1000


@OBJECTIVES.register("factor")
class FactorObjective(Objective):
    """FactorVAE (Kim & Mnih 2018, eq. 2): ELBO + gamma TC, with TC ~ E_q(z)[log D(z) / (1 - D(z))] from a
    discriminator, a :class:`~vaelab.objectives.base.Player` with its own Adam (lr ``disc_lr``, betas (0.5, 0.9)).

    The discriminator learns from each step's z at the start of the next step (a step behind the VAE, which the
    paper's alternating updates also are); that z waits in the buffer ``pending``, saved in checkpoints."""

    family = VAE_FAMILY
    Options, options_key = FactorOptions, "factor"
    check = staticmethod(check_one_gaussian_layer)
    pending_buffers = ("pending",)  # the last step's z, [B, D]; empty before the first step

    def __init__(self, cfg: RunConfig, facts: DataFacts, total_steps: int):
        super().__init__(cfg, facts, total_steps)
        self.disc = Discriminator(cfg.model.latent_dim, self.options.disc_hidden)
        self.disc_opt = torch.optim.Adam(self.disc.parameters(), lr=self.options.disc_lr, betas=(0.5, 0.9))

    def players(self) -> list[Player]:
        return [Player("disc", self.disc, self.disc_opt, self._disc_loss)]

    def _disc_loss(self, step: int) -> torch.Tensor | None:
        """Cross-entropy of telling the last step's z (class 0) from z with dimensions permuted (class 1)."""
        z = self.pending
        if z.numel() == 0:
            return None
        half = len(z) // 2
        z_joint, z_perm = z[:half], permute_dims(z[half:2 * half])
        logits = self.disc(torch.cat([z_joint, z_perm]))
        labels = torch.cat([torch.zeros(half), torch.ones(half)]).long().to(z.device)
        return F.cross_entropy(logits, labels)

    def forward(self, model, x, y, step):
        t = model(x, y)
        self.pending = t.z.detach()
        logits = self.disc(t.z)
        tc = (logits[:, 0] - logits[:, 1]).mean()  # log D(z) - log(1 - D(z)), D = P(joint)
        recon, kl = -t.log_px_z.mean(), t.kl.mean()
        loss = recon + kl + self.options.gamma * tc
        return loss, {"loss": loss.detach(), "nelbo": (recon + kl).detach(), "recon": recon.detach(),
                      "kl": kl.detach(), "tc": tc.detach()}
