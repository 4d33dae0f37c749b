"""Finding, reading, checksumming and downloading a dataset's files.

A file is known by its uncompressed name and the sha256 of its uncompressed content, so it may sit on disk
as ``NAME`` or ``NAME.gz`` (Debian re-gzips Fashion-MNIST: other ``.gz`` bytes, same content).
A source whose mirror serves one archive (CIFAR-10's tarball) is checked by the archive's published md5 instead,
and its files by their structure alone when no per-file sha256 is known. A source whose mirror serves its content in
another format (Frey Faces: a MATLAB file) is converted on download, and the files it yields are checked by their
sha256 before they land.
"""
from __future__ import annotations

import gzip
import hashlib
import os
import shutil
import tarfile
import tempfile
import urllib.request
import zlib
from dataclasses import dataclass
from http.client import HTTPException
from pathlib import Path, PurePosixPath
from typing import Callable, TypeVar

from .errors import DataError

T = TypeVar("T")
Folder = str | os.PathLike | None  # a data_dir argument
TIMEOUT_S = 60
CHUNK = 1 << 20


@dataclass(frozen=True)
class FileSpec:
    name: str  # file name, uncompressed
    sha256: str | None  # of the uncompressed content; None when unpublished (only for files from an Archive)


@dataclass(frozen=True)
class Archive:
    """A tar archive, checked by its published md5, that the mirror serves in place of a source's single files."""

    name: str  # file name on the mirror
    md5: str
    folder: str = ""  # the folder inside the archive that holds the files; each place is searched with it too


@dataclass(frozen=True)
class Converted:
    """A file the mirror serves in place of a source's files, in another format, with no published checksum:
    ``convert(downloaded file, folder)`` writes the source's files into the folder, and their sha256 are checked."""

    name: str  # file name on the mirror
    convert: Callable[[Path, Path], None]


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
    archive: Archive | None = None  # the mirror serves this archive, not each file
    converted: Converted | None = None  # the mirror serves this file in another format, not the files

    @property
    def base_url(self) -> str:
        env = "VAELAB_MIRROR_" + "".join(c if c.isalnum() else "_" for c in self.name.upper())
        return os.environ.get(env, self.mirror).rstrip("/") + "/"

    def remote_name(self, spec: FileSpec) -> str:
        return spec.name + ".gz" if self.gzipped else spec.name

    def folders(self, place: Path) -> list[Path]:
        """Where in ``place`` the files may sit: in it, or in the archive's folder inside it."""
        return [place, place / self.archive.folder] if self.archive and self.archive.folder else [place]


def cache_root() -> Path:
    """``$XDG_CACHE_HOME/vaelab``, by default ``~/.cache/vaelab``."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "vaelab"


def search_dirs(source: Source, data_dir: Folder) -> list[tuple[Path, str]]:
    """The folders that may hold the files, in the order they are tried, each with where it came from: ``data_dir``
    alone when it is given (a wrong one is an error, never a silent fall back on another copy), else
    ``$VAELAB_DATA/<folder>``, the cache and the standard places."""
    if data_dir is not None:
        return [(Path(data_dir), "data_dir")]
    places = []
    if os.environ.get("VAELAB_DATA"):
        places.append((Path(os.environ["VAELAB_DATA"]) / source.folder, "$VAELAB_DATA"))
    places.append((cache_root() / source.folder, "cache"))
    places += [(Path(d), "standard place") for d in source.standard_dirs]
    return places


def no_files(name: str, data_dir: Folder) -> None:
    """A dataset that reads no files refuses a data_dir rather than ignore it."""
    if data_dir is not None:
        raise DataError(f"{name} reads no files, so data_dir must be unset (null), not {str(data_dir)!r}")


def _on_disk(folder: Path, spec: FileSpec) -> Path | None:
    return next((p for p in (folder / spec.name, folder / (spec.name + ".gz")) if p.is_file()), None)


def _complete(source: Source, place: Path) -> dict[str, Path] | None:
    """Each file's path (plain or .gz) in the first of ``source.folders(place)`` that holds them all, else None."""
    for folder in source.folders(place):
        found = {spec.name: _on_disk(folder, spec) for spec in source.files}
        if None not in found.values():
            return found
    return None


def locate(source: Source, data_dir: Folder = None, download: bool = True) -> dict[str, Path]:
    """Path of each of the source's files, from the first folder that holds them all; else downloaded (into
    data_dir when given, else the cache)."""
    places = search_dirs(source, data_dir)
    for folder, _ in places:
        if found := _complete(source, folder):
            return found
    looked = looked_in(source, places)
    if not download:
        raise DataError(_not_found(source, looked, "Not downloaded, since download=False."))
    dest = Path(data_dir) if data_dir is not None else cache_root() / source.folder
    try:
        fetch(source, dest)
    except (OSError, HTTPException) as err:
        raise DataError(_not_found(source, looked, f"Download into {dest} failed: {err}.")) from err
    return _complete(source, dest)


