"""InfoVAE (Zhao et al. 2019): the ELBO with its KL reweighted and an MMD between q(z) and p(z) added."""
from __future__ import annotations

from dataclasses import dataclass, field

from ..config import ConfigError, RunConfig
from ..data import DataFacts
from ..models import VAE_FAMILY
from .base import OBJECTIVES, Objective
from .mmd import check_kernel, prior_mmd


@dataclass
class InfoVAEOptions:
    """objective.info: the InfoVAE objective's alpha and lambda (Zhao et al. 2019, eq. 6), and the MMD's kernel.

    Defaults: alpha = 0 keeps the ELBO's whole KL; lambda = 1000, the MMD weight of the paper's MMD experiments as
    recalled (not re-checked against the text when written): an MMD between codes is of order 1e-3 to 1e-1, the
    ELBO's terms of order 100 nats. ``mmd-vae`` is alpha = 1,
    lambda = 1000 (no KL at all). The kernel is the paper's Gaussian, 2 sigma^2 = d_z, at ``scales`` 1."""

    alpha: float = 0.0
    lam: float = 1000.0
    kernel: str = "rbf"  # rbf (InfoVAE's) | imq (the WAE's)
    scales: list[float] = field(default_factory=lambda: [1.0])


def info_weights(alpha: float, lam: float) -> tuple[float, float]:
    """(KL weight 1 - alpha, MMD weight alpha + lambda - 1) of Zhao et al. 2019, eq. 6; ConfigError when either
    is negative: a negative MMD weight rewards a q(z) far from p(z) (alpha = 0.5, lambda = 0.03 gives -0.47), a
    negative KL weight rewards a large KL."""
    kl_w, mmd_w = 1.0 - alpha, alpha + lam - 1.0
    if mmd_w < 0:
        raise ConfigError(f"objective.info: the MMD weight alpha + lambda - 1 = {alpha:g} + {lam:g} - 1 = {mmd_w:g} is "
                          f"negative, which would push q(z) away from the prior; choose lambda >= 1 - alpha")
    if kl_w < 0:
        raise ConfigError(f"objective.info: the KL weight 1 - alpha = {kl_w:g} is negative, which would reward a large "
                          f"KL; choose alpha <= 1 (alpha = 1: the MMD-VAE, no KL)")
    return kl_w, mmd_w


@OBJECTIVES.register("infovae")
class InfoVAEObjective(Objective):
    """InfoVAE (Zhao et al. 2019, eq. 6): recon + (1 - alpha) KL(q(z|x) || p(z)) + (alpha + lambda - 1)
    MMD(q(z) || p(z)), the MMD between the batch's codes z ~ q(z|x) and draws of p(z) (:func:`prior_mmd`).
    ``nelbo`` is the ELBO's recon + KL, whatever the weights."""

    family = VAE_FAMILY
    Options, options_key = InfoVAEOptions, "info"

    @classmethod
    def check(cls, cfg: RunConfig) -> None:
        o = cfg.objective.info
        info_weights(o.alpha, o.lam)
        check_kernel("objective.info", o.kernel, o.scales)
        m = cfg.model
        got = [f"model.layers {m.layers}"] if m.layers else []
        got += [f"objective.k {cfg.objective.k}"] if cfg.objective.k != 1 else []
        if got:
            raise ConfigError(f"objective 'infovae' compares one layer of codes, one draw per example, with the prior "
                              f"(model.layers empty, objective.k 1); got {', '.join(got)}")

    def __init__(self, cfg: RunConfig, facts: DataFacts, total_steps: int):
        super().__init__(cfg, facts, total_steps)
        self.kl_weight, self.mmd_weight = info_weights(self.options.alpha, self.options.lam)

    def forward(self, model, x, y, step):
        t = model(x, y)
        recon, kl = -t.log_px_z.mean(), t.kl.mean()
        mmd = prior_mmd(model, t.z, self.options.kernel, self.options.scales)
        loss = recon + self.kl_weight * kl + self.mmd_weight * mmd
        return loss, {"loss": loss.detach(), "nelbo": (recon + kl).detach(), "recon": recon.detach(),
                      "kl": kl.detach(), "mmd": mmd.detach()}
