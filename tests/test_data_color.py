"""vaelab.data's colour datasets on small files written here: CIFAR-10 (binary), image folders and CelebA."""
from __future__ import annotations

import dataclasses
import hashlib
import io
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from vaelab.data import DataError, load_dataset
from vaelab.data import datasets as data_module

CIFAR_NAMES = (*data_module.CIFAR_TRAIN, data_module.CIFAR_TEST)
PER_FILE = 20  # records in each fake batch file


@pytest.fixture(autouse=True)
def isolated(monkeypatch, tmp_path):
    """No test sees the user's cache or $VAELAB_DATA unless it sets them."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))
    monkeypatch.delenv("VAELAB_DATA", raising=False)


# --- CIFAR-10 --------------------------------------------------------------------------------------------


def cifar_arrays(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """PER_FILE random images [N, 3, 32, 32] and labels; the first is pure red with label 3."""
    rng = np.random.default_rng(seed)
    x, y = rng.integers(0, 256, (PER_FILE, 3, 32, 32), np.uint8), rng.integers(0, 10, PER_FILE).astype(np.uint8)
    x[0], y[0] = 0, 3
    x[0, 0] = 255
    return x, y


def cifar_bytes(x: np.ndarray, y: np.ndarray) -> bytes:
    """The official record layout: a label byte, then 1024 red, 1024 green, 1024 blue bytes, row-major."""
    return np.concatenate([y[:, None], x.reshape(len(x), 3072)], axis=1).tobytes()


def fake_cifar() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    return {name: cifar_arrays(seed) for seed, name in enumerate(CIFAR_NAMES)}


def write_cifar(folder: Path, arrays=None, **replace: bytes) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    contents = {name: cifar_bytes(*xy) for name, xy in (arrays or fake_cifar()).items()} | replace
    for name, data in contents.items():
        (folder / name).write_bytes(data)
    return folder


def test_cifar10_layout_labels_and_splits(tmp_path):
    arrays = fake_cifar()
    d = load_dataset("cifar10", write_cifar(tmp_path / "c", arrays), val_size=10, download=False)
    assert (d.name, d.shape, d.num_classes, d.binary) == ("cifar10", (3, 32, 32), 10, False)
    assert (len(d.train), len(d.val), len(d.test)) == (5 * PER_FILE - 10, 10, PER_FILE)
    for split in (d.train, d.val, d.test):
        assert split.x.dtype == torch.float32 and split.y.dtype == torch.int64
        assert 0 <= split.x.min() and split.x.max() <= 1
    red = d.test.x[0]  # a record whose red plane is 255 and other planes 0
    assert (red[0] == 1).all() and (red[1:] == 0).all() and d.test.y[0] == 3
    x, y = arrays["test_batch.bin"]
    assert torch.equal(d.test.x, torch.from_numpy(x).float() / 255) and torch.equal(d.test.y, torch.from_numpy(y).long())
    full = load_dataset("cifar10", tmp_path / "c", val_size=0, download=False)  # the batches, in order
    x = np.concatenate([arrays[name][0] for name in data_module.CIFAR_TRAIN])
    assert len(full.val) == 0 and torch.equal(full.train.x, torch.from_numpy(x).float() / 255)
    assert load_dataset("cifar10", tmp_path / "c", val_size=10, seed=1, download=False).val.y.tolist() != d.val.y.tolist()


def test_cifar10_default_val_size_needs_the_full_train_set(tmp_path):
    with pytest.raises(DataError, match=r"val_size=5000 does not fit: the train split has 100 rows"):
        load_dataset("cifar10", write_cifar(tmp_path), download=False)


@pytest.mark.parametrize("inside", ["cifar10", "cifar10/cifar-10-batches-bin"])
def test_cifar10_found_in_vaelab_data_directly_or_in_its_subfolder(tmp_path, monkeypatch, inside):
    write_cifar(tmp_path / "root" / inside)
    monkeypatch.setenv("VAELAB_DATA", str(tmp_path / "root"))
    assert len(load_dataset("cifar10", val_size=10, download=False).test) == PER_FILE


@pytest.mark.parametrize(
    "content, message",
    [
        (cifar_bytes(*cifar_arrays(0))[:-5], r"truncated, or not CIFAR-10 binary: 61,455 bytes .* 3073-byte records"),
        (b"", r"truncated, or not CIFAR-10 binary: 0 bytes"),
        (b"\x0a" + cifar_bytes(*cifar_arrays(0))[1:], r"record 0 has label 10, expected 0-9"),
    ],
    ids=["truncated", "empty", "label"],
)
def test_bad_cifar10_file(tmp_path, content, message):
    folder = write_cifar(tmp_path, **{"data_batch_3.bin": content})
    with pytest.raises(DataError, match=message) as err:
        load_dataset("cifar10", folder, val_size=10, download=False)
    assert "data_batch_3.bin" in str(err.value)


def test_cifar10_missing_offline_says_where_and_what(tmp_path):
    write_cifar(tmp_path / "given").joinpath("test_batch.bin").unlink()
    with pytest.raises(DataError, match="download=False") as err:
        load_dataset("cifar10", tmp_path / "given", download=False)
    message = str(err.value)
    assert f"{tmp_path / 'given'} (data_dir: lacks test_batch.bin)" in message
    assert str(tmp_path / "xdg-cache") not in message  # a given data_dir is the only place searched
    assert "subfolder cifar-10-batches-bin/" in message
    assert "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz" in message


def cifar_tarball(folder: Path, extra: dict[str, bytes] | None = None, skip: str = "") -> str:
    """Write cifar-10-binary.tar.gz in the official layout into ``folder``; its md5."""
    members = {f"cifar-10-batches-bin/{name}": cifar_bytes(*xy) for name, xy in fake_cifar().items() if name != skip}
    members |= {"cifar-10-batches-bin/batches.meta.txt": b"airplane\n", "cifar-10-batches-bin/readme.html": b"<p>"}
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, data in (members | (extra or {})).items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    (folder / "cifar-10-binary.tar.gz").write_bytes(buffer.getvalue())
    return hashlib.md5(buffer.getvalue()).hexdigest()


def serve_cifar(server, monkeypatch, register_md5: bool = True, **kwargs) -> Path:
    served, url = server
    md5 = cifar_tarball(served, **kwargs)
    source = data_module.SOURCES["cifar10"]
    if register_md5:
        monkeypatch.setitem(data_module.SOURCES, "cifar10", dataclasses.replace(
            source, archive=dataclasses.replace(source.archive, md5=md5)))
    monkeypatch.setenv("VAELAB_MIRROR_CIFAR10", url)
    return served


def test_cifar10_download_unpacks_the_six_files_into_the_cache(server, tmp_path, monkeypatch):
    served = serve_cifar(server, monkeypatch)
    d = load_dataset("cifar10", val_size=10)
    cache = tmp_path / "xdg-cache" / "vaelab" / "cifar10"
    assert [p.name for p in cache.iterdir()] == ["cifar-10-batches-bin"]  # no archive, no temporary folder
    assert sorted(p.name for p in (cache / "cifar-10-batches-bin").iterdir()) == sorted(CIFAR_NAMES)
    assert (len(d.train), len(d.test)) == (5 * PER_FILE - 10, PER_FILE) and (d.test.x[0, 0] == 1).all()
    (served / "cifar-10-binary.tar.gz").unlink()  # now found in the cache, not downloaded again
    assert torch.equal(load_dataset("cifar10", val_size=10).train.x, d.train.x)


def test_cifar10_download_into_data_dir(server, tmp_path, monkeypatch):
    serve_cifar(server, monkeypatch)
    assert len(load_dataset("cifar10", tmp_path / "mine", val_size=10).test) == PER_FILE
    assert sorted(p.name for p in (tmp_path / "mine" / "cifar-10-batches-bin").iterdir()) == sorted(CIFAR_NAMES)


def test_cifar10_download_checks_the_official_md5(server, tmp_path, monkeypatch):
    serve_cifar(server, monkeypatch, register_md5=False)
    with pytest.raises(DataError, match=r"cifar-10-binary.tar.gz: downloaded content has md5 \w+, expected "
                                        r"c32a1d4ab5d03f1284b67883e8d87530 for cifar-10-binary.tar.gz"):
        load_dataset("cifar10", tmp_path / "dest", val_size=10)
    assert not list((tmp_path / "dest").iterdir())  # nothing saved


@pytest.mark.parametrize("member", ["../evil", "/tmp/evil-absolute", "cifar-10-batches-bin/../../evil"])
def test_cifar10_archive_with_unsafe_member_is_refused(server, tmp_path, monkeypatch, member):
    serve_cifar(server, monkeypatch, extra={member: b"gotcha"})
    with pytest.raises(DataError, match=f"unsafe archive: member '{member}'"):
        load_dataset("cifar10", tmp_path / "dest" / "inner", val_size=10)
    assert not (tmp_path / "dest" / "evil").exists() and not (tmp_path / "evil").exists()
    assert not list((tmp_path / "dest" / "inner").iterdir())  # nothing extracted, archive deleted


def test_cifar10_archive_lacking_a_file(server, tmp_path, monkeypatch):
    serve_cifar(server, monkeypatch, skip="data_batch_4.bin")
    with pytest.raises(DataError, match="the archive lacks data_batch_4.bin"):
        load_dataset("cifar10", tmp_path / "dest", val_size=10)


# --- image folders ---------------------------------------------------------------------------------------

COLOURS = {"birds": (255, 0, 0), "cats": (0, 255, 0), "dogs": (0, 0, 255)}  # one solid colour per class


def save(path: Path, image: Image.Image, **kwargs) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, **kwargs)
    return path


def classes_folder(root: Path) -> Path:
    """Five images of three classes, of different sizes, formats and suffix cases; one nested deeper."""
    for rel, size in [("birds/a.png", (40, 30)), ("birds/b.bmp", (30, 30)), ("cats/c.JPG", (50, 50)),
                      ("cats/d.webp", (33, 47)), ("dogs/deeper/e.jpeg", (20, 60))]:
        save(root / rel, Image.new("RGB", size, COLOURS[rel.split("/")[0]]))
    (root / "cats" / "notes.txt").write_text("not an image")
    save(root / ".hidden" / "x.png", Image.new("RGB", (8, 8)))  # skipped, not a class
    return root


def test_image_folder_labels_from_subfolders(tmp_path):
    d = load_dataset("image-folder", classes_folder(tmp_path / "imgs"), size=16)
    assert (d.name, d.shape, d.num_classes, d.binary) == ("image-folder", (3, 16, 16), 3, False)
    assert (len(d.train), len(d.val), len(d.test)) == (3, 1, 1)
    labels = torch.cat([d.train.y, d.val.y, d.test.y])
    assert labels.dtype == torch.int64 and sorted(labels.tolist()) == [0, 0, 1, 1, 2]
    for split in (d.train, d.val, d.test):
        for x, y in zip(split.x, split.y):
            colour = torch.tensor(list(COLOURS.values())[y]) / 255  # birds 0, cats 1, dogs 2
            assert torch.allclose(x.mean((1, 2)), colour, atol=0.02)


def test_image_folder_centre_crop(tmp_path):
    # 60x20: red | black | white | green, each 20, 10, 10, 20 columns wide; the centred square is black | white.
    pixels = np.zeros((20, 60, 3), np.uint8)
    pixels[:, :20] = (255, 0, 0)
    pixels[:, 30:40] = 255
    pixels[:, 40:] = (0, 255, 0)
    save(tmp_path / "one" / "wide.png", Image.fromarray(pixels))
    d = load_dataset("image-folder", tmp_path / "one", size=20)  # crop: the shorter side; no resampling
    assert (len(d.train), len(d.val), len(d.test), d.num_classes, d.train.y) == (1, 0, 0, 0, None)
    x = d.train.x[0]
    assert (x[:, :, :10] == 0).all() and (x[:, :, 10:] == 1).all()
    x = load_dataset("image-folder", tmp_path / "one", size=10, crop=10).train.x[0]  # columns 25-34, rows 5-14
    assert (x[:, :, :5] == 0).all() and (x[:, :, 5:] == 1).all()
    x = load_dataset("image-folder", tmp_path / "one", size=8).train.x[0]  # downsampled 20 -> 8, bicubic
    assert torch.allclose(x[0], x[1]) and torch.allclose(x[1], x[2])  # grey: nothing of the red or green (copies)
    assert (x[:, :, :3] < 0.05).all() and (x[:, :, 5:] > 0.95).all()


def test_image_folder_grey(tmp_path):
    d = load_dataset("image-folder", classes_folder(tmp_path / "imgs"), size=12, channels=1)
    assert d.shape == (1, 12, 12)
    birds = torch.cat([s.x[s.y == 0] for s in (d.train, d.val, d.test)])
    assert len(birds) == 2 and torch.allclose(birds, torch.tensor(76 / 255))  # L = 0.299 R, rounded; one division


def test_image_folder_split_sizes_and_seeds(tmp_path):
    for i in range(30):
        save(tmp_path / "many" / f"{i:02d}.png", Image.new("L", (6, 6), 8 * i))
    d = load_dataset("image-folder", tmp_path / "many", size=6)
    assert (len(d.train), len(d.val), len(d.test)) == (24, 3, 3)
    other = load_dataset("image-folder", tmp_path / "many", size=6, seed=1, val_size=5)
    assert torch.equal(other.test.x, d.test.x) and len(other.val) == 5  # the test split never moves
    assert not torch.equal(load_dataset("image-folder", tmp_path / "many", size=6, seed=1).val.x, d.val.x)
    every = torch.cat([d.train.x, d.val.x, d.test.x])[:, 0, 0, 0] * 255 / 8
    assert sorted(every.round().int().tolist()) == list(range(30))


def test_image_folder_bad_files(tmp_path):
    root = classes_folder(tmp_path / "imgs")
    (root / "dogs" / "broken.png").write_bytes(b"\x89PNG not really")
    with pytest.raises(DataError, match=r"broken.png: not a readable image"):
        load_dataset("image-folder", root)
    buffer = io.BytesIO()
    Image.new("RGB", (64, 64), (1, 2, 3)).save(buffer, "JPEG")
    (root / "dogs" / "broken.png").write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])
    with pytest.raises(DataError, match=r"(?i)broken.png: not a readable image .*truncated"):
        load_dataset("image-folder", root)


def test_image_folder_problems(tmp_path):
    (tmp_path / "empty" / "sub").mkdir(parents=True)
    (tmp_path / "empty" / "readme.txt").write_text("no images")
    with pytest.raises(DataError, match=r"empty: holds no image files"):
        load_dataset("image-folder", tmp_path / "empty")
    with pytest.raises(DataError, match=r"not a folder"):
        load_dataset("image-folder", tmp_path / "absent")
    with pytest.raises(DataError, match=r"image-folder needs data_dir"):
        load_dataset("image-folder")
    root = classes_folder(tmp_path / "imgs")
    save(root / "loose.png", Image.new("RGB", (8, 8)))
    with pytest.raises(DataError, match=r"both directly \(such as loose.png\) and in subfolders"):
        load_dataset("image-folder", root)
    (root / "loose.png").unlink()
    with pytest.raises(DataError, match=r"\.(png|bmp|JPG|webp|jpeg): a \d+x\d+ image is too small for crop=40; use crop="):
        load_dataset("image-folder", root, crop=40)


def test_dataset_options_are_checked():
    with pytest.raises(DataError, match=r"'image-folder' takes only the options size, crop, channels; got colour"):
        load_dataset("image-folder", ".", colour=3)
    with pytest.raises(DataError, match=r"'mnist' takes no options of its own; got size"):
        load_dataset("mnist", size=32)
    with pytest.raises(DataError, match=r"channels=2: expected 3 \(RGB\) or 1 \(grey\)"):
        load_dataset("image-folder", ".", channels=2)
    with pytest.raises(DataError, match=r"size=0: expected a whole number of pixels"):
        load_dataset("image-folder", ".", size=0)


# --- CelebA ----------------------------------------------------------------------------------------------


def celeba_folder(root: Path, n: int = 6, partition: list[int] | None = None) -> Path:
    """``root/img_align_celeba`` with n 178x218 JPEGs, image i grey level 20 i inside the centred 140 square and
    red outside it; with ``list_eval_partition.txt`` beside it when ``partition`` is given."""
    for i in range(1, n + 1):
        pixels = np.zeros((218, 178, 3), np.uint8)
        pixels[:] = (255, 0, 0)
        pixels[39:179, 19:159] = 20 * i
        save(root / "img_align_celeba" / f"{i:06d}.jpg", Image.fromarray(pixels), quality=95, subsampling=0)
    if partition is not None:
        lines = "".join(f"{i:06d}.jpg {p}\n" for i, p in enumerate(partition, start=1))
        (root / "list_eval_partition.txt").write_text(lines)
    return root


def grey_levels(split) -> list[int]:
    """Each image's centre grey level / 20: the number of its file."""
    return (split.x[:, :, 8:56, 8:56].mean((1, 2, 3)) * 255 / 20).round().int().tolist()


