"""Omniglot's two small background sets (Lake, Salakhutdinov & Tenenbaum 2015), read from their zips.

``images_background_small1.zip`` and ``images_background_small2.zip`` (from brendenlake/omniglot) hold 105x105 1-bit
PNGs of handwritten characters, ``images_background_smallN/<alphabet>/characterNN/<id>_<drawer>.png``, 20 drawers a
character: 5 alphabets each, Greek and Latin in both (the same 1,000 files). vaelab reads the PNGs from the zips
without unpacking them, once each, inverts them (strokes 1, paper 0, as MNIST) and shrinks them to 28x28 by area
averaging: a pixel's grey level is the fraction of its area that is ink, so dynamic binarization draws strokes with
that probability.

These are not the 28x28 Omniglot of the IWAE paper (Burda et al. 2016, ``chardata.mat``: 24,345 + 8,070 images of all
50 alphabets, downsampled by its authors): numbers on these subsets do not compare with that table.
"""
from __future__ import annotations

import io
import zipfile
from pathlib import Path, PurePosixPath

import numpy as np
from PIL import Image

from .errors import DataError
from .images import DECODE_ERRORS, check_pixels, quiet_open

SIDE = 28
ZIPS = ("images_background_small1.zip", "images_background_small2.zip")
MAX_PNG = 1 << 20  # bytes a member may declare: the official 105x105 1-bit PNGs take about 300


def parse_zip(data: bytes, path: Path) -> dict[str, np.ndarray]:
    """{``alphabet/characterNN/file.png``: uint8 [28, 28]} for every PNG in an Omniglot zip (its top folder left off)."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile as err:
        raise DataError(f"{path}: not a zip file ({err}); delete it and get it again") from err
    images = {}
    with archive:
        for member in archive.infolist():
            parts = PurePosixPath(member.filename).parts
            if member.is_dir() or not member.filename.endswith(".png") or len(parts) != 4:
                continue
            if member.file_size > MAX_PNG:  # zipfile reads no more than the declared size
                raise DataError(f"{path}:{member.filename} declares {member.file_size:,} bytes, not a 105x105 "
                                f"character; not an Omniglot background set")
            images["/".join(parts[1:])] = _character(archive.read(member), f"{path}:{member.filename}")
    if not images:
        raise DataError(f"{path}: holds no <alphabet>/<character>/<image>.png files; not an Omniglot background set")
    return images


def _character(png: bytes, where: str) -> np.ndarray:
    """A 105x105 PNG as inverted ink fractions, 28x28 uint8 (area averaging, Pillow's BOX filter). Its size is
    checked from the header (:func:`vaelab.data.images.check_pixels`) before it is decoded."""
    try:
        with quiet_open(io.BytesIO(png)) as image:
            check_pixels(image, where)
            grey = image.convert("L")
    except DECODE_ERRORS as err:
        raise DataError(f"{where}: not a readable PNG ({type(err).__name__}: {err})") from err
    return 255 - np.asarray(grey.resize((SIDE, SIDE), Image.Resampling.BOX))


def merge(sets: list[dict[str, np.ndarray]]) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """The images of all sets, each file once in sorted path order (uint8 [N, 28, 28]), their alphabet labels
    (int64 [N], by the alphabets' sorted names) and those names."""
    union = {}
    for images in sets:
        union.update(images)  # Greek and Latin sit in both sets, file for file
    names = sorted(union)
    alphabets = sorted({name.split("/")[0] for name in names})
    index = {alphabet: i for i, alphabet in enumerate(alphabets)}
    labels = np.array([index[name.split("/")[0]] for name in names], np.int64)
    return np.stack([union[name] for name in names]), labels, alphabets
