"""Frey Faces and Omniglot's small background sets (real files, and small ones written here), and CelebA's attributes."""
from __future__ import annotations

import dataclasses
import hashlib
import io
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import SHARED_DATA as SHARED  # the shared real datasets beside this checkout
from PIL import Image

from vaelab.data import DataError, load_dataset
from vaelab.data import datasets as data_module
from vaelab.data.files import FileSpec

FREY = SHARED / "frey_faces" / "frey_faces_uint8.npy"
OMNIGLOT = SHARED / "omniglot"


@pytest.fixture(autouse=True)
def isolated(monkeypatch, tmp_path):
    """No test sees the user's cache or $VAELAB_DATA unless it sets them."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))
    monkeypatch.delenv("VAELAB_DATA", raising=False)


def register(monkeypatch, name: str, contents: dict[str, bytes]) -> None:
    """Make ``contents`` (file name -> bytes) the files, with their checksums, of dataset ``name``."""
    specs = tuple(FileSpec(f, hashlib.sha256(data).hexdigest()) for f, data in contents.items())
    monkeypatch.setitem(data_module.SOURCES, name, dataclasses.replace(data_module.SOURCES[name], files=specs))


# --- Frey Faces ------------------------------------------------------------------------------------------


@pytest.mark.skipif(not FREY.is_file(), reason="the Frey Faces file is not present")
def test_frey_faces_real_file_and_the_vampprior_split(monkeypatch):
    monkeypatch.setenv("VAELAB_DATA", str(SHARED))
    d = load_dataset("frey-faces", download=False)
    assert (d.shape, d.num_classes, d.binary) == ((1, 28, 20), 0, False)
    assert [len(s) for s in (d.train, d.val, d.test)] == [1565, 200, 200]  # Tomczak & Welling 2018's sizes
    faces = np.load(FREY, allow_pickle=False)
    everything = (torch.cat([d.train.x, d.val.x, d.test.x]) * 255).round().to(torch.uint8).numpy()
    assert sorted(row.tobytes() for row in everything) == sorted(row.tobytes() for row in faces)  # every face once
    k = d.train.x * 255
    assert (k - k.round()).abs().max() < 1e-4 and k.min() >= 8 and k.max() <= 238  # 8-bit values k / 255
    again = load_dataset("frey-faces", download=False, val_size=100, seed=3)
    assert torch.equal(again.test.x, d.test.x) and len(again.val) == 100  # the test split is fixed


def mat_bytes(faces: np.ndarray) -> bytes:
    """Roweis' frey_rawface.mat layout: ff, 560 x 1965 uint8, one image a column."""
    from scipy.io import savemat

    buffer = io.BytesIO()
    savemat(buffer, {"ff": faces.reshape(len(faces), -1).T})
    return buffer.getvalue()


@pytest.mark.skipif(not FREY.is_file(), reason="the Frey Faces file is not present")
def test_frey_faces_download_converts_roweis_mat_file_and_checks_its_pixels(server, tmp_path, monkeypatch):
    served, url = server
    faces = np.load(FREY, allow_pickle=False)
    (served / "frey_rawface.mat").write_bytes(mat_bytes(faces))
    monkeypatch.setenv("VAELAB_MIRROR_FREY_FACES", url)
    d = load_dataset("frey-faces", tmp_path / "mine")
    assert [p.name for p in (tmp_path / "mine").iterdir()] == ["frey_faces_uint8.npy"]  # no .mat, no temporaries
    assert (tmp_path / "mine" / "frey_faces_uint8.npy").read_bytes() == FREY.read_bytes()
    assert len(d.train) == 1565
    damaged = faces.copy()
    damaged[0, 0, 0] += 1
    (served / "frey_rawface.mat").write_bytes(mat_bytes(damaged))
    with pytest.raises(DataError, match=r"frey_rawface.mat: converted, the downloaded content has sha256 \w+, "
                                        r"expected 2177ea07\w+ for frey_faces_uint8.npy.*nothing was saved"):
        load_dataset("frey-faces", tmp_path / "other")
    assert not (tmp_path / "other").exists()  # a failed download leaves no folder behind
    (served / "frey_rawface.mat").write_bytes(b"not a mat file")
    with pytest.raises(DataError, match="frey_rawface.mat: not the MATLAB file of Frey Faces"):
        load_dataset("frey-faces", tmp_path / "third")


