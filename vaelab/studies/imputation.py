"""Missing-data imputation with a trained run (``vaelab impute``): hide entries of test images by a mask, fill
them by a method of :mod:`vaelab.eval.imputation`, and compare the error on the hidden entries with mean imputation
(each pixel's mean over the training images; Mattei & Frellsen 2019's baseline) and, given one, a plain autoencoder
run's iterated reconstruction."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from ..api import load_run
from ..config import ConfigError
from ..data.masks import make_masks
from ..eval.imputation import (importance_imputation, iterated_reconstruction, metropolis_within_gibbs,
                               pseudo_gibbs, require_imputation)
from ..models.likelihood import Bernoulli
from ..objectives.miwae import FILL
from ..train import load_run_data

METHODS = ("pseudo-gibbs", "mwg", "importance")


def hidden_errors(imputed: torch.Tensor, truth: torch.Tensor, observed: torch.Tensor, binary: bool
                  ) -> dict[str, float]:
    """MSE per hidden entry of the imputation [B, C, H, W] against the truth (float64 sums), and for binary data
    the share of hidden entries whose rounded imputation is right."""
    hidden = ~observed
    se = ((imputed.double() - truth.double()) ** 2)[hidden]
    out = {"impute_mse": se.mean().item()}
    if binary:
        out["impute_accuracy"] = ((imputed > 0.5) == (truth > 0.5))[hidden].double().mean().item()
    return out


def impute(model: nn.Module, method: str, x: torch.Tensor, observed: torch.Tensor, fill: torch.Tensor, *,
           n: int = 5, steps: int = 50, k: int = 100, seed: int = 0) -> tuple[torch.Tensor, dict]:
    """Completions [n, B, C, H, W] of x by ``method`` (one of METHODS; importance gives one), and what the method
    reports (MWG: its acceptance rate)."""
    if method == "pseudo-gibbs":
        return pseudo_gibbs(model, x, observed, fill, n=n, steps=steps, seed=seed), {}
    if method == "mwg":
        done, rate = metropolis_within_gibbs(model, x, observed, fill, n=n, steps=steps, seed=seed)
        return done, {"acceptance": rate}
    if method == "importance":
        return importance_imputation(model, x, observed, fill, k=k, seed=seed), {}
    raise ConfigError(f"unknown imputation method {method!r}; choose one of {', '.join(METHODS)}")


@dataclass
class ImputationStudy:
    mask: str
    method: str
    errors: dict[str, dict[str, float]]  # "model" | "mean" | "autoencoder" -> {impute_mse[, impute_accuracy]}
    masked: torch.Tensor  # the inputs with hidden entries shown grey [B, C, H, W]
    completions: torch.Tensor  # [n, B, C, H, W]
    truth: torch.Tensor  # [B, C, H, W]
    extra: dict = field(default_factory=dict)

    def picture(self, images: int = 8) -> tuple[torch.Tensor, int]:
        """(rows of ``images`` columns: masked input, each completion, truth; nrow) for :func:`vaelab.viz.save_grid`."""
        b = min(images, len(self.truth))
        rows = [self.masked[:b], *self.completions[:, :b], self.truth[:b]]
        return torch.cat(rows), b

    def to_dict(self) -> dict:
        return {"mask": self.mask, "method": self.method, "errors": self.errors, "n_images": len(self.truth),
                "completions": len(self.completions), **self.extra}


def imputation_study(path: str | Path, mask: str = "random:0.5", method: str = "pseudo-gibbs", *,
                     split: str = "test", limit: int = 500, n: int = 5, steps: int = 50, k: int = 100,
                     baseline: str | Path | None = None, seed: int = 0, checkpoint: str = "best") -> ImputationStudy:
    """Hide the ``mask`` entries of the first ``limit`` images of the run's ``split``, fill them by ``method``
    (``n`` completions, ``steps`` sweeps; importance: ``k`` draws) and by the baselines, and measure each on the
    hidden entries; the model's imputation is the mean of its completions. The chains start from the run's own
    fill: zeros for a MIWAE run (what its encoder saw), else the per-pixel training mean."""
    cfg, model = load_run(path, checkpoint)
    require_imputation(model, f"imputation ({method})")
    data = load_run_data(cfg, evaluation=True)
    test = data.split(split)
    x = test.batch(slice(0, limit))
    observed = make_masks(mask, len(x), tuple(x.shape[1:]), seed)
    mean = data.train.pixel_mean()  # [C, H, W]
    fill = torch.full_like(mean, FILL) if cfg.objective.name == "miwae" else mean
    completions, about = impute(model, method, x, observed, fill, n=n, steps=steps, k=k, seed=seed)
    binary = isinstance(model.likelihood, Bernoulli)
    errors = {"model": hidden_errors(completions.mean(0), x, observed, binary),
              "mean": hidden_errors(torch.where(observed, x, mean), x, observed, binary)}
    if baseline is not None:
        _, ae = load_run(baseline, "best")
        if ae.family.density or not hasattr(ae, "reconstruct"):
            raise ConfigError(f"--baseline {baseline}: expected a plain autoencoder run (model autoencoder)")
        errors["autoencoder"] = hidden_errors(iterated_reconstruction(ae, x, observed, mean, steps=steps)[0], x,
                                              observed, binary)
    masked = torch.where(observed, x, torch.full_like(x, 0.5))
    return ImputationStudy(mask, method, errors, masked, completions, x,
                           {"split": split, "steps": steps, "seed": seed, **about})
