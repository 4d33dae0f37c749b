"""Reading ``.npz`` files without unpickling anything: each member's shape and dtype from its ``.npy`` header,
its data memory-mapped when stored uncompressed, else read or streamed; a member holding pickled Python objects is
refused, never read.
"""
from __future__ import annotations

import math
import struct
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from ..errors import DataError


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


def need_member(path: Path, members: dict[str, NpyMember], key: str, what: str) -> NpyMember:
    """Member ``key``, or a DataError naming what the file should hold."""
    if key not in members:
        raise DataError(f"{path}: no array {key!r} ({what}); it holds {', '.join(sorted(members)) or 'no arrays'}")
    member = members[key]
    if member.dtype.hasobject:
        raise DataError(f"{path}: array {key!r} holds pickled Python objects ({member.dtype}); it is not read, "
                        f"since unpickling can run code. Expected {what}")
    return member
