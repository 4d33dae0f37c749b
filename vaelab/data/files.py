"""Finding, reading, checksumming and downloading a dataset's files.

A file is known by its uncompressed name and the sha256 of its uncompressed content, so it may sit on disk
as ``NAME`` or ``NAME.gz`` (Debian re-gzips Fashion-MNIST: other ``.gz`` bytes, same content).
"""
from __future__ import annotations

import gzip
import hashlib
import os
import shutil
import tempfile
import urllib.request
import zlib
from dataclasses import dataclass
from http.client import HTTPException
from pathlib import Path
from typing import Callable, TypeVar

from .errors import DataError

T = TypeVar("T")
Folder = str | os.PathLike | None  # a data_dir argument
TIMEOUT_S = 60
CHUNK = 1 << 20


@dataclass(frozen=True)
class FileSpec:
    name: str  # file name, uncompressed
    sha256: str  # of the uncompressed content


@dataclass(frozen=True)
class Source:
    """Where a dataset's files live and come from."""

    name: str  # dataset name; its mirror can be overridden with $VAELAB_MIRROR_<NAME>
    folder: str  # the dataset's folder under $VAELAB_DATA and the cache
    files: tuple[FileSpec, ...]
    mirror: str  # base URL of the official download
    gzipped: bool = True  # the mirror serves NAME.gz rather than NAME
    standard_dirs: tuple[str, ...] = ()  # where system packages install the files
    advice: str = ""  # another way to get the files

    @property
    def base_url(self) -> str:
        env = "VAELAB_MIRROR_" + "".join(c if c.isalnum() else "_" for c in self.name.upper())
        return os.environ.get(env, self.mirror).rstrip("/") + "/"

    def remote_name(self, spec: FileSpec) -> str:
        return spec.name + ".gz" if self.gzipped else spec.name


def cache_root() -> Path:
    """``$XDG_CACHE_HOME/vaelab``, by default ``~/.cache/vaelab``."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "vaelab"


def search_dirs(source: Source, data_dir: Folder) -> list[tuple[Path, str]]:
    """The folders that may hold the files, in the order they are tried, each with where it came from."""
    places = [(Path(data_dir), "data_dir argument")] if data_dir is not None else []
    if os.environ.get("VAELAB_DATA"):
        places.append((Path(os.environ["VAELAB_DATA"]) / source.folder, "$VAELAB_DATA"))
    places.append((cache_root() / source.folder, "cache"))
    places += [(Path(d), "standard place") for d in source.standard_dirs]
    return places


def _on_disk(folder: Path, spec: FileSpec) -> Path | None:
    return next((p for p in (folder / spec.name, folder / (spec.name + ".gz")) if p.is_file()), None)


def _complete(folder: Path, specs: tuple[FileSpec, ...]) -> dict[str, Path] | None:
    """Each file's path in ``folder`` (plain or .gz), or None unless all are there."""
    found = {spec.name: _on_disk(folder, spec) for spec in specs}
    return None if None in found.values() else found


def locate(source: Source, data_dir: Folder = None, download: bool = True) -> dict[str, Path]:
    """Path of each of the source's files, from the first folder that holds them all; else downloaded."""
    places = search_dirs(source, data_dir)
    for folder, _ in places:
        if found := _complete(folder, source.files):
            return found
    if not download:
        raise DataError(_not_found(source, places, "Not downloaded, since download=False."))
    dest = Path(data_dir) if data_dir is not None else cache_root() / source.folder
    try:
        fetch(source, dest)
    except (OSError, HTTPException) as err:
        raise DataError(_not_found(source, places, f"Download into {dest} failed: {err}")) from err
    return _complete(dest, source.files)


def _not_found(source: Source, places: list[tuple[Path, str]], why: str) -> str:
    names = ", ".join(spec.name + "[.gz]" for spec in source.files)
    looked = "\n".join(f"  {folder} ({origin})" for folder, origin in places)
    urls = "\n".join(f"  {source.base_url}{source.remote_name(spec)}" for spec in source.files)
    return (
        f"{source.name}: no folder holds all of {names}. Looked in:\n{looked}\n{why}\n"
        f"Get the files from:\n{urls}\ninto one of those folders, or set $VAELAB_DATA to a folder holding "
        f"{source.folder}/.{(' ' + source.advice) if source.advice else ''}"
    )


def fetch(source: Source, dest: Path) -> None:
    """Download the source's files that ``dest`` lacks, each verified before it lands."""
    dest.mkdir(parents=True, exist_ok=True)
    for spec in source.files:
        if _on_disk(dest, spec) is None:
            _download(source.base_url + source.remote_name(spec), dest / source.remote_name(spec), spec)


def _download(url: str, target: Path, spec: FileSpec) -> None:
    """``url`` to ``target`` through a temporary file, renamed into place only once its sha256 matches."""
    fd, name = tempfile.mkstemp(dir=target.parent, prefix=".part-", suffix=target.name)
    part = Path(name)
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=TIMEOUT_S) as response:
            shutil.copyfileobj(response, out, CHUNK)
        actual = read(part)[1]
        if actual != spec.sha256:
            raise DataError(
                f"{url}: downloaded content has sha256 {actual}, expected {spec.sha256} for {spec.name}. "
                "The mirror serves a different or damaged file; nothing was saved. "
                "Try again, or get the file elsewhere."
            )
        os.replace(part, target)
    finally:
        part.unlink(missing_ok=True)


def read(path: Path) -> tuple[bytearray, str]:
    """The (uncompressed, when ``.gz``) content of ``path`` and its sha256, hashed while reading.

    A bytearray, so arrays parsed from it with ``np.frombuffer`` are writable and go to torch without a copy.
    """
    digest, data = hashlib.sha256(), bytearray()
    try:
        with gzip.open(path) if path.suffix == ".gz" else open(path, "rb") as f:
            while chunk := f.read(CHUNK):
                digest.update(chunk)
                data += chunk
    except (gzip.BadGzipFile, EOFError, zlib.error) as err:
        raise DataError(f"{path}: not a valid gzip file ({err}); delete it and get it again") from err
    except OSError as err:
        raise DataError(f"{path}: cannot be read: {err}") from err
    return data, digest.hexdigest()


def load_all(
    source: Source, paths: dict[str, Path], parsers: dict[str, Callable[[bytearray, Path], T]], verify: bool = True
) -> dict[str, T]:
    """Parse each of the source's files, then (when ``verify``) check each one's sha256.

    Every structure problem is reported before any checksum mismatch, since it says more.
    """
    values, digests = {}, {}
    for spec in source.files:
        data, digests[spec.name] = read(paths[spec.name])
        values[spec.name] = parsers[spec.name](data, paths[spec.name])
    if verify:
        for spec in source.files:
            if digests[spec.name] != spec.sha256:
                raise DataError(
                    f"{paths[spec.name]}: sha256 mismatch: the content hashes to {digests[spec.name]}, expected "
                    f"{spec.sha256} for {spec.name}. The file is damaged or another version: delete it to "
                    "download it again, or pass verify=False to load a file of your own in the same format."
                )
    return values
