"""Datasets with known generative factors, for disentanglement metrics: dSprites, 3D Shapes and others.

A :class:`FactorDataset` is a full grid of images, one for each combination of its factors' values, in row-major
order over ``factor_sizes``. It samples factor combinations, renders or reads their images, and carves a seeded
random subset into an ordinary :class:`Dataset` for training (``to_dataset``; ``load_dataset("dsprites")`` does
that). Metrics use it directly through :func:`load_factor_dataset`:

- ``dsprites``: the official dSprites file (Matthey et al. 2017), read without unpickling anything;
- ``dsprites-procedural``: the same factor grid rendered here, deterministically, needing no file;
- ``3dshapes``: the official ``3dshapes.h5`` (Burgess & Kim 2018), read lazily with h5py;
- ``npz``: any factor grid stored as ``images`` + ``factor_sizes`` in an ``.npz`` (:class:`NpzFactorDataset`).
"""
from __future__ import annotations

import math
import os
import struct
import zipfile
from dataclasses import dataclass
from http.client import HTTPException
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import torch

from . import files
from .base import Dataset, Split
from .errors import DataError
from .files import FileSpec, Folder, Source


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


# --- dSprites, rendered here -------------------------------------------------------------------------------

DSPRITES_NAMES = ["shape", "scale", "orientation", "x", "y"]
DSPRITES_SIZES = [3, 6, 40, 32, 32]
HEART_HALF_WIDTH = 1.139  # of the curve (x^2 + y^2 - 1)^3 = x^2 y^3, which spans y in [-1, 1.236]
HEART_MID_Y = 0.118  # the middle of that span, put at the sprite's centre


class ProceduralDSprites(FactorDataset):
    """The dSprites factor grid rendered here: 3 x 6 x 40 x 32 x 32 = 737,280 binary 64x64 images, made on demand.

    Factors (as the official file, less its constant colour): shape (square, ellipse, heart), scale (6 values
    linearly in [0.5, 1]), orientation (40 angles 2 pi k / 40 in [0, 2 pi), counter-clockwise as displayed),
    x and y (32 positions each, linearly in [0, 1]; x to the right, y downwards, i.e. along image rows).
    The official README gives its 40 orientations as values in [0, 2 pi], both ends included, so there the first
    and last look alike; here all 40 differ.

    Geometry, chosen to approximate the official sprites (not pixel-identical to them): the sprite's centre moves
    from pixel 9 to pixel 54 (centres of those pixels) as x or y goes from 0 to 1; at scale 1 the square's side is
    16 pixels (a quarter of the image), the ellipse is 16 x 8 (long axis along x at orientation 0) and the heart is
    16 wide, its point down at orientation 0 (the implicit heart ``(x^2 + y^2 - 1)^3 <= x^2 y^3``, centred on its
    bounding box); each shape rotates about its centre and scales with ``scale``. A pixel is 1 when its centre lies
    in the shape, so images are binary; large rotated shapes near the border are clipped, as in the official data.

    Each image depends only on its own factors (every step is an elementwise float64 operation, with sines and
    cosines from a fixed table), so the same factors give the same image in any batch.
    """

    name = "dsprites-procedural"
    factor_names = list(DSPRITES_NAMES)
    factor_sizes = list(DSPRITES_SIZES)
    image_shape = (1, 64, 64)
    binary = True
    shape_names = ("square", "ellipse", "heart")
    side = 16.0  # pixels: the square's side at scale 1
    first_px, last_px = 9.0, 54.0  # pixels that the centre reaches at positions 0 and 1

    def images(self, factors: np.ndarray) -> torch.Tensor:
        f = self.check_factors(factors).reshape(-1, self.num_factors)
        return torch.from_numpy(self.masks(f)).unsqueeze(1).float()

    def masks(self, factors: np.ndarray) -> np.ndarray:
        """The sprites of ``factors`` (int64 [n, 5], checked) as bool [n, 64, 64]."""
        shape, scale_i, angle_i, x_i, y_i = factors.T
        _, n_scale, n_angle, n_x, n_y = self.factor_sizes
        scales = np.linspace(0.5, 1.0, n_scale)
        angles = 2 * np.pi * np.arange(n_angle) / n_angle
        cos, sin = np.cos(angles)[angle_i][:, None, None], np.sin(angles)[angle_i][:, None, None]
        cx, cy = self._centre(x_i, n_x), self._centre(y_i, n_y)
        pixels = np.arange(self.image_shape[-1]) + 0.5  # pixel centres
        right = pixels[None, None, :] - cx[:, None, None]  # [n, 1, W]
        up = cy[:, None, None] - pixels[None, :, None]  # [n, H, 1]
        per_unit = (1.0 / (self.side * scales[scale_i]))[:, None, None]
        u = (cos * right + sin * up) * per_unit  # the pixel in the unrotated sprite's frame, in units of its side
        v = (cos * up - sin * right) * per_unit
        out = np.zeros(u.shape, dtype=bool)
        for s, inside in enumerate((_square, _ellipse, _heart)):  # three vectorized groups, not one per image
            rows = shape == s
            if rows.any():
                out[rows] = inside(u[rows], v[rows])
        return out

    def _centre(self, i: np.ndarray, n: int) -> np.ndarray:
        return self.first_px + 0.5 + (self.last_px - self.first_px) * i / max(n - 1, 1)


