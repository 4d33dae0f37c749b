"""Loading and evaluating trained runs from Python."""
from __future__ import annotations

import json
from pathlib import Path

from .data import Split, binarize
from .eval import ais_log_likelihood, evaluate, log_likelihood
from .eval.bpd import bits_per_dim, bpd_convention
from .measures import MEASURES
from .models import load, load_run
from .models.linear import exact_log_px, linear_gaussian_parts
from .rundir import RunDir, write_atomic
from .train import load_run_data
from .train.prior import encode_codes, prior_dir

__all__ = ["load", "load_run", "evaluate_run"]


def evaluate_run(path: str | Path, split: str = "test", checkpoint: str = "best", device: str = "cpu", *,
                 batch_size: int | None = None, seed: int = 0, nll_samples: int = 0, ais_steps: int = 0,
                 ais_chains: int = 16, progress: bool = False) -> dict:
    """Evaluate run ``path`` on a split of its dataset, write ``path/eval.json`` and return it (``vaelab eval``).

    Every model: its family's metrics (:func:`vaelab.eval.evaluate`) on the split binarized as the run was trained
    (``binarization`` says how); a model with a likelihood: which (``likelihood``), what it scores and what the image
    metrics compare with (``likelihood_on``, ``image_metrics_on``: binary draws, and the grey images they came
    from), the ``bpd_convention`` that applies to the split (None: no bits per dimension mean anything) and, under
    it, the negative ELBO in bits per dimension (``nelbo_bpd``, an upper bound on ``bpd``); a VQ-VAE with a code
    prior: the prior's bits per code; a VAE with ``nll_samples`` / ``ais_steps``: -log p(x) by importance sampling /
    AIS, the gap, and bits per dimension where a ``bpd_convention`` gives them meaning (:mod:`vaelab.eval.bpd`); a
    linear-Gaussian VAE: the exact ``nll_exact`` (:mod:`vaelab.models.linear`)."""
    cfg, model = load_run(path, checkpoint, device)
    if nll_samples or ais_steps:
        model.family.require("likelihood", "an NLL estimate (--nll-samples, --ais-steps)")
    dataset = load_run_data(cfg, evaluation=True)
    data = dataset.split(split)
    result = {"split": split, "checkpoint": checkpoint, "dataset": cfg.data.name, "model": cfg.model.name,
              "binarization": binarize.describe(dataset, cfg.data.binarize, cfg.data.seed, split),
              **evaluate(model, data, batch_size=batch_size, seed=seed)}
    if hasattr(model, "likelihood"):
        result |= likelihood_facts(cfg, model, data)
        if "nelbo" in result:
            result["nelbo_bpd"] = bits_per_dim(result["nelbo"], data.x[0].numel(), result["bpd_convention"])
    if model.family.can("code-prior") and (prior_dir(path) / "config.yaml").exists():
        _, prior = load_run(prior_dir(path), "best", device)
        result["prior_bits_per_code"] = evaluate(prior, encode_codes(model, data))["bits_per_code"]
    if linear_gaussian_parts(model) is not None:
        result["nll_exact"] = -exact_log_px(model, data.x).mean().item()
    if nll_samples:
        ll = log_likelihood(model, data, k=nll_samples, seed=seed, progress=progress)
        result |= {"nll": ll["nll"], "nll_se": ll["nll_se"], "bpd": ll["bpd"], "bpd_convention": ll["bpd_convention"],
                   "nll_samples": ll["k"], "gap": result["nelbo"] - ll["nll"]}
    if ais_steps:
        ais = ais_log_likelihood(model, data, steps=ais_steps, chains=ais_chains, seed=seed, progress=progress)
        result["ais"] = {k: v for k, v in ais.items() if k != "log_px"}
    result["metrics"] = [k for k in result if k in MEASURES and k != "n"]  # what applies to this model; the rest
    # (an ELBO, NLL, bits per dimension for a model without a likelihood; codebook use without codes) is left out
    write_atomic(RunDir(path).eval, json.dumps(result, indent=2))
    return result


def likelihood_facts(cfg, model, data: Split) -> dict:
    """What eval.json says about the likelihood: its name, the data it scores, what the image metrics compare
    with, and the bits-per-dimension convention that applies to these data (or None)."""
    binarized = data.source is not None
    return {"likelihood": "pixelcnn" if cfg.model.decoder == "pixelcnn" else cfg.model.likelihood,
            "likelihood_on": "binary draws of the images (binarization)" if binarized else "the images",
            "image_metrics_on": "the grey images the draws came from" if binarized else "the images",
            "bpd_convention": bpd_convention(model, data.x)}
