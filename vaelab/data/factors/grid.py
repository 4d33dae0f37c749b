"""The factor grid shared by every factor dataset: one image for each combination of discrete factor values, in
row-major order over ``factor_sizes``; sampling of factor combinations (uniform, or with one factor held fixed) for
disentanglement metrics, and a seeded random subset as an ordinary :class:`Dataset` for training.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from ..base import Dataset, Split
from ..errors import DataError


class FactorDataset:
    """A full grid of images indexed by discrete factors; subclasses give ``images`` (and the class attributes).

    Factors are int64 arrays [n, F] of class indices, factor ``j`` in ``0 .. factor_sizes[j] - 1``. The image
    of each combination sits at ``index_of(factors)``: row-major over ``factor_sizes``, the last factor fastest.
    """

    name: str = "factors"
    factor_names: list[str] = []
    factor_sizes: list[int] = []
    image_shape: tuple[int, int, int] = (1, 64, 64)  # (C, H, W)
    binary: bool = False  # pixel values are already in {0, 1}
    chunk: int = 2048  # images made at once by to_dataset and render_all

    @property
    def num_factors(self) -> int:
        return len(self.factor_sizes)

    @property
    def num_images(self) -> int:
        """Size of the full grid: the product of ``factor_sizes``."""
        return math.prod(self.factor_sizes)

    def images(self, factors: np.ndarray) -> torch.Tensor:
        """The images of ``factors`` (int [n, F]): float32 [n, C, H, W] in [0, 1]."""
        raise NotImplementedError

    def sample_factors(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """``n`` factor combinations drawn uniformly (with replacement) from the grid: int64 [n, F]."""
        return rng.integers(0, self.factor_sizes, size=(_count(n), self.num_factors), dtype=np.int64)

    def sample(self, n: int, rng: np.random.Generator) -> tuple[np.ndarray, torch.Tensor]:
        """``n`` uniformly drawn factor combinations and their images."""
        factors = self.sample_factors(n, rng)
        return factors, self.images(factors)

    def sample_with_fixed_factor(self, n: int, factor: int, rng: np.random.Generator) -> np.ndarray:
        """``n`` factor combinations, uniform except that all share one random value of factor ``factor``."""
        if not (isinstance(factor, (int, np.integer)) and 0 <= factor < self.num_factors):
            raise ValueError(f"factor={factor!r}: expected a factor number 0 to {self.num_factors - 1} "
                             f"({', '.join(self.factor_names)})")
        factors = self.sample_factors(n, rng)
        factors[:, factor] = rng.integers(self.factor_sizes[factor])
        return factors

    def check_factors(self, factors: np.ndarray) -> np.ndarray:
        """``factors`` as int64 [..., F], or a ValueError saying what is wrong with them."""
        f = np.asarray(factors)
        if f.ndim == 0 or f.shape[-1] != self.num_factors:
            raise ValueError(f"factors of shape {f.shape}: expected [..., {self.num_factors}] "
                             f"({', '.join(self.factor_names)})")
        if f.size and not np.issubdtype(f.dtype, np.integer):
            raise ValueError(f"factors of dtype {f.dtype}: expected integer class indices")
        f = f.astype(np.int64, copy=False)
        bad = (f < 0) | (f >= np.asarray(self.factor_sizes))
        if bad.any():
            row, col = np.argwhere(bad)[0][:-1], np.argwhere(bad)[0][-1]
            raise ValueError(f"factor {self.factor_names[col]!r} is {f[tuple(row) + (col,)]} at {tuple(row.tolist())}; "
                             f"it takes 0 to {self.factor_sizes[col] - 1}")
        return f

    def index_of(self, factors: np.ndarray) -> np.ndarray:
        """Flat grid index (int64, row-major over ``factor_sizes``) of each combination in ``factors`` [..., F]."""
        f = self.check_factors(factors)
        return np.ravel_multi_index(tuple(np.moveaxis(f, -1, 0)), self.factor_sizes).astype(np.int64)

    def factors_of(self, index: np.ndarray) -> np.ndarray:
        """The factor combination (int64 [..., F]) at each flat grid index; inverse of :meth:`index_of`."""
        i = np.asarray(index)
        if i.size and not np.issubdtype(i.dtype, np.integer):
            raise ValueError(f"index of dtype {i.dtype}: expected integers")
        if i.size and (i.min() < 0 or i.max() >= self.num_images):
            raise ValueError(f"index out of range: the grid has {self.num_images} images (0 to {self.num_images - 1})")
        return np.stack(np.unravel_index(i.astype(np.int64), self.factor_sizes), axis=-1).astype(np.int64)

    def render_all(self, factors: np.ndarray) -> torch.Tensor:
        """:meth:`images` of many factor combinations, made ``chunk`` at a time into one tensor."""
        f = self.check_factors(factors).reshape(-1, self.num_factors)
        out = torch.empty((len(f), *self.image_shape), dtype=torch.float32)
        for start in range(0, len(f), self.chunk):
            out[start:start + self.chunk] = self.images(f[start:start + self.chunk])
        return out

    def to_dataset(self, n_train: int, n_val: int, n_test: int, seed: int = 0) -> Dataset:
        """A random subset of the grid, ``n_train + n_val + n_test`` distinct images drawn by ``seed``, as an
        ordinary unlabelled :class:`Dataset` (``y`` is None); each split in grid order."""
        sizes = [_count(n, name) for n, name in ((n_train, "n_train"), (n_val, "n_val"), (n_test, "n_test"))]
        if sum(sizes) > self.num_images:
            raise DataError(f"{self.name}: {sum(sizes)} images asked for (train {sizes[0]} + val {sizes[1]} + test "
                            f"{sizes[2]}), but the grid has only {self.num_images}")
        picked = np.random.default_rng(seed).choice(self.num_images, sum(sizes), replace=False)
        parts = np.split(picked, np.cumsum(sizes)[:2])
        train, val, test = (Split(self.render_all(self.factors_of(np.sort(p))), None) for p in parts)
        return Dataset(self.name, train, val, test, num_classes=0, binary=self.binary)

    def __repr__(self) -> str:
        grid = ", ".join(f"{n}={s}" for n, s in zip(self.factor_names, self.factor_sizes))
        return f"{type(self).__name__}({grid}; {self.num_images} images of {self.image_shape})"


def _count(n: Any, name: str = "n") -> int:
    if not (isinstance(n, (int, np.integer)) and not isinstance(n, bool) and n >= 0):
        raise ValueError(f"{name}={n!r}: expected a whole number, at least 0")
    return int(n)
