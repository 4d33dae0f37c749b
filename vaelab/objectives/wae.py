"""The Wasserstein autoencoder with an MMD penalty, WAE-MMD (Tolstikhin et al. 2018, Algorithm 2)."""
from __future__ import annotations

from dataclasses import dataclass, field

from ..config import ConfigError, RunConfig
from ..models import AUTOENCODER
from .base import OBJECTIVES, Objective
from .mmd import WAE_SCALES, check_kernel, prior_mmd


@dataclass
class WAEOptions:
    """objective.wae: the penalty's weight lambda (the paper's MNIST 10, CelebA 100) and the kernel: the
    inverse multiquadratic, C = 2 d_z sigma_z^2 times each of ``scales`` (Tolstikhin et al. 2018, §4)."""

    lam: float = 10.0
    kernel: str = "imq"
    scales: list[float] = field(default_factory=lambda: list(WAE_SCALES))


@OBJECTIVES.register("wae-mmd")
class WAEMMDObjective(Objective):
    """WAE-MMD (Tolstikhin et al. 2018, Algorithm 2): the cost ||x - G(z)||^2 per example + lambda MMD^2_u between
    the batch's codes z ~ Q(z|x) and as many draws of p(z) (:func:`~vaelab.objectives.mmd.prior_mmd`)."""

    family = AUTOENCODER
    Options, options_key = WAEOptions, "wae"

    @classmethod
    def check(cls, cfg: RunConfig) -> None:
        o = cfg.objective.wae
        if not o.lam >= 0:
            raise ConfigError(f"objective.wae.lam must be >= 0; got {o.lam}")
        check_kernel("objective.wae", o.kernel, o.scales)

    def forward(self, model, x, y, step):
        t = model(x, y)
        recon = t.recon.mean()
        mmd = prior_mmd(model, t.z, self.options.kernel, self.options.scales)
        loss = recon + self.options.lam * mmd
        return loss, {"loss": loss.detach(), "sse": recon.detach(), "mmd": mmd.detach()}