def looked_in(source: Source, places: list[tuple[Path, str]]) -> str:
    """Each place searched, and what it lacks."""
    looked = ", ".join(f"{folder} ({origin}{_missing(source, folder)})" for folder, origin in places)
    if source.archive is not None and source.archive.folder:
        looked += f", each also with its subfolder {source.archive.folder}/"
    return looked


def _not_found(source: Source, looked: str, why: str) -> str:
    """One line: which files were looked for where (:func:`looked_in`), why they were not downloaded, and how to
    get them."""
    names = ", ".join(spec.name + "[.gz]" for spec in source.files)
    if source.converted is not None:
        get = f"get {source.base_url}{source.converted.name} and let vaelab convert it (download=True) into"
    elif source.archive is None:
        get = f"get {' '.join(source.base_url + source.remote_name(spec) for spec in source.files)} into"
    else:
        get = f"get {source.base_url}{source.archive.name} and unpack it into"
    where = "that folder, or leave data_dir unset to search $VAELAB_DATA, the cache and the standard places" if \
        "(data_dir" in looked else f"one of those folders, or set $VAELAB_DATA to a folder holding {source.folder}/"
    advice = f" {source.advice}" if source.advice else ""
    return f"{source.name}: no folder holds all of {names}; looked in {looked}. {why} To fix: {get} {where}.{advice}"


def _missing(source: Source, place: Path) -> str:
    """``: missing NAME, ...`` for a folder that holds some of the files, ``: not a folder`` for none at all."""
    if not place.is_dir():
        return ": no such folder"
    lacking = [spec.name for spec in source.files if all(_on_disk(f, spec) is None for f in source.folders(place))]
    return f": lacks {', '.join(lacking)}" if len(lacking) < len(source.files) else ": holds none of them"


def fetch(source: Source, dest: Path) -> None:
    """Download the source's files that ``dest`` lacks, each verified before it lands.

    From an archive: when any is lacking, the archive, verified by its md5, then unpacked into
    ``dest/<archive folder>``.
    """
    created = not dest.exists()
    dest.mkdir(parents=True, exist_ok=True)
    try:
        if source.converted is not None:
            if _complete(source, dest) is None:
                _fetch_converted(source, dest)
            return
        if source.archive is not None:
            if _complete(source, dest) is None:
                _fetch_archive(source, dest)
            return
        for spec in source.files:
            if _on_disk(dest, spec) is None:
                name = source.remote_name(spec)
                _download(source.base_url + name, dest / name, _checksum("sha256", _sha256, spec.sha256, spec.name))
    except BaseException:
        if created and not any(dest.iterdir()):
            dest.rmdir()  # a failed download leaves no empty folder behind (a mistyped data_dir)
        raise


def _checksum(algorithm: str, digest: Callable[[Path], str], expected: str, name: str) -> Callable[[Path], str | None]:
    """A check for :func:`_download`: the problem when a file's ``digest`` is not ``expected``, that of ``name``."""

    def check(path: Path) -> str | None:
        actual = digest(path)
        if actual != expected:
            return f"downloaded content has {algorithm} {actual}, expected {expected} for {name}"
        return None

    return check


def _sha256(path: Path) -> str:
    """Of the uncompressed content, as :class:`FileSpec` has it."""
    return read(path)[1]


def _md5(path: Path) -> str:
    """Of the bytes as they are, as :class:`Archive` has it."""
    with open(path, "rb") as f:
        return hashlib.file_digest(f, lambda: hashlib.md5(usedforsecurity=False)).hexdigest()


def _download(url: str, target: Path, check: Callable[[Path], str | None]) -> None:
    """``url`` to ``target`` through a temporary file, renamed into place only once ``check`` finds no problem.

    ``check(file)`` says what is wrong with the downloaded file (a checksum mismatch), or None.
    """
    fd, name = tempfile.mkstemp(dir=target.parent, prefix=".part-", suffix=target.name)
    part = Path(name)
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=TIMEOUT_S) as response:
            shutil.copyfileobj(response, out, CHUNK)
        if problem := check(part):
            raise DataError(
                f"{url}: {problem}. The mirror serves a different or damaged file; nothing was saved. "
                "Try again, or get the file elsewhere."
            )
        os.replace(part, target)
    finally:
        part.unlink(missing_ok=True)


def _fetch_archive(source: Source, dest: Path) -> None:
    """Download the source's archive into ``dest``, check its md5, unpack the source's files, delete the archive."""
    archive = source.archive
    url, target = source.base_url + archive.name, dest / archive.name
    _download(url, target, _checksum("md5", _md5, archive.md5, archive.name))
    try:
        _unpack(target, url, source, dest / archive.folder)
    finally:
        target.unlink(missing_ok=True)


