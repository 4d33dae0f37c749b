"""Evaluation of a VAE on a data split, batched; the same function serves validation and ``vaelab eval``."""
from __future__ import annotations

import torch
from torch import nn

from .. import noise
from ..data import Split
from ..models import VAE_FAMILY
from .common import EVALUATORS, CodeSample, Reduce, batches, reconstruction_sums

ACTIVE_UNIT_THRESHOLD = 0.01  # Burda et al. 2016, §5.2: A_u = Cov_x(E_q[u|x]) > 0.01
ACTIVITY_DRAWS = 16  # parent draws per example for E_q[u|x] of a hierarchical model's layers, in two halves


def decoder_mean(model: nn.Module, x: torch.Tensor, z: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
    """E[x|z], the image the metrics compare with x. A PixelCNN decoder has no closed-form mean (``decode`` draws
    pixel by pixel, H*W passes): it gives each pixel's E[x_i | x_<i, z], teacher-forced on x, in one pass."""
    out = model.decoder_out(z, y)
    forced = getattr(model.likelihood, "teacher_forced_mean", None)
    return model.likelihood.mean(out) if forced is None else forced(x, out)


def posterior_mean_halves(model: nn.Module, x: torch.Tensor, t) -> tuple[torch.Tensor, torch.Tensor]:
    """Two independent estimates of E_q(z|x)[z], [B, D] each, whose product estimates E_q[z|x]^2 without bias.

    With one stochastic layer both are the posterior mean ``t.q.mean``. A hierarchical model's layer has its
    posterior mean given its parent (ladder) or the layer below (bottom-up), and Burda et al. 2016's activity
    A_u = Cov_x(E_q(z|x)[u]) takes the expectation over those layers' draws too: the mean given one draw
    (what a forward pass gives) counts the draw's noise as activity, so a layer forced to its prior looked
    active. The deterministic path (:meth:`~vaelab.models.hierarchical.HierarchicalVAE.encode`) is only an
    approximation, the mean being nonlinear in the parent. So E_q[z|x] is averaged over ``ACTIVITY_DRAWS``
    parent draws, in two halves a and b: an average of S draws alone would add Var(mean | x) / S to A_u (about
    0.06 for S = 16 and unit variance, above the threshold), while E[a b | x] = E_q[z|x]^2 exactly, leaving a
    spread of about 2 Var(mean | x) / (S sqrt(N)) over N examples."""
    draws = getattr(model, "conditional_means", None)
    if draws is None:
        return t.q.mean, t.q.mean
    a, b = draws(x, ACTIVITY_DRAWS).unflatten(0, (2, -1)).mean(1)  # [2, S/2, B, D] -> the halves' means
    return a, b


def one_layer(model: nn.Module) -> bool:
    """A model with one stochastic layer, whose codes z are draws of q(z|x) under the prior p(z)."""
    return len(getattr(model, "dims", ())) <= 1  # a hierarchical VAE lists its layers in dims


@EVALUATORS.register(VAE_FAMILY.name)
@torch.no_grad()
def evaluate_elbo(model: nn.Module, split: Split, *, batch_size: int = 1000, seed: int = 0,
                  reduce: Reduce = None) -> dict:
    """Negative ELBO (the ``loss``), its reconstruction and KL parts (nats per example), MSE, PSNR and SSIM of
    the reconstruction (:func:`decoder_mean` at the posterior mean; MSE per pixel), the MMD between codes and the
    prior for a model with one stochastic layer (:class:`~vaelab.eval.common.CodeSample`), active units, the variance
    of each posterior mean over the data (``var_mu``, Cov_x(E_q[z_i|x]): see :func:`posterior_mean_halves`) and
    KL per dimension; a model with a classifier q(y|x) (M2), its ``class_error`` on the split's labels.

    ``kl_estimate`` says how the KL was computed: ``closed-form``, or ``monte-carlo`` (log q(z|x) - log p(z) at
    the drawn z: a mixture or VampPrior prior, a flow posterior, bottom-up layers), where ``kl_per_dim`` is None.

    On a binarized split the likelihood terms score the binary draws ``split.x``, which the encoder sees, while MSE,
    PSNR and SSIM compare the decoder's mean with the grey images they were drawn from (``split.images``): the mean
    of a Bernoulli decoder is a grey image, and the draws' own noise is no reconstruction error.

    ``reduce`` sums the running totals over processes when each holds a shard of ``split``. The model is in eval
    mode (:func:`~vaelab.eval.evaluate` sees to it).
    """
    device = next(model.parameters()).device
    d = model.latent_dim
    # running sums: n, -log p(x|z), KL, squared error, E_q[z|x], its square (a b), KL per dim
    sums = {k: torch.zeros((), dtype=torch.float64, device=device) for k in ("n", "recon", "kl", "se", "psnr", "ssim")}
    sums.update({k: torch.zeros(d, dtype=torch.float64, device=device) for k in ("mu", "mu2", "kl_dim")})
    closed_form = True
    codes = CodeSample() if one_layer(model) else None
    classifies = hasattr(model, "classify") and split.y is not None  # M2: its q(y|x)'s logits come with the terms
    sums["wrong"] = torch.zeros((), dtype=torch.float64, device=device)
    for i, x, y, images in batches(split, batch_size, device, model.conditional):
        with noise.batch_noise(noise.mix_seed(seed, i), device=device):
            t = model(x, y)
            a, b = posterior_mean_halves(model, x, t)
        x_hat = decoder_mean(model, x, t.q.mean, y)
        sums["n"] += len(x)
        sums["recon"] -= t.log_px_z.double().sum()
        sums["kl"] += t.kl.double().sum()
        for k, v in reconstruction_sums(images, x_hat).items():
            sums[k] += v
        sums["mu"] += (a.double() + b.double()).sum(0) / 2
        sums["mu2"] += (a.double() * b.double()).sum(0)
        closed_form = t.kl_per_dim is not None
        if closed_form:
            sums["kl_dim"] += t.kl_per_dim.double().sum(0)
        if codes is not None:
            codes.add(t.z)
        if classifies:
            sums["wrong"] += (t.logits.argmax(-1) != y).double().sum()
    if codes is not None:
        sums |= codes.sums(model.prior, seed)
    if reduce is not None:
        sums = {k: reduce(v) for k, v in sums.items()}
    n = sums["n"]
    var_mu = (sums["mu2"] / n - (sums["mu"] / n) ** 2).clamp(min=0)  # Cov_x(E_q[z_i|x]); a b may fall below 0
    recon, kl = (sums["recon"] / n).item(), (sums["kl"] / n).item()
    mmd = {"mmd": (sums["mmd"] / sums["mmd_parts"]).item()} if codes is not None else {}
    error = {"class_error": (sums["wrong"] / n).item()} if classifies else {}
    return mmd | error | {
        "n": int(n.item()),
        "loss": recon + kl,
        "nelbo": recon + kl,
        "recon": recon,
        "kl": kl,
        "mse": (sums["se"] / n).item(),
        "psnr": (sums["psnr"] / n).item(),
        "ssim": (sums["ssim"] / n).item(),
        "active_units": int((var_mu > ACTIVE_UNIT_THRESHOLD).sum().item()),
        "kl_estimate": "closed-form" if closed_form else "monte-carlo",
        "kl_per_dim": (sums["kl_dim"] / n).tolist() if closed_form else None,
        "var_mu": var_mu.tolist(),
    }
