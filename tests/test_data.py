"""vaelab.data: real datasets (skipped when absent), bad files, search order and downloads."""
from __future__ import annotations

import dataclasses
import functools
import gzip
import hashlib
import socket
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from vaelab.data import DATASETS, DataError, Dataset, load_dataset
from vaelab.data import datasets as data_module
from vaelab.data.files import FileSpec
from vaelab.registry import UnknownName

SHARED = Path("/work/shared/data")
REAL_DIRS = {
    "mnist": SHARED / "mnist",
    "fashion-mnist": Path("/usr/share/datasets/fashion-mnist"),
    "binarized-mnist": SHARED / "binarized_mnist",
}
IDX_NAMES = (*data_module.IDX_TRAIN, *data_module.IDX_TEST)  # train images, labels; test images, labels


def needs(name: str):
    return pytest.mark.skipif(not REAL_DIRS[name].is_dir(), reason=f"{name} files not present")


@pytest.fixture(autouse=True)
def isolated(monkeypatch, tmp_path):
    """No test sees the user's cache or $VAELAB_DATA unless it sets them."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))
    monkeypatch.delenv("VAELAB_DATA", raising=False)


@pytest.fixture
def shared(monkeypatch):
    """$VAELAB_DATA pointing at the shared real data (Fashion-MNIST is found in its Debian place)."""
    monkeypatch.setenv("VAELAB_DATA", str(SHARED))


@functools.cache
def real(name: str) -> Dataset:
    """Each real dataset loaded once (found through $VAELAB_DATA or its standard place)."""
    return load_dataset(name, download=False)


@pytest.fixture(scope="module", autouse=True)
def free_real_data():
    yield
    real.cache_clear()


def rows(split) -> set[bytes]:
    return {r.tobytes() for r in split.x.numpy().reshape(len(split), -1)}


# --- real data -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", [pytest.param(n, marks=needs(n)) for n in ("mnist", "fashion-mnist")])
def test_idx_datasets(name, shared):
    d = real(name)
    assert (d.name, d.shape, d.num_classes, d.binary) == (name, (1, 28, 28), 10, False)
    assert (len(d.train), len(d.val), len(d.test)) == (55000, 5000, 10000)
    for split in (d.train, d.val, d.test):
        assert split.x.dtype == torch.float32 and split.y.dtype == torch.int64
        assert split.x.shape[1:] == (1, 28, 28) and len(split.y) == len(split)
        assert split.x.min() == 0 and split.x.max() == 1
        assert set(split.y.unique().tolist()) == set(range(10))
    assert 0.1 < d.train.x.mean() < 0.4  # scaled by 1/255, not binarized, not left at 0..255


@pytest.mark.parametrize("name", [pytest.param(n, marks=needs(n)) for n in ("mnist", "fashion-mnist")])
def test_val_split_is_seeded_and_disjoint(name, shared):
    d = real(name)
    again = load_dataset(name, download=False)
    assert torch.equal(d.val.x, again.val.x) and torch.equal(d.val.y, again.val.y)
    assert not torch.equal(d.val.y, load_dataset(name, seed=1, download=False).val.y)
    train, val = rows(d.train), rows(d.val)
    assert not train & val
    assert len(train | val) == 60000  # together they are the whole official train set


@needs("mnist")
def test_mnist_known_first_labels(shared):
    full = load_dataset("mnist", val_size=0, download=False)
    assert full.train.y[:12].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4, 3, 5]
    assert len(full.val) == 0 and torch.equal(full.test.x, real("mnist").test.x)


@needs("binarized-mnist")
def test_binarized_mnist(shared):
    d = real("binarized-mnist")
    assert (d.shape, d.num_classes, d.binary) == ((1, 28, 28), 0, True)
    assert (len(d.train), len(d.val), len(d.test)) == (50000, 10000, 10000)
    for split in (d.train, d.val, d.test):
        assert split.y is None and split.x.dtype == torch.float32
        assert ((split.x == 0) | (split.x == 1)).all()
    assert 0.12 < d.train.x.mean() < 0.14  # the MNIST mean intensity


def test_digits():
    d = load_dataset("digits")
    assert (d.shape, d.num_classes, len(d.train), len(d.val), len(d.test)) == ((1, 8, 8), 10, 1300, 200, 297)
    assert d.train.x.min() == 0 and d.train.x.max() == 1 and d.train.y.dtype == torch.int64
    assert torch.equal(d.test.x, load_dataset("digits", seed=5).test.x)  # the test split never moves
    assert not torch.equal(d.val.x, load_dataset("digits", seed=5).val.x)
    assert d.split("val") is d.val
    with pytest.raises(DataError, match="unknown split 'valid'"):
        d.split("valid")


# --- small files written here ----------------------------------------------------------------------------


def idx_bytes(array: np.ndarray, magic: int | None = None) -> bytes:
    magic = 0x800 | array.ndim if magic is None else magic
    return struct.pack(f">I{array.ndim}I", magic, *array.shape) + array.astype(np.uint8).tobytes()


def fake_idx_files(n_train: int = 12, n_test: int = 4, size: int = 28, seed: int = 0) -> dict[str, bytes]:
    rng = np.random.default_rng(seed)
    arrays = [rng.integers(0, 256, (n_train, size, size)), rng.integers(0, 10, n_train),
              rng.integers(0, 256, (n_test, size, size)), rng.integers(0, 10, n_test)]
    return {name: idx_bytes(a) for name, a in zip(IDX_NAMES, arrays)}


def write(folder: Path, contents: dict[str, bytes], gz: bool = True) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in contents.items():
        (folder / (name + ".gz" if gz else name)).write_bytes(gzip.compress(data) if gz else data)
    return folder


def register_checksums(monkeypatch, name: str, contents: dict[str, bytes]) -> None:
    specs = tuple(FileSpec(n, hashlib.sha256(data).hexdigest()) for n, data in contents.items())
    monkeypatch.setitem(data_module.SOURCES, name, dataclasses.replace(data_module.SOURCES[name], files=specs))


def test_fake_files_load_when_their_checksums_are_registered(tmp_path, monkeypatch):
    contents = fake_idx_files()
    register_checksums(monkeypatch, "mnist", contents)
    d = load_dataset("mnist", write(tmp_path / "m", contents), val_size=2, download=False)
    assert (len(d.train), len(d.val), len(d.test)) == (10, 2, 4)
    pixels = np.frombuffer(contents["t10k-images-idx3-ubyte"], np.uint8, offset=16)
    assert torch.equal(d.test.x.flatten(), torch.from_numpy(pixels / 255).float())


IMAGES, LABELS = IDX_NAMES[:2]
gz = gzip.compress


@pytest.mark.parametrize(
    "name, content, message",
    [
        (IMAGES, gz(idx_bytes(np.zeros((12, 28, 28)), magic=0x801)), r"magic number 0x00000801, expected 0x00000803"),
        (IMAGES, gz(idx_bytes(np.zeros((12, 28, 28)))[:-100]), r"truncated IDX file.*12x28x28"),
        (IMAGES, gz(idx_bytes(np.zeros((12, 28, 28)))[:10]), r"truncated IDX file: 10 bytes.*16-byte header"),
        (IMAGES, gz(idx_bytes(np.zeros((12, 32, 32)))), r"images are 32x32, expected 28x28"),
        (LABELS, gz(idx_bytes(np.full(12, 10))), r"label 10 found"),
        (IMAGES, b"not gzip", r"not a valid gzip file"),
        (IMAGES, gz(idx_bytes(np.zeros((12, 28, 28)))), r"sha256 mismatch.*expected ba891046"),
    ],
    ids=["magic", "truncated", "truncated-header", "image-size", "label-range", "bad-gzip", "checksum"],
)
def test_bad_idx_file(tmp_path, name, content, message):
    folder = write(tmp_path / "m", fake_idx_files())
    (folder / (name + ".gz")).write_bytes(content)
    with pytest.raises(DataError, match=message) as err:
        load_dataset("mnist", folder, val_size=2, download=False)
    assert name in str(err.value)


def test_image_label_count_mismatch(tmp_path):
    contents = fake_idx_files() | {LABELS: idx_bytes(np.zeros(11))}
    with pytest.raises(DataError, match="has 12 images but .*train-labels-idx1-ubyte.gz has 11 labels"):
        load_dataset("mnist", write(tmp_path, contents), val_size=2, download=False, verify=False)


def amat_bytes(values: np.ndarray) -> bytes:
    return b"".join(b" ".join(b"%d" % v for v in row) + b"\n" for row in values)


def amat_files(train: np.ndarray, valid: np.ndarray, test: np.ndarray) -> dict[str, bytes]:
    return {f"binarized_mnist_{s}.amat": amat_bytes(v) for s, v in (("train", train), ("valid", valid), ("test", test))}


ZEROS = [b"0"] * 783


@pytest.mark.parametrize(
    "bad_line, message",
    [
        (b" ".join(ZEROS), r"line 2 has 783 values, expected 784"),
        (b" ".join([b"2", *ZEROS]), r"line 2 holds '2'; values must be 0 or 1"),
        (b"1  " + b" ".join(ZEROS), r"not in the .amat layout"),
    ],
    ids=["short-line", "not-binary", "double-space"],
)
def test_bad_amat_file(tmp_path, bad_line, message):
    lines = amat_bytes(np.ones((3, 784), int)).split(b"\n")
    lines[1] = bad_line
    contents = amat_files(*[np.ones((3, 784), int)] * 3) | {"binarized_mnist_valid.amat": b"\n".join(lines)}
    folder = write(tmp_path, contents, gz=False)
    with pytest.raises(DataError, match=message) as err:
        load_dataset("binarized-mnist", folder, download=False, verify=False)
    assert "binarized_mnist_valid.amat" in str(err.value)


def test_amat_files_load(tmp_path, monkeypatch):
    values = np.random.default_rng(0).integers(0, 2, (5, 784))
    contents = amat_files(values, values[:3], values[:2])
    register_checksums(monkeypatch, "binarized-mnist", contents)
    d = load_dataset("binarized-mnist", write(tmp_path, contents), download=False)
    assert (len(d.train), len(d.val), len(d.test)) == (5, 3, 2)
    assert torch.equal(d.train.x.reshape(5, 784), torch.from_numpy(values).float())


def test_missing_files_offline_lists_every_place(tmp_path, monkeypatch):
    monkeypatch.setenv("VAELAB_DATA", str(tmp_path / "root"))
    with pytest.raises(DataError, match="download=False") as err:
        load_dataset("mnist", download=False)
    message = str(err.value)
    for place in (tmp_path / "root" / "mnist", tmp_path / "xdg-cache" / "vaelab" / "mnist"):
        assert f"{place} (" in message
    assert "https://ossci-datasets.s3.amazonaws.com/mnist/t10k-labels-idx1-ubyte.gz" in message
    assert "\n" not in message


def test_a_given_data_dir_is_the_only_place_searched(tmp_path, monkeypatch):
    """A wrong or incomplete data_dir is an error that says what it lacks, never a fall back on another copy."""
    write(tmp_path / "root" / "mnist", fake_idx_files())  # a complete copy, which a given data_dir must not hide
    monkeypatch.setenv("VAELAB_DATA", str(tmp_path / "root"))
    write(tmp_path / "given", dict(list(fake_idx_files().items())[:3]))  # one file short
    with pytest.raises(DataError) as err:
        load_dataset("mnist", tmp_path / "given", download=False, verify=False)
    message = str(err.value)
    assert f"looked in {tmp_path / 'given'} (data_dir: lacks t10k-labels-idx1-ubyte)" in message
    assert str(tmp_path / "root") not in message and "leave data_dir unset" in message
    with pytest.raises(DataError, match=r"\(data_dir: no such folder\)"):
        load_dataset("mnist", tmp_path / "typo", download=False)
    with pytest.raises(DataError, match="digits reads no files, so data_dir must be unset"):
        load_dataset("digits", tmp_path / "given")


def test_unknown_dataset_name():
    with pytest.raises(UnknownName, match="unknown dataset 'cifar'; known: 3dshapes, binarized-mnist, celeba, cifar10"):
        load_dataset("cifar")
    assert {"mnist", "fashion-mnist", "binarized-mnist", "digits", "cifar10"} <= set(DATASETS.names())


# --- search order ----------------------------------------------------------------------------------------


def test_data_dir_beats_vaelab_data(tmp_path, monkeypatch):
    write(tmp_path / "root" / "mnist", fake_idx_files(n_train=20))
    monkeypatch.setenv("VAELAB_DATA", str(tmp_path / "root"))
    assert len(load_dataset("mnist", val_size=2, download=False, verify=False).train) == 18
    given = write(tmp_path / "given", fake_idx_files(n_train=12))
    assert len(load_dataset("mnist", given, val_size=2, download=False, verify=False).train) == 10


def test_cache_is_searched_after_vaelab_data(tmp_path, monkeypatch):
    monkeypatch.setenv("VAELAB_DATA", str(tmp_path / "empty-root"))
    write(tmp_path / "xdg-cache" / "vaelab" / "mnist", fake_idx_files(n_train=15))
    assert len(load_dataset("mnist", val_size=2, download=False, verify=False).train) == 13


def test_gz_and_raw_files_load_the_same(tmp_path, monkeypatch):
    contents = fake_idx_files()
    register_checksums(monkeypatch, "mnist", contents)
    a = load_dataset("mnist", write(tmp_path / "gz", contents, gz=True), val_size=2, download=False)
    b = load_dataset("mnist", write(tmp_path / "raw", contents, gz=False), val_size=2, download=False)
    assert not list((tmp_path / "raw").glob("*.gz")) and len(list((tmp_path / "gz").glob("*.gz"))) == 4
    assert torch.equal(a.train.x, b.train.x) and torch.equal(a.test.y, b.test.y)


# --- downloads from a local server -----------------------------------------------------------------------


def test_download_lands_in_cache_verified(server, tmp_path, monkeypatch):
    served, url = server
    contents = fake_idx_files()
    write(served, contents)
    register_checksums(monkeypatch, "mnist", contents)
    monkeypatch.setenv("VAELAB_MIRROR_MNIST", url)
    monkeypatch.setenv("VAELAB_DATA", str(tmp_path / "empty-root"))
    d = load_dataset("mnist", val_size=2)
    cache = tmp_path / "xdg-cache" / "vaelab" / "mnist"
    assert sorted(p.name for p in cache.iterdir()) == sorted(n + ".gz" for n in IDX_NAMES)
    assert len(d.train) == 10
    (served / "train-images-idx3-ubyte.gz").unlink()  # now found in the cache, not downloaded again
    assert torch.equal(load_dataset("mnist", val_size=2).train.x, d.train.x)


def test_download_into_data_dir_and_raw_amat(server, tmp_path, monkeypatch):
    served, url = server
    contents = amat_files(*[np.ones((2, 784), int)] * 3)
    write(served, contents, gz=False)
    register_checksums(monkeypatch, "binarized-mnist", contents)
    monkeypatch.setenv("VAELAB_MIRROR_BINARIZED_MNIST", url)
    d = load_dataset("binarized-mnist", tmp_path / "mine")
    assert sorted(p.name for p in (tmp_path / "mine").iterdir()) == sorted(contents)
    assert len(d.train) == 2 and d.binary


def test_download_of_corrupted_file_fails_checksum(server, tmp_path, monkeypatch):
    served, url = server
    contents = fake_idx_files()
    register_checksums(monkeypatch, "mnist", contents)
    write(served, contents | {"t10k-labels-idx1-ubyte": idx_bytes(np.ones(4))})
    monkeypatch.setenv("VAELAB_MIRROR_MNIST", url)
    with pytest.raises(DataError, match=r"t10k-labels-idx1-ubyte.gz: downloaded content has sha256 \w+, expect"):
        load_dataset("mnist", tmp_path / "dest", val_size=2)
    assert sorted(p.name for p in (tmp_path / "dest").iterdir()) == sorted(n + ".gz" for n in IDX_NAMES[:3])


def test_network_failure_says_where_it_looked(tmp_path, monkeypatch):
    with socket.socket() as s:  # a port with nothing listening
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("VAELAB_MIRROR_FASHION_MNIST", f"http://127.0.0.1:{port}/")
    source = dataclasses.replace(data_module.SOURCES["fashion-mnist"], standard_dirs=(str(tmp_path / "std"),))
    monkeypatch.setitem(data_module.SOURCES, "fashion-mnist", source)
    with pytest.raises(DataError, match="Download into .* failed") as err:
        load_dataset("fashion-mnist", tmp_path / "dest")
    message = str(err.value)
    assert str(tmp_path / "dest") in message and str(tmp_path / "std") not in message  # data_dir: only it
    assert "apt-get install dataset-fashion-mnist" in message
    assert f"http://127.0.0.1:{port}/train-images-idx3-ubyte.gz" in message
    assert not (tmp_path / "dest").exists()  # no partial files, nor the folder the download made, left behind
