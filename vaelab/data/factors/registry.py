"""Finding factor datasets: the registry of their loaders by name, the finder of a dataset's single file, and the
seeded train/val/test subset that ``load_dataset`` makes of a factor grid.

Each dataset module registers its loader, ``(data_dir, download) -> FactorDataset``, with
``@FACTOR_DATASETS.register(name)``; :func:`load_factor_dataset` looks the name up.
"""
from __future__ import annotations

from dataclasses import dataclass
from http.client import HTTPException
from pathlib import Path
from typing import Any, Callable

from ...registry import Registry, UnknownName
from .. import files
from ..base import Dataset
from ..errors import DataError
from ..files import Folder, Source
from .grid import FactorDataset

FactorLoader = Callable[[Folder, bool], FactorDataset]  # (data_dir, download) -> the factor dataset
FACTOR_DATASETS: Registry[FactorLoader] = Registry("factor dataset")


def find_file(source: Source, data_dir: Folder, download: bool, problem: Callable[[Path], str | None]) -> Path:
    """The source's single file from the usual places (see ``files.locate``), else downloaded into data_dir or the
    cache and accepted only when ``problem`` finds nothing wrong with its structure (no sha256 is known)."""
    name = source.files[0].name
    looked = files.looked_in(source, files.search_dirs(source, data_dir))
    try:
        return files.locate(source, data_dir, download=False)[name]
    except DataError:
        if not download:
            raise
    dest = Path(data_dir) if data_dir is not None else files.cache_root() / source.folder
    try:
        dest.mkdir(parents=True, exist_ok=True)
        files._download(source.base_url + name, dest / name, problem)
    except (OSError, HTTPException) as err:
        raise DataError(files._not_found(source, looked, f"Download into {dest} failed: {err}.")) from err
    return dest / name


def load_factor_dataset(name: str, data_dir: Folder = None, download: bool = True) -> FactorDataset:
    """The factor dataset ``name`` (``FACTOR_DATASETS.names()``): ``dsprites``, ``dsprites-procedural``,
    ``3dshapes``, or ``npz``.

    data_dir: the folder holding the file (dsprites, 3dshapes), searched before ``$VAELAB_DATA/<folder>``
    (``dsprites``, ``3dshapes``) and the cache, and the download target when given; for ``npz``, the ``.npz`` file
    itself. download: fetch a missing file from the official place (checked by structure; no sha256 is known).
    """
    try:
        loader = FACTOR_DATASETS.get(name)
    except UnknownName as err:  # "unknown factor dataset 'x'; known: ...", as a DataError like every data problem
        raise DataError(str(err)) from None
    return loader(data_dir, download)


@dataclass(frozen=True)
class FactorSplits:
    """How many images of a factor grid ``load_dataset`` draws for each split (val: its ``val_size``, default
    2000): ``load_dataset("dsprites-procedural", train_size=50000, val_size=1000, test_size=1000, seed=1)``.

    The defaults keep a 64x64 grey dataset near 0.4 GB as float32 (3D Shapes, in colour: 1.1 GB).
    """

    train_size: int = 20000
    test_size: int = 2000

    def __post_init__(self):
        for field in ("train_size", "test_size"):
            value = getattr(self, field)
            if not (isinstance(value, int) and not isinstance(value, bool) and value >= 0):
                raise DataError(f"{field}={value!r}: expected a whole number of images, at least 0")


def factor_split_dataset(name: str, data_dir: Folder, opt: Any) -> Dataset:
    """The registered loader's work: a seeded random subset of factor dataset ``name`` as a :class:`Dataset`.

    ``opt`` is datasets.Options: its ``extra`` a :class:`FactorSplits`, ``val_size`` (default 2000), ``seed``.
    """
    splits = opt.extra if opt.extra is not None else FactorSplits()
    val = 2000 if opt.val_size is None else opt.val_size
    grid = load_factor_dataset(name, data_dir, opt.download)
    return grid.to_dataset(splits.train_size, val, splits.test_size, opt.seed)
