"""Latent arithmetic with attribute vectors (White 2016, "Sampling Generative Networks", §2.4): the mean posterior
mean of the examples that have an attribute minus that of those that do not. Adding it to an image's code at
strengths 0..s draws the image gaining the attribute; an analogy decodes a - b + c.

Attributes come from the data: a labelled dataset's classes ("3": that class against the others), CelebA's 40
binary attributes (``list_attr_celeba.txt``), a factor dataset's factors (dSprites, 3D Shapes: the factor's upper
half of values against its lower half, "scale" = large against small).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from ..api import load_run
from ..config import ConfigError
from ..data.factors import FACTOR_DATASETS, load_factor_dataset
from ..eval.representation import posterior_means
from ..train import load_run_data

ATTRIBUTE_EXAMPLES = 5000  # examples whose codes make the vectors


@dataclass
class Attributes:
    """Images (as the model sees them, ``x``; as the dataset holds them, ``images``) and which of them have each
    attribute: ``has[name]`` bool [N]."""

    x: torch.Tensor  # [N, C, H, W]
    images: torch.Tensor  # [N, C, H, W]
    has: dict[str, torch.Tensor]


def factor_attributes(name: str, data_dir, n: int, seed: int) -> Attributes:
    """``n`` images of factor dataset ``name`` drawn by ``seed``; each factor with several values is an attribute:
    its value index in the upper half of its range (>= size / 2)."""
    grid = load_factor_dataset(name, data_dir)
    factors, images = grid.sample(n, np.random.default_rng(seed))
    has = {f: torch.from_numpy(factors[:, j] >= size / 2) for j, (f, size) in
           enumerate(zip(grid.factor_names, grid.factor_sizes)) if size > 1}
    return Attributes(images, images, has)


def run_attributes(cfg, split: str = "test", n: int = ATTRIBUTE_EXAMPLES, seed: int = 0) -> Attributes:
    """The attributes of the first ``n`` examples of a run's dataset's ``split``: CelebA's attributes when its
    split carries them, else the classes of a labelled dataset, else a factor dataset's factors."""
    if cfg.data.name in FACTOR_DATASETS:
        return factor_attributes(cfg.data.name, cfg.data.data_dir, n, seed)
    dataset = load_run_data(cfg, evaluation=True)
    data = dataset.split(split)
    x, images = data.batch(slice(0, n)), data.images_at(slice(0, n))
    if data.attributes is not None:
        table = data.attributes[:n].bool()
        return Attributes(x, images, {a: table[:, j] for j, a in enumerate(dataset.attribute_names)})
    if data.y is None or dataset.num_classes < 2:
        raise ConfigError(f"dataset {cfg.data.name!r} has no labels, attributes or factors to make attribute "
                          f"vectors from")
    y = data.y[:n]
    return Attributes(x, images, {str(c): y == c for c in range(dataset.num_classes)})


def attribute_vectors(z: torch.Tensor, has: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """For codes z [N, D]: each attribute's vector, mean(z | has it) - mean(z | has it not), [D] (White 2016).
    Attributes that every example has, or none, give no vector and are left out."""
    return {a: z[h].mean(0) - z[~h].mean(0) for a, h in has.items() if 0 < int(h.sum()) < len(h)}


def check_model(model: nn.Module) -> None:
    model.family.require("interpolate", "latent arithmetic")
    if model.conditional:
        raise ConfigError("latent arithmetic moves an image's code z, which a conditional model (CVAE, M2) keeps "
                          "apart from the label: use an unconditional model")


class Arithmetic:
    """A run's model with the codes of its attribute examples: vectors, moved images, analogies.

    ``Arithmetic(run)`` loads run ``run``; ``vectors`` are its attribute vectors (name -> [D])."""

    def __init__(self, run, checkpoint: str = "best", split: str = "test", n: int = ATTRIBUTE_EXAMPLES,
                 seed: int = 0, device: str = "cpu"):
        self.cfg, self.model = load_run(run, checkpoint, device)
        check_model(self.model)
        self.data = run_attributes(self.cfg, split, n, seed)
        self.z = posterior_means(self.model, self.data.x).float()  # [N, D]
        self.vectors = attribute_vectors(self.z, self.data.has)

    @property
    def names(self) -> list[str]:
        return list(self.vectors)

    def vector(self, name: str) -> torch.Tensor:
        if name not in self.vectors:
            raise ConfigError(f"unknown attribute {name!r}; this run's data have: {', '.join(self.names)}")
        return self.vectors[name]

    def code(self, token: str) -> torch.Tensor:
        """The code [D] a token names: ``img:N`` the N-th example's posterior mean, an attribute the mean code of the
        examples that have it."""
        if token.startswith("img:"):
            i = token[4:]
            if not i.isdigit() or int(i) >= len(self.z):
                raise ConfigError(f"{token}: expected img:N with N from 0 to {len(self.z) - 1}")
            return self.z[int(i)]
        self.vector(token)  # a clear error for an unknown name
        return self.z[self.data.has[token]].mean(0)

    @torch.no_grad()
    def add(self, name: str, strengths: torch.Tensor, index: torch.Tensor) -> tuple[torch.Tensor, int]:
        """The examples at ``index`` [B] moved along attribute ``name``'s vector, z + s v for each strength s [S]:
        a row per example, its image first, then the decoded codes; (images [B * (S + 1), C, H, W], S + 1)."""
        z = self.z[index][:, None] + strengths[:, None] * self.vector(name)  # [B, S, D]
        device = next(self.model.parameters()).device
        moved = self.model.decode(z.flatten(0, 1).to(device)).cpu().unflatten(0, z.shape[:2])  # [B, S, C, H, W]
        rows = torch.cat([self.data.images[index][:, None].to(moved.dtype), moved], 1)
        return rows.flatten(0, 1), len(strengths) + 1

    @torch.no_grad()
    def analogy(self, a: str, b: str, c: str) -> tuple[torch.Tensor, int]:
        """Decoded codes of a, b, c and of a - b + c (see :meth:`code`): (images [4, C, H, W], 4)."""
        za, zb, zc = (self.code(t) for t in (a, b, c))
        z = torch.stack([za, zb, zc, za - zb + zc])
        return self.model.decode(z.to(next(self.model.parameters()).device)).cpu(), 4


def parse_strength(text: str) -> tuple[float, float]:
    """``"0..2"`` -> (0, 2); ``"1.5"`` -> (0, 1.5)."""
    lo, sep, hi = text.partition("..")
    try:
        return (float(lo), float(hi)) if sep else (0.0, float(lo))
    except ValueError:
        raise ConfigError(f"--strength {text!r}: expected A..B (such as 0..2) or one number") from None