def test_frey_faces_bad_and_missing_files(tmp_path):
    folder = tmp_path / "frey"
    folder.mkdir()
    np.save(folder / "frey_faces_uint8.npy", np.zeros((10, 28, 20), np.uint8), allow_pickle=False)
    with pytest.raises(DataError, match=r"holds uint8 \[10, 28, 20\]; Frey Faces are uint8 \[1965, 28, 20\]"):
        load_dataset("frey-faces", folder, download=False)
    np.save(folder / "frey_faces_uint8.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(DataError, match="not a readable .npy file without pickles"):
        load_dataset("frey-faces", folder, download=False)
    with pytest.raises(DataError, match="https://cs.nyu.edu/~roweis/data/frey_rawface.mat") as err:
        load_dataset("frey-faces", tmp_path / "empty", download=False)
    assert "frey_faces_uint8.npy" in str(err.value) and str(tmp_path / "empty") in str(err.value)
    assert "\n" not in str(err.value)  # one line


# --- Omniglot --------------------------------------------------------------------------------------------


def character_png(stroke_rows: slice) -> bytes:
    """A 105x105 1-bit PNG: white paper, black ink on the rows ``stroke_rows``."""
    pixels = np.full((105, 105), 255, np.uint8)
    pixels[stroke_rows] = 0
    buffer = io.BytesIO()
    Image.fromarray(pixels).convert("1").save(buffer, format="PNG")
    return buffer.getvalue()


def omniglot_zip(top: str, files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as z:
        for name, data in files.items():
            z.writestr(f"{top}/{name}", data)
    return buffer.getvalue()


def small_omniglot() -> dict[str, bytes]:
    """Two zips in the official layout; Greek/character01 in both, as in the real sets."""
    ink = character_png(slice(0, 105))  # all ink
    half = character_png(slice(0, 17))  # ink on the top 17 rows: 4 of 28 rows whole (4 x 3.75 = 15), and 2/3.75 of one
    one = {"Greek/character01/0394_01.png": half, "Greek/character01/0394_02.png": ink,
           "Korean/character03/0700_01.png": ink}
    two = {"Greek/character01/0394_01.png": half, "Tagalog/character02/0900_05.png": half}
    return {"images_background_small1.zip": omniglot_zip("images_background_small1", one),
            "images_background_small2.zip": omniglot_zip("images_background_small2", two)}


def test_omniglot_small_files_read_from_zips_inverted_and_area_averaged(tmp_path, monkeypatch):
    contents = small_omniglot()
    register(monkeypatch, "omniglot", contents)
    folder = tmp_path / "omni"
    folder.mkdir()
    for name, data in contents.items():
        (folder / name).write_bytes(data)
    d = load_dataset("omniglot", folder, val_size=1, download=False)
    assert (d.shape, d.num_classes, d.binary) == ((1, 28, 28), 3, False)  # Greek, Korean, Tagalog
    x = torch.cat([d.train.x, d.val.x, d.test.x])
    y = torch.cat([d.train.y, d.val.y, d.test.y])
    assert len(x) == 4  # the Greek file in both zips counts once
    assert sorted(y.tolist()) == [0, 0, 1, 2]
    full = x.flatten(1).mean(1) == 1  # all ink: strokes are 1 after inversion
    assert sorted(full.tolist()) == [False, False, True, True]
    top = x[~full][0, 0]
    assert (top[:4] == 1).all() and (top[5:] == 0).all()
    assert ((top[4] > 0.3) & (top[4] < 0.7)).all()  # row 4, about half ink (2 of its 3.75 rows, as Pillow weighs them)
    assert list(folder.iterdir()) and not [p for p in folder.iterdir() if p.is_dir()]  # nothing unpacked


def test_omniglot_download_and_checksums(server, tmp_path, monkeypatch):
    served, url = server
    contents = small_omniglot()
    register(monkeypatch, "omniglot", contents)
    for name, data in contents.items():
        (served / name).write_bytes(data)
    monkeypatch.setenv("VAELAB_MIRROR_OMNIGLOT", url)
    assert len(load_dataset("omniglot", val_size=1).train) == 2
    assert sorted(p.name for p in (tmp_path / "xdg-cache" / "vaelab" / "omniglot").iterdir()) == sorted(contents)
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "images_background_small1.zip").write_bytes(contents["images_background_small1.zip"])
    (bad / "images_background_small2.zip").write_bytes(omniglot_zip("images_background_small2", {}) )
    with pytest.raises(DataError, match="holds no <alphabet>/<character>/<image>.png files"):
        load_dataset("omniglot", bad, download=False)
    (bad / "images_background_small2.zip").write_bytes(b"PK not really")
    with pytest.raises(DataError, match="images_background_small2.zip: not a zip file"):
        load_dataset("omniglot", bad, download=False)
    huge = omniglot_zip("images_background_small2", {"Greek/character01/0394_01.png": bytes(2 << 20)})
    (bad / "images_background_small2.zip").write_bytes(huge)
    with pytest.raises(DataError, match=r"0394_01.png declares 2,097,152 bytes, not a 105x105 character"):
        load_dataset("omniglot", bad, download=False)


def test_omniglot_refuses_a_png_whose_header_declares_too_many_pixels(tmp_path, monkeypatch):
    big = io.BytesIO()
    Image.new("1", (2000, 2000)).save(big, format="PNG")  # a few kB on disk, 4 Mpixels declared
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 3_000_000)  # past twice it, Pillow refuses by itself
    folder = tmp_path / "omni"
    folder.mkdir()
    for name, top in (("images_background_small1.zip", "images_background_small1"),
                      ("images_background_small2.zip", "images_background_small2")):
        (folder / name).write_bytes(omniglot_zip(top, {"Greek/character01/0394_01.png": big.getvalue()}))
    register(monkeypatch, "omniglot", {p.name: p.read_bytes() for p in folder.iterdir()})
    with pytest.raises(DataError, match=r"0394_01.png: its header declares 2000x2000 pixels, more than the "
                                        r"3,000,000"):
        load_dataset("omniglot", folder, download=False)


