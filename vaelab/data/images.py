"""Folders of image files (PNG, JPEG, BMP, WebP), read with Pillow into one array of square images.

Each image is converted to RGB or grey, centre-cropped to a square, and resized (bicubic) to ``size`` x ``size``,
as :class:`ImageOptions` says; the dataset-specific keyword arguments of ``load_dataset`` fill those options.
"""
from __future__ import annotations

import os
import struct
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
from PIL import Image

from .errors import DataError

SUFFIXES = (".bmp", ".jpeg", ".jpg", ".png", ".webp")  # matched case-insensitively
# What Pillow's decoders raise on damaged or unsupported files (beyond OSError, some plugins raise the others).
DECODE_ERRORS = (
    OSError, EOFError, SyntaxError, ValueError, TypeError, IndexError, KeyError, struct.error,
    Image.DecompressionBombError,
)


@dataclass(frozen=True)
class ImageOptions:
    """How image files become tensors: ``load_dataset("image-folder", folder, size=32, crop=100, channels=1)``.

    size: side of the square output. crop: side of the centred square cut from each image before resizing
    (None: the image's shorter side). channels: 3 (RGB) or 1 (grey, ITU-R 601-2 luma).
    """

    size: int = 64
    crop: int | None = None
    channels: int = 3

    def __post_init__(self):
        for name, value in (("size", self.size), ("crop", self.crop)):
            if not (_is_int(value) and value >= 1) and not (name == "crop" and value is None):
                raise DataError(f"{name}={value!r}: expected a whole number of pixels, at least 1")
        if not (_is_int(self.channels) and self.channels in (1, 3)):
            raise DataError(f"channels={self.channels!r}: expected 3 (RGB) or 1 (grey)")


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def is_image(path: Path) -> bool:
    """An image file by its name: a known suffix, in any case, and not hidden (such as macOS's ``._`` files)."""
    return path.suffix.lower() in SUFFIXES and not path.name.startswith(".")


def find_images(root: Path) -> tuple[list[Path], np.ndarray | None, list[str]]:
    """The image files under ``root``, found recursively and sorted, with int64 labels and the class names.

    When the images sit in subfolders, each immediate subfolder of ``root`` that holds any is a class, labelled
    by its place among the sorted names; when all sit in ``root`` itself, there are no labels (None, []).
    Hidden files and folders (names starting with ``.``) are skipped.
    """
    if not root.is_dir():
        raise DataError(f"{root}: not a folder; data_dir must be the folder holding the images")
    found = []
    for folder, subfolders, names in os.walk(root):
        subfolders[:] = [name for name in subfolders if not name.startswith(".")]
        found += [path for path in map(Path(folder).joinpath, names) if is_image(path)]
    if not found:
        raise DataError(f"{root}: holds no image files ({' '.join(SUFFIXES)}), neither in it nor in its subfolders")
    found.sort()
    relative = [path.relative_to(root) for path in found]
    top = [path for path in relative if len(path.parts) == 1]
    if len(top) == len(found):
        return found, None, []
    if top:
        nested = next(path for path in relative if len(path.parts) > 1)
        raise DataError(
            f"{root}: holds images both directly (such as {top[0]}) and in subfolders (such as {nested}); "
            "put every image in a subfolder named for its class, or all of them directly in the folder"
        )
    classes = sorted({path.parts[0] for path in relative})
    label = {name: i for i, name in enumerate(classes)}
    return found, np.array([label[path.parts[0]] for path in relative], np.int64), classes


def read_images(paths: Sequence[Path], opt: ImageOptions) -> np.ndarray:
    """float32 [N, C, size, size] in [0, 1] from the image files: one array, allocated once, filled file by file."""
    out = np.empty((len(paths), opt.channels, opt.size, opt.size), np.float32)
    decode_into(out, paths, opt)
    return np.divide(out, 255, out=out)


def decode_into(out: np.ndarray, paths: Iterable[Path], opt: ImageOptions) -> None:
    """Fill ``out`` [N, C, size, size] (uint8, or float 0..255) with the pixel values of the image files."""
    for i, path in enumerate(paths):
        out[i] = decode(path, opt)


def decode(path: Path, opt: ImageOptions) -> np.ndarray:
    """One image file's pixels, uint8 [C, size, size]."""
    pixels = np.asarray(_square(_open(path, "RGB" if opt.channels == 3 else "L"), path, opt))
    return pixels.reshape(opt.size, opt.size, opt.channels).transpose(2, 0, 1)


def _open(path: Path, mode: str) -> Image.Image:
    """The decoded image in ``mode`` ("RGB" or "L"), or a DataError naming the file. Its size is checked from the
    header first (:func:`check_pixels`), before anything is decoded."""
    try:
        with quiet_open(path) as image:
            check_pixels(image, path)
            return image.convert(mode)
    except DataError:
        raise
    except Image.DecompressionBombError as err:
        raise DataError(f"{path}: {err}; shrink the image first") from err
    except DECODE_ERRORS as err:
        raise DataError(f"{path}: not a readable image ({type(err).__name__}: {err}); delete or replace it") from err


def quiet_open(file) -> Image.Image:
    """``Image.open`` (the header only), without Pillow's DecompressionBombWarning: :func:`check_pixels` refuses
    what it warns about, in one line."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        return Image.open(file)


def check_pixels(image: Image.Image, name: str | Path) -> None:
    """Refuse an opened (not yet decoded) image whose header declares more pixels than Pillow's decompression-bomb
    limit, ``PIL.Image.MAX_IMAGE_PIXELS``: decoding it could take gigabytes."""
    width, height = image.size
    limit = Image.MAX_IMAGE_PIXELS
    if limit and width * height > limit:
        raise DataError(f"{name}: its header declares {width}x{height} pixels, more than the {limit:,} that vaelab "
                        f"decodes (PIL.Image.MAX_IMAGE_PIXELS); shrink the image first")


def _square(image: Image.Image, path: Path, opt: ImageOptions) -> Image.Image:
    """The centred ``opt.crop`` square (default: the shorter side) of ``image``, resized to ``opt.size``."""
    width, height = image.size
    side = min(width, height) if opt.crop is None else opt.crop
    if side > min(width, height):
        raise DataError(
            f"{path}: a {width}x{height} image is too small for crop={side}; use crop={min(width, height)} or less"
        )
    left, top = (width - side) // 2, (height - side) // 2
    # Crop first, then resize: the resampling filter sees only the square, as in a crop-then-resize pipeline.
    return image.crop((left, top, left + side, top + side)).resize((opt.size, opt.size), Image.Resampling.BICUBIC)
