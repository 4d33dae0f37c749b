"""Reader for the ``.amat`` text files of statically binarized MNIST (Larochelle & Murray, AISTATS 2011).

One image a line: ``width`` values, each ``0`` or ``1``, separated by single spaces, the line ending in ``\\n``;
so every line is exactly ``2 * width`` bytes, and the whole file is parsed as one numpy array.
"""
from __future__ import annotations

from pathlib import Path
from typing import NoReturn

import numpy as np

from .errors import DataError

SPACE, NEWLINE, ZERO = ord(" "), ord("\n"), ord("0")


def parse_amat(data: bytes, path: Path, width: int = 784) -> np.ndarray:
    """uint8 [N, width] array of 0/1 from the content of an ``.amat`` file."""
    line = 2 * width
    if len(data) % line == 0:
        rows = np.frombuffer(data, np.uint8).reshape(-1, line)
        separators, values = rows[:, 1::2], rows[:, 0::2] - ZERO
        if (separators[:, :-1] == SPACE).all() and (separators[:, -1] == NEWLINE).all() and (values <= 1).all():
            return values
    _raise_first_problem(data, path, width)


def _raise_first_problem(data: bytes, path: Path, width: int) -> NoReturn:
    """Find the first line that breaks the layout and raise a DataError naming it (the slow path)."""
    for number, text in enumerate(data.splitlines(), start=1):
        tokens = text.split()
        if len(tokens) != width:
            raise DataError(f"{path}: line {number} has {len(tokens)} values, expected {width}")
        bad = next((t for t in tokens if t not in (b"0", b"1")), None)
        if bad is not None:
            raise DataError(f"{path}: line {number} holds {bad.decode(errors='replace')!r}; values must be 0 or 1")
    raise DataError(
        f"{path}: not in the .amat layout: expected lines of {width} values separated by single spaces, "
        "each line ending in a newline"
    )
