"""3D Shapes, from the official ``3dshapes.h5`` (Burgess & Kim 2018), read lazily with h5py: factor dataset
``3dshapes``."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from ..errors import DataError
from ..files import FileSpec, Folder, Source
from .grid import FactorDataset
from .registry import FACTOR_DATASETS, find_file

SHAPES3D_FILE = "3dshapes.h5"
SHAPES3D_SOURCE = Source(
    name="3dshapes",
    folder="3dshapes",
    files=(FileSpec(SHAPES3D_FILE, None),),  # no sha256 published: checked by structure instead
    mirror="https://storage.googleapis.com/3d-shapes/",
    gzipped=False,
)


def _h5py():
    try:
        import h5py
    except ImportError as err:
        raise DataError("reading 3dshapes.h5 needs h5py: pip install h5py") from err
    return h5py


class Shapes3D(FactorDataset):
    """3D Shapes (C. Burgess, H. Kim, "3D Shapes Dataset", 2018): 480,000 64x64 RGB renders of an object in a
    room, from the official ``3dshapes.h5`` (``images`` uint8 [480000, 64, 64, 3], ``labels`` float64 [480000, 6]).

    Factors, in the file's row-major order: floor_hue 10, wall_hue 10, object_hue 10, scale 8, shape 4,
    orientation 15. Read lazily with h5py, only the rows asked for. No sha256 of the file is published or known
    here: its structure is checked instead (arrays, shapes, dtypes, and labels increasing along each factor).
    """

    name = "3dshapes"
    factor_names = ["floor_hue", "wall_hue", "object_hue", "scale", "shape", "orientation"]
    factor_sizes = [10, 10, 10, 8, 4, 15]
    image_shape = (3, 64, 64)

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self._file = _open_h5(self.path)
        try:
            self._images = _check_shapes3d(self.path, self._file, self)
        except BaseException:
            self._file.close()
            raise

    def images(self, factors: np.ndarray) -> torch.Tensor:
        rows = self.index_of(self.check_factors(factors).reshape(-1, self.num_factors))
        unique, inverse = np.unique(rows, return_inverse=True)  # h5py takes only increasing indices
        data = self._images[unique] if len(unique) else np.empty((0, *self._images.shape[1:]), np.uint8)
        pixels = torch.from_numpy(np.ascontiguousarray(data[inverse]))
        return pixels.permute(0, 3, 1, 2).float().div_(255)

    def close(self) -> None:
        self._file.close()


def _open_h5(path: Path):
    h5py = _h5py()
    try:
        return h5py.File(path, "r")
    except OSError as err:
        raise DataError(f"{path}: not a readable HDF5 file ({err}); delete it and get it again") from err


def _check_shapes3d(path: Path, f, grid: FactorDataset):
    """The ``images`` dataset of an open 3dshapes.h5, once its structure is checked; else a DataError."""
    n, (c, h, w) = grid.num_images, grid.image_shape
    for key in ("images", "labels"):
        if key not in f or not hasattr(f[key], "shape"):
            raise DataError(f"{path}: no dataset {key!r}; it holds {', '.join(sorted(f)) or 'nothing'}")
    images, labels = f["images"], f["labels"]
    if images.dtype != np.uint8 or images.shape != (n, h, w, c):
        raise DataError(f"{path}: 'images' is {images.dtype} {list(images.shape)}, expected uint8 [{n}, {h}, {w}, {c}]")
    if labels.dtype.kind != "f" or labels.shape != (n, grid.num_factors):
        raise DataError(f"{path}: 'labels' is {labels.dtype} {list(labels.shape)}, expected float [{n}, "
                        f"{grid.num_factors}]")
    for j, size in enumerate(grid.factor_sizes):  # walk each factor's axis from the origin: only it may change
        axis = np.zeros((size, grid.num_factors), dtype=np.int64)
        axis[:, j] = np.arange(size)
        values = labels[grid.index_of(axis)]
        others = np.delete(values, j, axis=1)
        if not (np.all(np.diff(values[:, j]) > 0) and np.allclose(others, others[0])):
            raise DataError(f"{path}: the labels do not follow the row-major order over "
                            f"({', '.join(grid.factor_names)}): along factor {grid.factor_names[j]!r} from row 0 "
                            f"they read {values.round(3).tolist()}")
    return images


def _shapes3d_problem(path: Path) -> str | None:
    grid = FactorDataset()  # the grid as the class has it (tests may shrink it), without opening anything
    grid.factor_names, grid.factor_sizes = Shapes3D.factor_names, Shapes3D.factor_sizes
    grid.image_shape = Shapes3D.image_shape
    try:
        with _open_h5(path) as f:
            _check_shapes3d(path, f, grid)
    except DataError as err:
        return str(err)
    return None


@FACTOR_DATASETS.register("3dshapes")
def load_shapes3d(data_dir: Folder, download: bool) -> Shapes3D:
    """The official file from data_dir, the usual places or its download (checked by structure)."""
    return Shapes3D(find_file(SHAPES3D_SOURCE, data_dir, download, _shapes3d_problem))