def test_omniglot_official_urls_when_missing(tmp_path):
    with pytest.raises(DataError) as err:
        load_dataset("omniglot", tmp_path, download=False)
    for name in ("images_background_small1.zip", "images_background_small2.zip"):
        assert f"https://raw.githubusercontent.com/brendenlake/omniglot/master/python/{name}" in str(err.value)


@pytest.mark.skipif(not OMNIGLOT.is_dir(), reason="the Omniglot zips are not present")
def test_omniglot_real_zips(monkeypatch):
    monkeypatch.setenv("VAELAB_DATA", str(SHARED))
    d = load_dataset("omniglot", download=False)
    assert [len(s) for s in (d.train, d.val, d.test)] == [3872, 484, 484]  # 2,720 + 3,120 - 1,000 shared
    assert d.num_classes == 8 and d.shape == (1, 28, 28)
    counts = torch.bincount(torch.cat([d.train.y, d.val.y, d.test.y]), minlength=8).tolist()
    assert counts == [480, 440, 480, 940, 800, 520, 840, 340]  # Balinese ... Tagalog, sorted by name
    assert 0.05 < d.train.x.mean().item() < 0.12  # mostly paper (0), strokes near 1


# --- CelebA attributes -----------------------------------------------------------------------------------

NAMES = ["5_o_Clock_Shadow", "Male", "Smiling", "Young"]


def celeba_with_attributes(root: Path, rows: dict[str, list[int]]) -> Path:
    """``root/img_align_celeba`` with one 178x218 JPEG per row, and ``list_attr_celeba.txt`` in the official layout
    (count, names, then '<image> v v v v' with two spaces before a 1, as the official file aligns them)."""
    (root / "img_align_celeba").mkdir(parents=True)
    for i, name in enumerate(rows):
        Image.new("RGB", (178, 218), (10 * i, 0, 0)).save(root / "img_align_celeba" / name, quality=95)
    lines = [str(len(rows)), " ".join(NAMES) + " "]
    lines += [name + "".join(f" {v:2d}" for v in values) for name, values in rows.items()]
    (root / "list_attr_celeba.txt").write_text("\n".join(lines) + "\n")
    return root


