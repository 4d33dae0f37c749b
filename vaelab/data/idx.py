"""Reader for LeCun's IDX format (http://yann.lecun.com/exdb/mnist/), as used by MNIST and Fashion-MNIST.

A file is a big-endian header (magic number ``0x000008NN``: unsigned bytes, NN dimensions; then one uint32
per dimension) followed by the values, row-major.
"""
from __future__ import annotations

import math
import struct
from pathlib import Path

import numpy as np

from .errors import DataError

IMAGES_MAGIC = 0x00000803  # uint8, 3 dimensions: count, rows, columns
LABELS_MAGIC = 0x00000801  # uint8, 1 dimension: count


def declared_size(head: bytes, magic: int, size: tuple[int, int] | None = None) -> int:
    """The bytes that an IDX file whose content begins with ``head`` declares (header and values), so a reader
    stops there (a gzip that would inflate beyond is never inflated whole); 0 when the header already shows the
    file is not the expected one (a wrong magic number or image ``size``): stop at once, :func:`_parse` says why."""
    header = 4 + 4 * (magic & 0xFF)
    if len(head) < header or struct.unpack(">I", head[:4])[0] != magic:
        return 0
    dims = struct.unpack(f">{magic & 0xFF}I", head[4:header])
    if size is not None and tuple(dims[1:]) != size:
        return 0
    return header + math.prod(dims)  # Python ints: no overflow, however large the header's sizes


def images_size(head: bytes) -> int:
    return declared_size(head, IMAGES_MAGIC, (28, 28))


def labels_size(head: bytes) -> int:
    return declared_size(head, LABELS_MAGIC)


def _parse(data: bytes, path: Path, magic: int) -> np.ndarray:
    """The uint8 array in ``data`` (the content of ``path``), checking magic number and length."""
    ndim = magic & 0xFF
    header = 4 + 4 * ndim
    found = struct.unpack(">I", data[:4])[0] if len(data) >= 4 else None
    if found != magic:
        kind = "images" if magic == IMAGES_MAGIC else "labels"
        got = "none (file too short)" if found is None else f"0x{found:08X}"
        raise DataError(f"{path}: not an IDX {kind} file: magic number {got}, expected 0x{magic:08X}")
    if len(data) < header:
        raise DataError(f"{path}: truncated IDX file: {len(data)} bytes, shorter than its {header}-byte header")
    dims = struct.unpack(f">{ndim}I", data[4:header])
    expected = header + math.prod(dims)
    if len(data) != expected:
        problem = "truncated IDX file" if len(data) < expected else "IDX file with trailing bytes"
        has = f"the file has {len(data):,}" if len(data) < expected else "the file holds more (reading stopped there)"
        raise DataError(f"{path}: {problem}: header says {'x'.join(map(str, dims))} values, so {expected:,} bytes, "
                        f"but {has}")
    return np.frombuffer(data, np.uint8, offset=header).reshape(dims)


def parse_images(data: bytes, path: Path, size: tuple[int, int] = (28, 28)) -> np.ndarray:
    """uint8 images [N, H, W] from an IDX image file, which must hold ``size`` (H, W) images."""
    images = _parse(data, path, IMAGES_MAGIC)
    if images.shape[1:] != size:
        h, w = images.shape[1:]
        raise DataError(f"{path}: images are {h}x{w}, expected {size[0]}x{size[1]}")
    return images


def parse_labels(data: bytes, path: Path, num_classes: int = 10) -> np.ndarray:
    """uint8 labels [N] from an IDX label file; each must be below ``num_classes``."""
    labels = _parse(data, path, LABELS_MAGIC)
    if labels.size and labels.max() >= num_classes:
        raise DataError(f"{path}: label {labels.max()} found, expected labels 0-{num_classes - 1}")
    return labels


def check_counts(images: np.ndarray, labels: np.ndarray, images_path: Path, labels_path: Path) -> None:
    """Raise unless there is one label per image."""
    if len(images) != len(labels):
        raise DataError(
            f"{images_path} has {len(images)} images but {labels_path} has {len(labels)} labels; "
            "they must come in matching pairs"
        )
