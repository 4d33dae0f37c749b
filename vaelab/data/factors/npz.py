"""Any factor grid stored in an ``.npz``: factor dataset ``npz``, its ``data_dir`` the file itself."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from ..errors import DataError
from ..files import Folder
from .grid import FactorDataset
from .npzfile import NpyMember, need_member, npz_members
from .registry import FACTOR_DATASETS


class NpzFactorDataset(FactorDataset):
    """A factor grid stored in an ``.npz``: ``images`` (uint8, 0-255, or bool) [N, H, W] or [N, H, W, C] in
    row-major order over ``factor_sizes`` (int [F], product N), and optionally ``factor_names`` (a unicode array
    of F names). Read with ``allow_pickle=False``; ``images`` is memory-mapped when stored uncompressed
    (``np.savez``), else loaded whole.
    """

    def __init__(self, path: str | os.PathLike, name: str | None = None):
        self.path = Path(path)
        self.name = name or self.path.stem
        members = npz_members(self.path)
        sizes = need_member(self.path, members, "factor_sizes", "the number of values of each factor, int [F]")
        if not np.issubdtype(sizes.dtype, np.integer) or len(sizes.shape) != 1:
            raise DataError(f"{self.path}: 'factor_sizes' is {sizes.dtype} {list(sizes.shape)}, expected int [F]")
        self.factor_sizes = [int(s) for s in sizes.load()]
        if not self.factor_sizes or min(self.factor_sizes) < 1:
            raise DataError(f"{self.path}: factor_sizes {self.factor_sizes}: expected at least one factor, each >= 1")
        self.factor_names = self._names(members)
        n = self.num_images
        images = need_member(self.path, members, "images", f"uint8 images [{n}, H, W] or [{n}, H, W, C]")
        if images.dtype not in (np.uint8, np.bool_) or len(images.shape) not in (3, 4) or images.shape[0] != n:
            raise DataError(f"{self.path}: 'images' is {images.dtype} {list(images.shape)}, expected uint8 or bool "
                            f"[{n}, H, W] or [{n}, H, W, C], {n} being the product of factor_sizes {self.factor_sizes}")
        h, w, *c = images.shape[1:]
        self.image_shape = (c[0] if c else 1, h, w)
        self._scale = 1 if images.dtype == np.bool_ else 255
        self.binary = images.dtype == np.bool_
        self._images = images.load()

    def _names(self, members: dict[str, NpyMember]) -> list[str]:
        if "factor_names" not in members:
            return [f"factor{j}" for j in range(self.num_factors)]
        names = need_member(self.path, members, "factor_names", "a unicode array of factor names")
        if names.dtype.kind != "U" or names.shape != (self.num_factors,):
            raise DataError(f"{self.path}: 'factor_names' is {names.dtype} {list(names.shape)}, expected a unicode "
                            f"array [{self.num_factors}] (np.array(names), not a list of objects)")
        return [str(s) for s in names.load()]

    def images(self, factors: np.ndarray) -> torch.Tensor:
        rows = self.index_of(self.check_factors(factors).reshape(-1, self.num_factors))
        pixels = torch.from_numpy(np.ascontiguousarray(self._images[rows]))
        pixels = pixels.unsqueeze(1) if pixels.ndim == 3 else pixels.permute(0, 3, 1, 2)
        return pixels.float().div_(self._scale)


@FACTOR_DATASETS.register("npz")
def load_npz(data_dir: Folder, download: bool) -> NpzFactorDataset:
    """The ``.npz`` file ``data_dir`` (nothing is downloaded)."""
    if data_dir is None or not Path(data_dir).is_file():
        raise DataError(f"factor dataset 'npz' needs data_dir: the .npz file itself (got {data_dir})")
    return NpzFactorDataset(data_dir)