def _fetch_converted(source: Source, dest: Path) -> None:
    """Download the source's converted file into a temporary folder in ``dest``, convert it there, and move each
    file it yields into ``dest`` once its sha256 is the expected one; nothing else lands."""
    url = source.base_url + source.converted.name
    with tempfile.TemporaryDirectory(dir=dest, prefix=".convert-") as tmp:
        raw = Path(tmp) / source.converted.name
        _download(url, raw, lambda path: None)  # no published checksum: the converted content is checked
        try:
            source.converted.convert(raw, Path(tmp))
        except DataError as err:
            raise DataError(f"{url}: {err}; nothing was saved") from err
        for spec in source.files:
            made = Path(tmp) / spec.name
            if problem := _checksum("sha256", _sha256, spec.sha256, spec.name)(made):
                raise DataError(f"{url}: converted, the {problem}. The mirror serves other content; nothing was saved")
        for spec in source.files:
            os.replace(Path(tmp) / spec.name, dest / spec.name)


def _unpack(path: Path, url: str, source: Source, into: Path) -> None:
    """Extract the source's files from the tar archive ``path`` (downloaded from ``url``) into ``into``.

    Every member's path is checked first, and an archive with any absolute or ``..`` path is refused whole;
    then only the wanted regular files are extracted, with tarfile's ``data`` filter, into a temporary folder
    inside ``into``, and moved into place. Nothing else in the archive lands on disk.
    """
    wanted = {spec.name for spec in source.files}
    try:
        with tarfile.open(path) as tar:
            members = tar.getmembers()
            for member in members:
                parts = PurePosixPath(member.name)
                if parts.is_absolute() or ".." in parts.parts:
                    raise DataError(
                        f"{url}: unsafe archive: member {member.name!r} has an absolute path or '..'; "
                        "nothing was extracted. Get the archive from the official mirror."
                    )
            picked = {}
            for member in members:
                if member.isfile() and PurePosixPath(member.name).name in wanted:
                    picked.setdefault(PurePosixPath(member.name).name, member)
            if missing := sorted(wanted - picked.keys()):
                raise DataError(f"{url}: the archive lacks {', '.join(missing)}; nothing was extracted")
            into.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryDirectory(dir=into, prefix=".unpack-") as tmp:
                tar.extractall(tmp, members=list(picked.values()), filter="data")
                for name, member in picked.items():
                    os.replace(Path(tmp) / member.name, into / name)
    except (tarfile.TarError, EOFError, zlib.error) as err:
        raise DataError(f"{url}: the archive cannot be unpacked ({err}); nothing was extracted") from err


def read(path: Path, declared: Callable[[bytes], int] | None = None) -> tuple[bytearray, str]:
    """The (uncompressed, when ``.gz``) content of ``path`` and its sha256, hashed while reading.

    ``declared``: the size the content's first bytes (up to a megabyte) declare (an IDX header, see
    :func:`vaelab.data.idx.declared_size`); reading stops one byte past it, so a gzip bomb is never inflated whole.
    A bytearray, so arrays parsed from it with ``np.frombuffer`` are writable and go to torch without a copy.
    """
    digest, data = hashlib.sha256(), bytearray()
    limit = None
    try:
        with gzip.open(path) if path.suffix == ".gz" else open(path, "rb") as f:
            while chunk := f.read(CHUNK if limit is None else min(CHUNK, limit + 1 - len(data))):
                digest.update(chunk)
                data += chunk
                if declared is not None and limit is None:
                    limit = declared(bytes(data))
                if limit is not None and len(data) > limit:
                    break
    except (gzip.BadGzipFile, EOFError, zlib.error) as err:
        raise DataError(f"{path}: not a valid gzip file ({err}); delete it and get it again") from err
    except OSError as err:
        raise DataError(f"{path}: cannot be read: {err}") from err
    return data, digest.hexdigest()


def load_all(
    source: Source, paths: dict[str, Path], parsers: dict[str, Callable[[bytearray, Path], T]], verify: bool = True,
    declared: dict[str, Callable[[bytes], int]] | None = None,
) -> dict[str, T]:
    """Parse each of the source's files, then (when ``verify``) check each one's sha256, where it is known.
    ``declared``: for files with a header, the size it declares (see :func:`read`).

    Every structure problem is reported before any checksum mismatch, since it says more.
    """
    values, digests = {}, {}
    for spec in source.files:
        data, digests[spec.name] = read(paths[spec.name], (declared or {}).get(spec.name))
        values[spec.name] = parsers[spec.name](data, paths[spec.name])
    if verify:
        for spec in source.files:
            if spec.sha256 is not None and digests[spec.name] != spec.sha256:
                raise DataError(
                    f"{paths[spec.name]}: sha256 mismatch: the content hashes to {digests[spec.name]}, expected "
                    f"{spec.sha256} for {spec.name}. The file is damaged or another version: delete it to "
                    "download it again (a file of your own in the same format loads from Python with "
                    "load_dataset(..., verify=False))."
                )
    return values
