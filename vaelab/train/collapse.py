"""Posterior-collapse diagnostics of a validation pass: the latent dimensions that carry (almost) no information.

A VAE whose KL per dimension falls to zero has posteriors q(z_i|x) equal to the prior: the decoder ignores z
(Bowman et al. 2016; Lucas et al. 2019). Validation already measures the KL of each dimension and the active units
(Burda et al. 2016, Cov_x(E_q[z_i|x]) > 0.01; :func:`vaelab.eval.metrics.evaluate_elbo`); this module reads them and
says, once, when the model has collapsed, naming the remedies vaelab has.
"""
from __future__ import annotations

KL_DIM_THRESHOLD = 0.01  # nats: a dimension whose KL is below this carries almost nothing about x
COLLAPSED_SHARE = 0.9  # "most" dimensions: at least this share below KL_DIM_THRESHOLD
WARN_AFTER_EPOCHS = 2  # warned when collapsed this many epochs in a row: after its first epoch a VAE that goes on to
# use its latents often has none active yet (an MLP VAE on the 8x8 digits: 0 active units at epoch 1, 4 at epoch 2)
REMEDIES = ("free bits (--set kl.free_bits=0.5: no KL penalty below 0.5 nats per dimension), KL warm-up "
            "(--set kl.schedule=linear kl.warmup_steps=N), a cyclical schedule (--set kl.schedule=cyclical), "
            "or a smaller kl.beta")


def collapsed_dims(val: dict) -> int | None:
    """How many latent dimensions carry less than :data:`KL_DIM_THRESHOLD` nats; None without a KL per dimension
    (a Monte Carlo KL, or a model family without one)."""
    kl = val.get("kl_per_dim")
    return None if kl is None else sum(k < KL_DIM_THRESHOLD for k in kl)


def collapse(val: dict) -> str | None:
    """What a validation pass ``val`` says of posterior collapse: None for a healthy model, else one line naming what
    collapsed and the remedies. Collapse: no active units, or at least :data:`COLLAPSED_SHARE` of the dimensions
    below :data:`KL_DIM_THRESHOLD` nats."""
    if "active_units" not in val:
        return None  # not a VAE: no latent posterior to collapse
    d, low = len(val.get("var_mu") or ()), collapsed_dims(val)
    if val["active_units"] == 0:
        what = f"no active units (of {d} latent dimensions)"
    elif low is not None and d and low >= COLLAPSED_SHARE * d:
        what = f"{low} of {d} latent dimensions carry less than {KL_DIM_THRESHOLD} nats of KL"
    else:
        return None
    return f"posterior collapse: {what}; the decoder ignores z. Remedies: {REMEDIES}"