ROWS = {"000001.jpg": [-1, 1, 1, -1], "000002.jpg": [1, -1, 1, 1], "000003.jpg": [-1, -1, -1, 1],
        "000004.jpg": [-1, 1, -1, 1]}


def test_celeba_attributes_travel_with_every_split_and_label_by_pattern(tmp_path):
    root = celeba_with_attributes(tmp_path / "celeba", ROWS)
    (root / "list_eval_partition.txt").write_text("000001.jpg 0\n000002.jpg 0\n000003.jpg 1\n000004.jpg 2\n")
    d = load_dataset("celeba", root, size=8)
    assert d.attribute_names == tuple(NAMES) and d.num_classes == 0 and d.train.y is None
    assert d.train.attributes.tolist() == [[0, 1, 1, 0], [1, 0, 1, 1]] and d.test.attributes.tolist() == [[0, 1, 0, 1]]
    assert d.train.take(torch.tensor([1])).attributes.tolist() == [[1, 0, 1, 1]]
    labelled = load_dataset("celeba", root, size=8, attributes=["Male", "Smiling"])
    assert labelled.num_classes == 4  # 0 neither, 1 Male, 2 Smiling, 3 both
    assert labelled.train.y.tolist() == [3, 2] and labelled.val.y.tolist() == [0] and labelled.test.y.tolist() == [1]


def test_celeba_attribute_problems(tmp_path):
    root = celeba_with_attributes(tmp_path / "celeba", ROWS)
    with pytest.raises(DataError, match=r"unknown attribute\(s\) Bald; list_attr_celeba.txt has 5_o_Clock_Shadow"):
        load_dataset("celeba", root, size=8, attributes=["Bald"])
    with pytest.raises(DataError, match="expected a list of 1 to 10 distinct attribute names"):
        load_dataset("celeba", root, size=8, attributes="Male")
    text = (root / "list_attr_celeba.txt").read_text()
    (root / "list_attr_celeba.txt").write_text(text.replace("000004.jpg -1  1 -1  1", "000004.jpg -1  1  0  1"))
    with pytest.raises(DataError, match=r"line 6 is '000004.jpg -1  1  0  1'...; expected '<image>.jpg' and 4 values"):
        load_dataset("celeba", root, size=8)
    (root / "list_attr_celeba.txt").write_text(text.replace("4\n", "5\n", 1))
    with pytest.raises(DataError, match="line 1 says 5 images, but 4 lines follow the names"):
        load_dataset("celeba", root, size=8)
    (root / "list_attr_celeba.txt").write_text("\n".join(text.splitlines()[:-1]).replace("4\n", "3\n", 1))
    with pytest.raises(DataError, match=r"does not list 1 of the 4 images .*such as 000004.jpg.*without attributes"):
        load_dataset("celeba", root, size=8)
    (root / "list_attr_celeba.txt").unlink()
    assert load_dataset("celeba", root, size=8).attribute_names == ()
    with pytest.raises(DataError, match=r"attributes \['Male'\] need list_attr_celeba.txt beside"):
        load_dataset("celeba", root, size=8, attributes=["Male"])


def test_a_cvae_trains_on_celeba_attribute_patterns(tmp_path, capsys):
    from vaelab.cli import main

    rows = {f"{i:06d}.jpg": [1, 1 if i % 2 else -1, 1 if i % 3 else -1, 1] for i in range(1, 21)}
    root = celeba_with_attributes(tmp_path / "celeba", rows)
    run = tmp_path / "run"
    assert main(["train", "--model", "cvae", "--dataset", "celeba", "--data-dir", str(root), "--steps", "4",
                 "--set", "data.image_size=8", "--set", "data.attributes=[Male, Smiling]", "--set", "model.hidden=[16]",
                 "--set", "model.latent_dim=2", "--set", "train.batch_size=4", "--set", "train.progress=false",
                 "--out", str(run)]) == 0
    assert main(["sample", str(run), "--n", "2"]) == 0  # one row per attribute pattern
    assert '"num_classes": 4' in (run / "run.json").read_text()
