"""dSprites, from the official file (Matthey et al. 2017), read without unpickling anything: factor dataset
``dsprites``. Its factor grid (``DSPRITES_NAMES``, ``DSPRITES_SIZES``) is also the procedural renderer's.
"""
from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Iterator

import numpy as np
import torch

from ..errors import DataError
from ..files import FileSpec, Folder, Source
from .grid import FactorDataset
from .npzfile import NpyMember, need_member, npz_members
from .registry import FACTOR_DATASETS, find_file

DSPRITES_NAMES = ["shape", "scale", "orientation", "x", "y"]
DSPRITES_SIZES = [3, 6, 40, 32, 32]

DSPRITES_FILE = "dsprites_ndarray_co1sh3sc6or40x32y32_64x64.npz"
DSPRITES_SOURCE = Source(
    name="dsprites",
    folder="dsprites",
    files=(FileSpec(DSPRITES_FILE, None),),  # no sha256 published: checked by structure instead
    mirror="https://github.com/deepmind/dsprites-dataset/raw/master/",
    gzipped=False,
)


class DSprites(FactorDataset):
    """dSprites (L. Matthey, I. Higgins, D. Hassabis, A. Lerchner, "dSprites: Disentanglement testing Sprites
    dataset", 2017): 737,280 binary 64x64 sprites, from the official
    ``dsprites_ndarray_co1sh3sc6or40x32y32_64x64.npz``.

    Factors: shape 3, scale 6, orientation 40, x 32, y 32 (the constant colour is dropped). The file's images are
    in row-major order over (colour, shape, scale, orientation, x, y), so an image's row is ``index_of(factors)``;
    its ``latents_classes`` are checked to say exactly that. Only ``imgs`` and ``latents_classes`` are read, with
    ``allow_pickle=False``: the pickled ``metadata`` entry is never unpickled.

    No sha256 of the file is published, and none is known here, so the file is checked by its structure (arrays,
    shapes, dtypes, binary pixels, factor order), on disk and after a download. The images are read on first use:
    from the official (compressed) file they are decompressed once and kept bit-packed (377 MB, not 3 GB); from
    an uncompressed copy (``np.savez``) they are memory-mapped.
    """

    name = "dsprites"
    factor_names = list(DSPRITES_NAMES)
    factor_sizes = list(DSPRITES_SIZES)
    image_shape = (1, 64, 64)
    binary = True

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        if self.path.suffix == ".gz":
            raise DataError(f"{self.path}: a gzipped .npz; gunzip it first (the .npz itself is compressed)")
        self._imgs_member = _check_dsprites(self.path, self.factor_sizes, self.image_shape[1:])
        self._imgs: np.ndarray | None = None  # uint8 [N, H, W] (memory-mapped) or bit-packed [N, H, W / 8]
        self._packed = False

    def images(self, factors: np.ndarray) -> torch.Tensor:
        rows = self.index_of(self.check_factors(factors).reshape(-1, self.num_factors))
        if self._imgs is None:
            self._load()
        if self._packed:
            pixels = np.unpackbits(self._imgs[rows], axis=-1)
        else:
            pixels = np.asarray(self._imgs[rows])
            if pixels.size and pixels.max() > 1:
                raise DataError(f"{self.path}: pixel value {pixels.max()} in 'imgs'; dSprites pixels are 0 or 1")
        return torch.from_numpy(pixels).unsqueeze(1).float()

    def _load(self) -> None:
        member = self._imgs_member
        if member.data_offset is not None and not member.fortran:
            self._imgs = member.load()
            return
        n, h, w = member.shape
        packed = np.empty((n, h, (w + 7) // 8), dtype=np.uint8)
        chunks = member.row_chunks(8192) if not member.fortran else _fortran_chunks(member, 8192)
        start = 0
        for chunk in chunks:
            if chunk.size and chunk.max() > 1:
                raise DataError(f"{self.path}: pixel value {chunk.max()} in 'imgs'; dSprites pixels are 0 or 1")
            packed[start:start + len(chunk)] = np.packbits(chunk, axis=-1)
            start += len(chunk)
        self._imgs, self._packed = packed, True


def _fortran_chunks(member: NpyMember, rows: int) -> Iterator[np.ndarray]:
    whole = member.load()
    for start in range(0, len(whole), rows):
        yield whole[start:start + rows]


def _check_dsprites(path: Path, sizes: list[int], hw: tuple[int, int]) -> NpyMember:
    """The ``imgs`` member of a dSprites file, once its structure is checked; else a DataError."""
    members = npz_members(path)
    n = math.prod(sizes)
    imgs = need_member(path, members, "imgs", f"uint8 images [{n}, {hw[0]}, {hw[1]}]")
    classes = need_member(path, members, "latents_classes", f"int factor classes [{n}, {1 + len(sizes)}]")
    if imgs.dtype != np.uint8 or imgs.shape != (n, *hw):
        raise DataError(f"{path}: 'imgs' is {imgs.dtype} {list(imgs.shape)}, expected uint8 [{n}, {hw[0]}, {hw[1]}] "
                        "(the official dSprites layout); get the official file")
    if not np.issubdtype(classes.dtype, np.integer) or classes.shape != (n, 1 + len(sizes)):
        raise DataError(f"{path}: 'latents_classes' is {classes.dtype} {list(classes.shape)}, expected integers "
                        f"[{n}, {1 + len(sizes)}] (colour, shape, scale, orientation, x, y)")
    found = np.asarray(classes.load())
    expected = np.stack(np.unravel_index(np.arange(n), sizes), axis=-1)
    wrong = (found[:, 0] != 0) | (found[:, 1:] != expected).any(axis=1)
    if wrong.any():
        row = int(np.argmax(wrong))
        raise DataError(f"{path}: row {row} has latents_classes {found[row].tolist()}, expected "
                        f"{[0, *expected[row].tolist()]}: the images are not in the official row-major order over "
                        "(colour, shape, scale, orientation, x, y); get the official file")
    return imgs


def _dsprites_problem(path: Path) -> str | None:
    try:
        _check_dsprites(path, DSprites.factor_sizes, DSprites.image_shape[1:])
    except DataError as err:
        return str(err)
    return None


@FACTOR_DATASETS.register("dsprites")
def load_dsprites(data_dir: Folder, download: bool) -> DSprites:
    """The official file from data_dir, the usual places or its download (checked by structure)."""
    return DSprites(find_file(DSPRITES_SOURCE, data_dir, download, _dsprites_problem))
