"""Reader for the binary version of CIFAR-10 (https://www.cs.toronto.edu/~kriz/cifar.html).

A batch file is a run of 3073-byte records: one label byte (0-9), then the 32x32 colour image as 1024 red,
1024 green and 1024 blue bytes, each plane row-major; so the whole file is parsed as one numpy array.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .errors import DataError

SIDE = 32
RECORD = 1 + 3 * SIDE * SIDE  # label byte, then the red, green and blue planes


def parse_batch(data: bytes, path: Path, num_classes: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """uint8 images [N, 3, 32, 32] and labels [N] from the content of a CIFAR-10 ``.bin`` batch file."""
    if not data or len(data) % RECORD:
        raise DataError(
            f"{path}: truncated, or not CIFAR-10 binary: {len(data):,} bytes is not a whole number of "
            f"{RECORD}-byte records (a label byte, then 3x{SIDE}x{SIDE} pixels); delete it and get it again"
        )
    records = np.frombuffer(data, np.uint8).reshape(-1, RECORD)
    labels = records[:, 0]
    if (labels >= num_classes).any():
        first = int(np.argmax(labels >= num_classes))
        raise DataError(
            f"{path}: record {first} has label {labels[first]}, expected 0-{num_classes - 1}; not CIFAR-10 binary"
        )
    return records[:, 1:].reshape(-1, 3, SIDE, SIDE), labels
