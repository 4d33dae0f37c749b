"""Sample quality: how generated images compare with reference (test) images in a feature network's space.

- FID (Heusel et al. 2017, eq. 6): ||mu_r - mu_g||^2 + Tr(S_r + S_g - 2 (S_r S_g)^(1/2)) between Gaussians fitted to
  the two feature sets (torchmetrics' ``FrechetInceptionDistance``, float64 sums);
- KID (Bińkowski et al. 2018, eq. 4): the unbiased MMD^2 with the kernel (x.y / d + 1)^3, mean and standard deviation
  over random subsets of both sets (torchmetrics' ``KernelInceptionDistance``);
- Inception Score (Salimans et al. 2016): exp E_x[KL(p(y|x) || p(y))] with the feature network's classifier, mean and
  standard deviation over 10 splits of the samples (torchmetrics' ``InceptionScore``);
- precision/recall (Kynkäänniemi et al. 2019, k = 3) and density/coverage (Naeem et al. 2020, k = 5): :mod:`.prdc`.

Images pass through the network in batches (:func:`extract`): a sampler's images are made, featurized and dropped
batch by batch, so memory holds the features (N x D), never all the samples.
"""
from __future__ import annotations

import warnings
from typing import Callable, Iterable, Iterator

import torch
from torch import nn

from ..features import FeatureNetwork
from .prdc import prdc

Sampler = Callable[[int, "torch.Tensor | None"], torch.Tensor]  # (n, labels [n] or None) -> images [n, C, H, W]
FEATURE_BATCH = 500
K_PRECISION_RECALL, K_DENSITY_COVERAGE = 3, 5
KID_SUBSETS, KID_SUBSET_SIZE, IS_SPLITS = 100, 1000, 10


class _Given(nn.Module):
    """Features already computed, handed to torchmetrics' metrics as their "network"."""

    def __init__(self, num_features: int):
        super().__init__()
        self.num_features = num_features

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return features


@torch.no_grad()
def extract(net: FeatureNetwork, images: Iterable[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Features [N, D] and logits [N, K] (float64) of the image batches, made one batch at a time."""
    device = next(net.module.parameters()).device
    out = [tuple(t.double().cpu() for t in net.module(x.to(device))) for x in images]
    return torch.cat([f for f, _ in out]), torch.cat([logit for _, logit in out])


def in_batches(x: torch.Tensor, batch_size: int = FEATURE_BATCH) -> Iterator[torch.Tensor]:
    return (x[s:s + batch_size] for s in range(0, len(x), batch_size))


def sampled(sampler: Sampler, n: int, labels: torch.Tensor | None = None,
            batch_size: int = FEATURE_BATCH) -> Iterator[torch.Tensor]:
    """``n`` samples in batches (labels [n] for a conditional sampler)."""
    for s in range(0, n, batch_size):
        yield sampler(min(batch_size, n - s), None if labels is None else labels[s:s + batch_size])


def _metric(cls, *args, **kw):
    """A torchmetrics image metric on features already computed (imported here: torchmetrics takes seconds to
    import, which every other vaelab command would pay)."""
    import importlib

    module, name = cls.rsplit(".", 1)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*will save all extracted features.*")
        return getattr(importlib.import_module(f"torchmetrics.image.{module}"), name)(*args, **kw)


def fid(real: torch.Tensor, fake: torch.Tensor) -> float:
    """The Fréchet distance of Gaussians fitted to features [N, D] and [M, D], in float64."""
    metric = _metric("fid.FrechetInceptionDistance", feature=_Given(real.shape[1]))
    metric.update(real.double(), real=True)
    metric.update(fake.double(), real=False)
    return metric.compute().item()


def kid(real: torch.Tensor, fake: torch.Tensor, subsets: int = KID_SUBSETS,
        subset_size: int = KID_SUBSET_SIZE) -> tuple[float, float]:
    """KID's mean and standard deviation over ``subsets`` random pairs of subsets of min(``subset_size``, N, M)
    features each, in float64; subsets drawn with the global RNG. When both sets are that size every subset is the
    whole set: one MMD^2, standard deviation 0."""
    size = min(subset_size, len(real), len(fake))
    metric = _metric("kid.KernelInceptionDistance", feature=_Given(real.shape[1]),
                     subsets=1 if len(real) == len(fake) == size else subsets, subset_size=size)
    metric.update(real.double(), real=True)
    metric.update(fake.double(), real=False)
    mean, std = metric.compute()
    return mean.item(), std.item()


def inception_score(logits: torch.Tensor, splits: int = IS_SPLITS) -> tuple[float, float]:
    """The Inception Score of samples with classifier logits [M, K]: mean and standard deviation over ``splits``
    random splits (global RNG)."""
    metric = _metric("inception.InceptionScore", feature=_Given(logits.shape[1]), splits=splits)
    metric.update(logits.double())
    mean, std = metric.compute()
    return mean.item(), std.item()


def scores(real: torch.Tensor, fake: torch.Tensor, fake_logits: torch.Tensor | None = None, seed: int = 0) -> dict:
    """FID, KID (mean and std), precision, recall, density, coverage of ``fake`` features [M, D] against ``real``
    features [N, D]; with ``fake_logits`` the Inception Score of the fakes too. KID's subsets and IS's splits are
    drawn from ``seed`` (the global RNG is restored afterwards)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        result = {"fid": fid(real, fake), **dict(zip(("kid", "kid_std"), kid(real, fake)))}
        if fake_logits is not None:
            result |= dict(zip(("inception_score", "inception_score_std"), inception_score(fake_logits)))
    return result | prdc(real, fake, K_PRECISION_RECALL, K_DENSITY_COVERAGE)


def sample_quality(net: FeatureNetwork, sampler: Sampler, reference: torch.Tensor, n: int = 10_000, *,
                   labels: torch.Tensor | None = None, seed: int = 0, batch_size: int = FEATURE_BATCH) -> dict:
    """The scores of ``n`` images from ``sampler`` against the ``reference`` images [N, C, H, W] (a test split).

    A conditional sampler gets ``labels`` [N], the reference images' classes, repeated to ``n`` (so the samples
    follow the test set's class frequencies); then ``per_class`` holds each class's scores, its samples against its
    test images (no Inception Score: one class has none to speak of). Samples are drawn with the global RNG seeded by
    ``seed``, restored afterwards."""
    net.check(tuple(reference.shape[1:]), "the reference images")
    drawn = None if labels is None else labels[torch.arange(n) % len(labels)]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        fake, fake_logits = extract(net, sampled(sampler, n, drawn, batch_size))
    real, _ = extract(net, in_batches(reference, batch_size))
    result = {"n": n, "n_reference": len(reference), **scores(real, fake, fake_logits, seed)}
    if drawn is not None:
        result["per_class"] = {int(c): scores(real[labels == c], fake[drawn == c], seed=seed)
                               for c in labels.unique().tolist()}
    return result
