"""dSprites' factor grid rendered here, deterministically, needing no file: factor dataset ``dsprites-procedural``."""
from __future__ import annotations

import numpy as np
import torch

from ..files import Folder, no_files
from .dsprites import DSPRITES_NAMES, DSPRITES_SIZES
from .grid import FactorDataset
from .registry import FACTOR_DATASETS

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
    cosines from a fixed table), so the same factors give the same image in any batch. Each grid image is rendered
    once, the first time it is asked for, and kept bit-packed (the whole grid: 377 MB): the full metric protocol asks
    for about 3 million images of the 737,280, so most come from memory.
    """

    name = "dsprites-procedural"
    factor_names = list(DSPRITES_NAMES)
    factor_sizes = list(DSPRITES_SIZES)
    image_shape = (1, 64, 64)
    binary = True
    shape_names = ("square", "ellipse", "heart")
    side = 16.0  # pixels: the square's side at scale 1
    first_px, last_px = 9.0, 54.0  # pixels that the centre reaches at positions 0 and 1

    render_chunk = 256  # images rendered at once: bounds the float64 temporaries ([256, 64, 64] each)

    def __init__(self):
        self._packed: np.ndarray | None = None  # uint8 [grid, 64, 8]: the rendered images, bit-packed
        self._rendered: np.ndarray | None = None  # bool [grid]: which rows of _packed hold their image

    def images(self, factors: np.ndarray) -> torch.Tensor:
        rows = self.index_of(self.check_factors(factors).reshape(-1, self.num_factors))
        if self._packed is None:
            h, w = self.image_shape[1:]
            self._packed = np.zeros((self.num_images, h, (w + 7) // 8), np.uint8)  # pages are touched as rendered
            self._rendered = np.zeros(self.num_images, bool)
        new = np.unique(rows[~self._rendered[rows]])
        for start in range(0, len(new), self.render_chunk):
            part = new[start:start + self.render_chunk]
            self._packed[part] = np.packbits(self.masks(self.factors_of(part)), axis=-1)
            self._rendered[part] = True
        return torch.from_numpy(np.unpackbits(self._packed[rows], axis=-1)).unsqueeze(1).float()

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


@FACTOR_DATASETS.register("dsprites-procedural")
def load_procedural(data_dir: Folder, download: bool) -> ProceduralDSprites:
    """The renderer; it needs no file, so download is unused and a data_dir is an error (it would be ignored)."""
    no_files("dsprites-procedural", data_dir)
    return ProceduralDSprites()