def test_celeba_official_partition(tmp_path):
    root = celeba_folder(tmp_path / "celeba", partition=[0, 2, 0, 1, 2, 0])
    d = load_dataset("celeba", root)
    assert (d.name, d.shape, d.num_classes, d.binary) == ("celeba", (3, 64, 64), 0, False)
    assert [grey_levels(s) for s in (d.train, d.val, d.test)] == [[1, 3, 6], [4], [2, 5]]
    assert all(s.y is None for s in (d.train, d.val, d.test))
    for x in d.train.x:  # crop 140 from the centre: no red border left, bar JPEG's ringing at the very edge
        assert (x[0] - x[1]).abs().mean() < 0.01 and (x[0, [0, -1]][:, [0, -1]] - x[1, 0, 0]).abs().max() < 0.1
    assert (d.val.x[0] - 80 / 255).abs().mean() < 0.01
    # The image folder itself as data_dir: the partition beside it still counts; size overridable.
    d = load_dataset("celeba", root / "img_align_celeba", size=32)
    assert d.shape == (3, 32, 32) and [len(s) for s in (d.train, d.val, d.test)] == [3, 1, 2]


def test_celeba_without_partition_through_vaelab_data(tmp_path, monkeypatch):
    celeba_folder(tmp_path / "root" / "celeba", n=10)
    monkeypatch.setenv("VAELAB_DATA", str(tmp_path / "root"))
    d = load_dataset("celeba", size=16)
    assert [len(s) for s in (d.train, d.val, d.test)] == [8, 1, 1] and d.shape == (3, 16, 16)
    assert sorted(grey_levels(d.train) + grey_levels(d.val) + grey_levels(d.test)) == list(range(1, 11))


