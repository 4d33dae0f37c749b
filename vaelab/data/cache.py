"""Image files decoded once into a memory-mapped uint8 cache (``.npy``), for datasets larger than memory.

The cache is named by a checksum of the source listing (each file's name, size and modification time, in order) and
of the decoding options, so a changed, added or removed file, or another image size, decodes afresh, and an unchanged
folder maps the cache without reading an image. CelebA at 64x64 is 2.5 GB of uint8 (10 GB as float32): the process
maps it and reads the rows of each batch. Pages read through a mapping count as the process's resident memory until
released, so :func:`note_read` gives them back to the kernel's page cache (``madvise(MADV_DONTNEED)``) every
RELEASE_BYTES read: resident memory stays bounded however large the dataset. A page fault maps more than the page
read (fault-around, and the page cache's large folios: measured here, each 12 KiB row of a 64x64 cache read at random
added about 1.25 MB of resident memory), so a row read counts as at least FAULT_AROUND bytes.
"""
from __future__ import annotations

import hashlib
import mmap
import weakref
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from tqdm import tqdm

from ..durable import replacing
from .errors import DataError
from .files import cache_root
from .images import ImageOptions, decode

RELEASE_BYTES = 256 << 20  # read through mappings between two releases of their pages
FAULT_AROUND = 2 << 20  # what one row's page fault may map: a 2 MiB folio
_MAPS: weakref.WeakValueDictionary = weakref.WeakValueDictionary()  # id -> np.memmap of each cache in use
_read = 0


def listing_checksum(paths: Sequence[Path], opt: ImageOptions) -> str:
    """sha256 of the decoding options and of each file's name, size and modification time (ns), in order."""
    h = hashlib.sha256(repr((opt.size, opt.crop, opt.channels)).encode())
    for path in paths:
        st = path.stat()
        h.update(f"{path}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:32]


def cache_path(paths: Sequence[Path], opt: ImageOptions) -> Path:
    return cache_root() / "images" / f"{listing_checksum(paths, opt)}-{opt.channels}x{opt.size}.npy"


def cached_images(paths: Sequence[Path], opt: ImageOptions, progress: bool = True) -> torch.Tensor:
    """uint8 [N, C, size, size] of the image files, memory-mapped from their cache (decoded into it first when the
    listing's checksum names no cache yet, with a progress bar)."""
    path = cache_path(paths, opt)
    if not path.exists():
        _decode(path, paths, opt, progress)
    try:
        array = np.load(path, mmap_mode="c")  # copy-on-write: writable for torch, the file never changes
    except (OSError, ValueError) as err:
        raise DataError(f"{path}: a damaged image cache ({err}); delete it to decode the images again") from err
    if array.shape != (len(paths), opt.channels, opt.size, opt.size) or array.dtype != np.uint8:
        raise DataError(f"{path}: holds {array.dtype} {array.shape}, not the {len(paths)} images it names; delete it")
    _MAPS[id(array)] = array
    return torch.from_numpy(array)


def _decode(path: Path, paths: Sequence[Path], opt: ImageOptions, progress: bool) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with replacing(path) as tmp:
        out = np.lib.format.open_memmap(tmp, "w+", np.uint8, (len(paths), opt.channels, opt.size, opt.size))
        for i, image in enumerate(tqdm(paths, unit="image", desc=f"decoding into {path.name}",
                                       disable=None if progress else True, mininterval=1.0)):  # None: a
            # terminal only (a bad image's error stays the one line a pipe or log receives)
            out[i] = decode(image, opt)
            if (i + 1) % 8192 == 0:
                _release(out)  # written pages too: decoding keeps no more than a window resident
        out.flush()
        del out


def note_read(rows: int, row_bytes: int) -> None:
    """Count ``rows`` rows of ``row_bytes`` read from mapped caches; every RELEASE_BYTES, release the pages of all
    mappings."""
    global _read
    _read += rows * max(row_bytes, FAULT_AROUND)
    if _read >= RELEASE_BYTES:
        _read = 0
        for array in list(_MAPS.values()):
            _release(array)


def is_mapped(t: torch.Tensor) -> bool:
    """``t`` shares memory with a mapped cache."""
    ptr = t.untyped_storage().data_ptr()
    return any(a.ctypes.data <= ptr < a.ctypes.data + a.nbytes for a in list(_MAPS.values()))


def _release(array: np.memmap) -> None:
    """Drop ``array``'s resident pages from this process (they stay in the page cache, or on disk)."""
    m = getattr(array, "_mmap", None)
    if m is not None and hasattr(m, "madvise"):
        if getattr(array, "mode", "") in ("r+", "w+"):
            m.flush()  # written pages reach the file before they are dropped
        m.madvise(mmap.MADV_DONTNEED)