def _square(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    return np.maximum(np.abs(u), np.abs(v)) <= 0.5


def _ellipse(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    return (2 * u) ** 2 + (4 * v) ** 2 <= 1  # semi-axes 1/2 and 1/4 of the square's side


def _heart(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    x = u * (2 * HEART_HALF_WIDTH)  # the heart spans the square's width
    y = v * (2 * HEART_HALF_WIDTH) + HEART_MID_Y
    x2 = x * x
    r = x2 + y * y - 1
    return r * r * r <= x2 * (y * y * y)


# --- reading .npz files without unpickling ----------------------------------------------------------------


@dataclass(frozen=True)
class NpyMember:
    """One array in an ``.npz`` (zip) file, known from its header alone."""

    path: Path
    key: str
    shape: tuple[int, ...]
    dtype: np.dtype
    fortran: bool
    header_size: int  # bytes of the .npy header before the data
    data_offset: int | None  # where the data starts in the file, when the member is stored uncompressed

    def load(self) -> np.ndarray:
        """The whole array: memory-mapped when stored uncompressed, else read (never unpickled)."""
        if self.data_offset is not None and self.dtype.itemsize and math.prod(self.shape):
            return np.memmap(self.path, self.dtype, "r", self.data_offset, self.shape, "F" if self.fortran else "C")
        try:
            with np.load(self.path, allow_pickle=False) as npz:
                return npz[self.key]
        except (ValueError, OSError, EOFError, zipfile.BadZipFile) as err:
            raise DataError(f"{self.path}: array {self.key!r} cannot be read ({err})") from err

    def row_chunks(self, rows: int) -> Iterator[np.ndarray]:
        """The array ``rows`` leading rows at a time, decompressed as it streams (C order only)."""
        row_bytes = self.dtype.itemsize * math.prod(self.shape[1:])
        with zipfile.ZipFile(self.path) as zf, zf.open(self.key + ".npy") as fp:
            fp.seek(self.header_size)
            for start in range(0, self.shape[0], rows):
                count = min(rows, self.shape[0] - start)
                data = fp.read(count * row_bytes)
                if len(data) != count * row_bytes:
                    raise DataError(f"{self.path}: array {self.key!r} is truncated: its header says "
                                    f"{self.shape}, the data ends within row {start + len(data) // row_bytes}")
                yield np.frombuffer(data, self.dtype).reshape(count, *self.shape[1:])


def npz_members(path: Path) -> dict[str, NpyMember]:
    """Every ``.npy`` array in the ``.npz`` file ``path``, from headers only; nothing is unpickled.

    A member whose dtype holds Python objects (a pickle) is listed with its object dtype but never read.
    """
    try:
        with zipfile.ZipFile(path) as zf:
            members = {}
            for info in zf.infolist():
                if info.filename.endswith(".npy"):
                    members[info.filename[:-4]] = _npy_member(path, zf, info)
            return members
    except (zipfile.BadZipFile, OSError, EOFError) as err:
        raise DataError(f"{path}: not a readable .npz file ({err}); delete it and get it again") from err


def _npy_member(path: Path, zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> NpyMember:
    key = info.filename[:-4]
    with zf.open(info) as fp:
        try:
            version = np.lib.format.read_magic(fp)
            read_header = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}
            if version not in read_header:
                raise ValueError(f".npy format version {version} is not supported here")
            shape, fortran, dtype = read_header[version](fp)
        except ValueError as err:
            raise DataError(f"{path}: member {info.filename} is not a valid .npy array ({err})") from err
        header_size = fp.tell()
    offset = None
    if info.compress_type == zipfile.ZIP_STORED and not dtype.hasobject:
        with open(path, "rb") as f:  # the local header's name and extra fields may differ from the directory's
            f.seek(info.header_offset)
            local = f.read(30)
        if len(local) == 30 and local[:4] == b"PK\x03\x04":
            name_len, extra_len = struct.unpack("<HH", local[26:30])
            offset = info.header_offset + 30 + name_len + extra_len + header_size
    return NpyMember(path, key, tuple(shape), dtype, fortran, header_size, offset)


def _need(path: Path, members: dict[str, NpyMember], key: str, what: str) -> NpyMember:
    """Member ``key``, or a DataError naming what the file should hold."""
    if key not in members:
        raise DataError(f"{path}: no array {key!r} ({what}); it holds {', '.join(sorted(members)) or 'no arrays'}")
    member = members[key]
    if member.dtype.hasobject:
        raise DataError(f"{path}: array {key!r} holds pickled Python objects ({member.dtype}); it is not read, "
                        f"since unpickling can run code. Expected {what}")
    return member


# --- the official dSprites file -----------------------------------------------------------------------------

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
    imgs = _need(path, members, "imgs", f"uint8 images [{n}, {hw[0]}, {hw[1]}]")
    classes = _need(path, members, "latents_classes", f"int factor classes [{n}, {1 + len(sizes)}]")
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


# --- 3D Shapes ----------------------------------------------------------------------------------------------

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


# --- any factor grid in an .npz -----------------------------------------------------------------------------


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
        sizes = _need(self.path, members, "factor_sizes", "the number of values of each factor, int [F]")
        if not np.issubdtype(sizes.dtype, np.integer) or len(sizes.shape) != 1:
            raise DataError(f"{self.path}: 'factor_sizes' is {sizes.dtype} {list(sizes.shape)}, expected int [F]")
        self.factor_sizes = [int(s) for s in sizes.load()]
        if not self.factor_sizes or min(self.factor_sizes) < 1:
            raise DataError(f"{self.path}: factor_sizes {self.factor_sizes}: expected at least one factor, each >= 1")
        self.factor_names = self._names(members)
        n = self.num_images
        images = _need(self.path, members, "images", f"uint8 images [{n}, H, W] or [{n}, H, W, C]")
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
        names = _need(self.path, members, "factor_names", "a unicode array of factor names")
        if names.dtype.kind != "U" or names.shape != (self.num_factors,):
            raise DataError(f"{self.path}: 'factor_names' is {names.dtype} {list(names.shape)}, expected a unicode "
                            f"array [{self.num_factors}] (np.array(names), not a list of objects)")
        return [str(s) for s in names.load()]

    def images(self, factors: np.ndarray) -> torch.Tensor:
        rows = self.index_of(self.check_factors(factors).reshape(-1, self.num_factors))
        pixels = torch.from_numpy(np.ascontiguousarray(self._images[rows]))
        pixels = pixels.unsqueeze(1) if pixels.ndim == 3 else pixels.permute(0, 3, 1, 2)
        return pixels.float().div_(self._scale)


# --- finding files and the registry of factor datasets ------------------------------------------------------


def _find(source: Source, data_dir: Folder, download: bool, problem: Callable[[Path], str | None]) -> Path:
    """The source's single file from the usual places (see ``files.locate``), else downloaded into data_dir or the
    cache and accepted only when ``problem`` finds nothing wrong with its structure (no sha256 is known)."""
    name = source.files[0].name
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
        places = files.search_dirs(source, data_dir)
        raise DataError(files._not_found(source, places, f"Download into {dest} failed: {err}")) from err
    return dest / name


def load_factor_dataset(name: str, data_dir: Folder = None, download: bool = True) -> FactorDataset:
    """The factor dataset ``name``: ``dsprites``, ``dsprites-procedural``, ``3dshapes``, or ``npz``.

    data_dir: the folder holding the file (dsprites, 3dshapes), searched before ``$VAELAB_DATA/<folder>``
    (``dsprites``, ``3dshapes``) and the cache, and the download target when given; for ``npz``, the ``.npz`` file
    itself. download: fetch a missing file from the official place (checked by structure; no sha256 is known).
    """
    if name == "dsprites-procedural":
        return ProceduralDSprites()
    if name == "dsprites":
        return DSprites(_find(DSPRITES_SOURCE, data_dir, download, _dsprites_problem))
    if name == "3dshapes":
        return Shapes3D(_find(SHAPES3D_SOURCE, data_dir, download, _shapes3d_problem))
    if name == "npz":
        if data_dir is None or not Path(data_dir).is_file():
            raise DataError(f"factor dataset 'npz' needs data_dir: the .npz file itself (got {data_dir})")
        return NpzFactorDataset(data_dir)
    raise DataError(f"unknown factor dataset {name!r}; known: {', '.join(FACTOR_DATASETS)}")


FACTOR_DATASETS = ("3dshapes", "dsprites", "dsprites-procedural", "npz")


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