def test_celeba_partition_mismatch(tmp_path):
    root = celeba_folder(tmp_path / "celeba", partition=[0, 0, 0, 1, 2, 2])
    (root / "img_align_celeba" / "000003.jpg").unlink()
    with pytest.raises(DataError, match=r"lists 1 images that .* lacks, such as 000003.jpg"):
        load_dataset("celeba", root)
    save(root / "img_align_celeba" / "000009.jpg", Image.new("RGB", (178, 218)))
    with pytest.raises(DataError, match=r"does not list 1 of the 6 images .*such as 000009.jpg"):
        load_dataset("celeba", root)
    (root / "list_eval_partition.txt").write_text("000001.jpg train\n")
    with pytest.raises(DataError, match=r"line 1 is '000001.jpg train'"):
        load_dataset("celeba", root)


def test_celeba_missing_says_where_to_get_it(tmp_path, monkeypatch):
    monkeypatch.setenv("VAELAB_DATA", str(tmp_path / "root"))
    with pytest.raises(DataError, match="no folder holds CelebA's aligned JPEGs") as err:
        load_dataset("celeba")
    message = str(err.value)
    for place in (tmp_path / "root" / "celeba", tmp_path / "xdg-cache" / "vaelab" / "celeba"):
        assert str(place / "img_align_celeba") in message
    with pytest.raises(DataError) as err:  # a given data_dir is the only place searched
        load_dataset("celeba", tmp_path / "given")
    assert str(tmp_path / "given" / "img_align_celeba") in str(err.value) and str(tmp_path / "root") not in str(err.value)
    assert "https://mmlab.ie.cuhk.edu.hk/projects/CelebA.html" in message and "list_eval_partition.txt" in message
