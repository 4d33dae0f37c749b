"""Every kind of bad input ends in one line on stderr and exit code 2, with no traceback, and leaves the run
directory as it was (hashed before and after). ``--debug`` shows the traceback."""
import gzip
import hashlib
import os
import shutil
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from vaelab import checkpoint
from vaelab.cli import main
from vaelab.config import RunConfig
from vaelab.data import DataError, Dataset, Split
from vaelab.rundir import RunDir

TINY = ["--set", "model.hidden=[16]", "--set", "model.latent_dim=2", "--set", "train.batch_size=64",
        "--set", "train.progress=false"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A VAE trained two epochs on the 8x8 digits (copied by each case before it is damaged)."""
    run = tmp_path_factory.mktemp("trained") / "run"
    assert main(["train", "--dataset", "digits", *TINY, "--epochs", "2", "--out", str(run)]) == 0
    return run


def tree(path: Path) -> dict | None:
    """Every file under ``path`` (hidden ones too) with the sha256 of its content; None when there is no ``path``."""
    if not path.exists():
        return None
    return {str(p.relative_to(path)): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "folder"
            for p in sorted(path.rglob("*"))}


# ------------------------------------------------------------------------------------ damaging a run
def rewrite_best(run: Path, edit) -> None:
    """Save best.safetensors again, with a valid checksum, after ``edit(tensors)``."""
    tensors, meta = checkpoint.load(run / "checkpoints" / "best.safetensors")
    edit(tensors)
    checkpoint.save(run / "checkpoints" / "best.safetensors", tensors, meta)


def wrong_shape(run, tmp):
    rewrite_best(run, lambda t: t.update({"model.q.head.weight": torch.zeros(3, 3)}))
    return ["eval", str(run)]


def missing_tensor(run, tmp):
    rewrite_best(run, lambda t: t.pop("model.q.head.weight"))
    return ["sample", str(run), "-o", str(tmp / "s.png")]


def unreadable_metadata(run, tmp):
    tensors, _ = checkpoint.load(run / "checkpoints" / "best.safetensors")
    save_file(tensors, run / "checkpoints" / "best.safetensors",
              metadata={"format": checkpoint.FORMAT, "meta": "{not json"})
    return ["eval", str(run)]


def flip_bit(path: Path, offset: int = -50) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x10
    path.write_bytes(bytes(data))


def bit_flip(run, tmp):
    flip_bit(run / "checkpoints" / "best.safetensors")
    return ["reconstruct", str(run), "-o", str(tmp / "r.png")]


def no_good_checkpoint(run, tmp):
    flip_bit(run / "checkpoints" / "last.safetensors")
    flip_bit(run / "checkpoints" / "prev.safetensors")
    return ["train", "--resume", str(run), "--epochs", "3"]


def config_text(text: bytes):
    def damage(run, tmp):
        (run / "config.yaml").write_bytes(text)
        return ["train", "--resume", str(run), "--epochs", "3"]
    return damage


def fake_mnist(folder: Path, images: bytes | None = None) -> Path:
    """IDX files of 12 train and 4 test images (gzipped), the train images replaced by ``images``."""
    folder.mkdir(parents=True, exist_ok=True)
    def idx(arr, magic):
        return struct.pack(f">I{arr.ndim}I", magic, *arr.shape) + arr.astype(np.uint8).tobytes()
    files = {"train-images-idx3-ubyte": idx(np.zeros((12, 28, 28)), 0x803),
             "train-labels-idx1-ubyte": idx(np.zeros(12), 0x801),
             "t10k-images-idx3-ubyte": idx(np.zeros((4, 28, 28)), 0x803),
             "t10k-labels-idx1-ubyte": idx(np.zeros(4), 0x801)}
    if images is not None:
        files["train-images-idx3-ubyte"] = images
    for name, content in files.items():
        (folder / f"{name}.gz").write_bytes(gzip.compress(content, compresslevel=1))
    return folder


def mnist_train(data_dir: Path):
    def args(run, tmp):
        return ["train", "--dataset", "mnist", "--data-dir", str(data_dir(tmp)), *TINY, "--steps", "1",
                "--out", str(tmp / "new")]
    return args


def png_header(width: int, height: int) -> bytes:
    """A PNG that declares ``width`` x ``height`` pixels in its header (its pixel data are never reached)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


def huge_image(run, tmp):
    from PIL import Image

    folder = tmp / "images"
    folder.mkdir()
    (folder / "0.png").write_bytes(png_header(13000, 13000))
    for i in (1, 2):
        Image.new("L", (8, 8)).save(folder / f"{i}.png")
    return ["train", "--dataset", "image-folder", "--data-dir", str(folder), "--set", "data.image_size=8", *TINY,
            "--steps", "1", "--out", str(tmp / "new")]


def new_run(*args):
    """``vaelab train`` of a new tiny run with extra ``args``."""
    return lambda run, tmp: ["train", "--dataset", "digits", *TINY, "--steps", "1", *args, "--out", str(tmp / "new")]


def on_run(*args):
    """A command on the trained run: ``args`` with RUN replaced by its path."""
    return lambda run, tmp: [str(run) if a == "RUN" else a for a in args]


CASES = [
    # damaged checkpoints
    ("checkpoint-wrong-shape", wrong_shape, "does not fit the model that its run's config builds: size mismatch "
     "for q.head.weight"),
    ("checkpoint-missing-tensor", missing_tensor, 'Missing key(s) in state_dict: "q.head.weight"'),
    ("checkpoint-unreadable-metadata", unreadable_metadata, "has unreadable metadata"),
    ("checkpoint-bit-flip", bit_flip, "is damaged: its content does not match the sha256"),
    ("checkpoints-all-damaged", no_good_checkpoint, "no good checkpoint is left to resume from"),
    # config.yaml
    ("config-not-text", config_text(b"\x89\xff\x00binary"), "is not a text file (byte 0x89 at offset 0"),
    ("config-not-a-mapping", config_text(b"- 1\n- 2\n"), "must hold a mapping of sections"),
    ("config-empty", config_text(b""), "must hold a mapping of sections (data, model, kl, objective, train), not "
     "nothing"),
    ("config-cut-short", config_text(b"data:\n  name: digits\n"), "holds no config version: it is not whole"),
    ("config-future-version", config_text(b"version: 3\n"), "was written by a newer vaelab (config version 3)"),
    ("config-invalid-yaml", config_text(b"model: [1, 2\n"), "is not valid YAML"),
    ("set-yaml-tag", new_run("--set", "model.latent_dim=!!python/object/apply:os.system [true]"),
     "YAML tags (!...) are not accepted"),
    ("set-yaml-tag-in-list", new_run("--set", "model.hidden=[!!python/name:os.system]"), "YAML tags"),
    # values that make no sense
    ("latent-dim-0", new_run("--set", "model.latent_dim=0"), "model.latent_dim must be >= 1; got 0"),
    ("hidden-0", new_run("--set", "model.hidden=[16,0]"), "model.hidden must be a list of layer sizes, each >= 1; "
     "got [16, 0]"),
    ("channels-negative", new_run("--set", "model.channels=[8,-1]"), "model.channels must be a list of channel "
     "counts, each >= 1"),
    ("lr-nan", new_run("--set", "train.lr=.nan"), "train.lr must be a number, got NaN"),
    ("lr-0", new_run("--set", "train.lr=0"), "train.lr must be a finite number > 0; got 0.0"),
    ("lr-negative", new_run("--set", "train.lr=-1e-3"), "train.lr must be a finite number > 0; got -0.001"),
    ("sigma-0", new_run("--set", "model.likelihood=gaussian", "--set", "model.sigma=0"), "model.sigma must be a "
     "finite number > 0"),
    ("beta-negative", new_run("--set", "kl.beta=-1"), "kl.beta must be a finite number >= 0; got -1.0"),
    ("grad-clip-negative", new_run("--set", "train.grad_clip=-1"), "train.grad_clip must be a finite number >= 0"),
    ("patience-negative", new_run("--set", "train.patience=-1"), "train.patience must be >= 0 epochs"),
    ("device-cuda-7", new_run("--device", "cuda:7"), "train.device 'cuda:7': this machine has"),
    ("device-not-a-device", new_run("--device", "gpu0"), "train.device 'gpu0' is not a device"),
    ("eval-device-cuda-7", on_run("eval", "RUN", "--device", "cuda:7"), "device 'cuda:7': this machine has"),
    ("k-0", new_run("--k", "0"), "argument --k: must be >= 1, got 0"),
    ("k-0-in-set", new_run("--set", "objective.k=0"), "objective.k must be >= 1"),
    ("sample-n-negative", on_run("sample", "RUN", "--n", "-3"), "argument --n: must be >= 1, got -3"),
    ("nll-samples-negative", on_run("eval", "RUN", "--nll-samples", "-5"), "argument --nll-samples: must be >= 0"),
    ("ais-steps-not-a-number", on_run("eval", "RUN", "--ais-steps", "many"), "expected a whole number >= 0, got "
     "'many'"),
    ("index-out-of-range", on_run("traverse", "RUN", "--index", "297"), "--index 297 is out of range: the test "
     "split has 297 images, so 0 to 296"),
    ("index-negative", on_run("traverse", "RUN", "--index", "-1"), "argument --index: must be >= 0, got -1"),
    ("temperature-nan", on_run("sample", "RUN", "--temperature", "nan"), "argument --temperature: must be a finite "
     "number >= 0"),
    ("epochs-0-on-resume", on_run("train", "--resume", "RUN", "--epochs", "0"), "argument --epochs: must be >= 1"),
    # data directories
    ("data-dir-empty-string", new_run("--data-dir", ""), "data.data_dir must be a folder"),
    ("data-dir-for-digits", new_run("--data-dir", "/tmp"), "digits reads no files, so data_dir must be unset"),
    ("data-dir-empty-folder", mnist_train(lambda tmp: (tmp / "empty").mkdir() or tmp / "empty"),
     "data_dir: holds none of them"),
    ("data-dir-wrong-folder", mnist_train(lambda tmp: tmp / "no-such-folder"), "data_dir: no such folder"),
    # hostile files
    ("idx-sizes-overflow", mnist_train(lambda tmp: fake_mnist(tmp / "m", struct.pack(">4I", 0x803, *[2**32 - 1] * 3))),
     "truncated IDX file: header says 4294967295x4294967295x4294967295 values"),
    ("idx-gzip-bomb", mnist_train(lambda tmp: fake_mnist(tmp / "m", struct.pack(">4I", 0x803, 12, 28, 28)
                                                         + bytes(64 << 20))),
     "IDX file with trailing bytes: header says 12x28x28 values, so 9,424 bytes, but the file holds more"),
    ("idx-checksum", mnist_train(lambda tmp: fake_mnist(tmp / "m")), "load_dataset(..., verify=False)"),
    ("image-header-13000x13000", huge_image, "declares 13000x13000 pixels, more than the"),
    # other
    ("not-a-run-directory", lambda run, tmp: ["eval", str(tmp)], "is not a vaelab run directory (no config.yaml)"),
    ("resume-with-a-new-seed", on_run("train", "--resume", "RUN", "--seed", "3"), "so --seed cannot change"),
    ("unknown-flag", on_run("eval", "RUN", "--frobnicate"), "unrecognized arguments: --frobnicate"),
    ("train-prior-on-a-vae", on_run("train-prior", "RUN"), "`vaelab train-prior` needs a model that can train a prior"),
    ("train-prior-resume-without-prior", on_run("train-prior", "RUN", "--resume"), "needs a model that can train"),
    # sample quality
    ("sample-quality-n-1", on_run("eval", "RUN", "--sample-quality", "--n", "1"), "argument --n: must be >= 2, got 1"),
    ("sample-quality-no-network", on_run("eval", "RUN", "--sample-quality", "--features", "nonesuch-cnn"),
     "no feature network nonesuch-cnn in"),
    ("inception-weights-missing", on_run("eval", "RUN", "--sample-quality", "--features", "inception:/no/such.pth"),
     "inception:/no/such.pth: no such file"),
    ("fid-unknown-split", lambda run, tmp: ["fid", "digits:tset", "digits:test"], "digits:tset: the split must be "
     "one of"),
    ("features-unknown-dataset", lambda run, tmp: ["features", "train", "--dataset", "frey-faces"],
     "unknown feature network recipe 'frey-faces'"),
]


@pytest.mark.parametrize("prepare, message", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_is_one_line_exit_2_and_changes_nothing(trained, tmp_path, capsys, monkeypatch, recwarn, prepare,
                                                          message):
    monkeypatch.setenv("VAELAB_MIRROR_MNIST", "http://127.0.0.1:9/")  # a download fails at once (port 9: discard)
    run = Path(shutil.copytree(trained, tmp_path / "run"))
    argv = prepare(run, tmp_path)
    before, new = tree(run), tree(tmp_path / "new")
    capsys.readouterr()
    recwarn.clear()
    code = _main(argv)
    err = capsys.readouterr().err
    lines = err.splitlines()
    assert code == 2, err
    assert len(lines) == 1 and "Traceback" not in err, err
    assert message in lines[0], lines[0]
    assert not [str(w.message) for w in recwarn], "a warning would be a second line on stderr"
    assert tree(run) == before and tree(tmp_path / "new") == new


@pytest.mark.parametrize("case", ["image-header-13000x13000", "idx-gzip-bomb", "device-cuda-7", "config-not-text"])
def test_through_the_real_command(trained, tmp_path, case):
    """A few of the table's cases in a process of their own: what a user's terminal shows."""
    prepare, message = next(c[1:] for c in CASES if c[0] == case)
    run = Path(shutil.copytree(trained, tmp_path / "run"))
    argv = prepare(run, tmp_path)
    before = tree(run)
    done = subprocess.run([sys.executable, "-m", "vaelab.cli", *argv], capture_output=True, text=True,
                          env={**os.environ, "VAELAB_MIRROR_MNIST": "http://127.0.0.1:9/"})
    assert done.returncode == 2 and done.stderr.count("\n") == 1 and message in done.stderr, done.stderr
    assert tree(run) == before


def _main(argv):
    try:
        return main(argv)
    except SystemExit as e:  # argparse's errors
        return e.code


def test_debug_shows_the_traceback(trained, tmp_path, capsys, monkeypatch):
    run = Path(shutil.copytree(trained, tmp_path / "run"))
    config_text(b"version: 3\n")(run, tmp_path)
    assert main(["eval", str(run), "--debug"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" in err and err.splitlines()[-1].startswith("vaelab: error: ")
    monkeypatch.setenv("VAELAB_DEBUG", "1")
    assert main(["eval", str(run)]) == 2
    assert "Traceback" in capsys.readouterr().err


def test_nan_data_is_refused_before_training(tiny_cfg):
    from vaelab.train import Trainer

    x = torch.rand(100, 1, 8, 8)
    x[3, 0, 2, 2] = float("nan")
    x[7, 0, 0, 0] = float("inf")
    split = Split(torch.rand(20, 1, 8, 8), None)
    with pytest.raises(DataError, match=r"its train images hold 2 NaN or infinite values"):
        Trainer(tiny_cfg, data=Dataset("mine", Split(x, None), split, split, num_classes=0, binary=False))


def test_a_gzip_bomb_is_not_inflated_past_its_declared_size(tmp_path):
    from vaelab.data import files, idx

    path = tmp_path / "bomb.gz"
    path.write_bytes(gzip.compress(struct.pack(">4I", 0x803, 12, 28, 28) + bytes(256 << 20), compresslevel=1))
    data, _ = files.read(path, idx.images_size)
    assert len(data) <= files.CHUNK  # 9,425 bytes asked for; one chunk at most was inflated (of 256 MiB)
    path.write_bytes(gzip.compress(b"\x00\x00\x08\x01" + bytes(256 << 20), compresslevel=1))  # a wrong magic number
    assert len(files.read(path, idx.images_size)[0]) == files.CHUNK


def test_an_upload_of_a_huge_image_is_refused_before_it_is_decoded():
    from vaelab.app.upload import image_tensor

    with pytest.raises(DataError, match="is 13000x13000 pixels; this model takes 8x8"):
        image_tensor(png_header(13000, 13000), "huge.png", (1, 8, 8))


def test_ctrl_c_during_start_up_is_one_line_and_exit_130(tmp_path):
    """SIGINT while the command imports its modules, and while it loads data and builds the model."""
    for delay in (0.3, 1.5, 3.0):
        out = tmp_path / f"run-{delay}"
        proc = subprocess.Popen([sys.executable, "-m", "vaelab.cli", "train", "--dataset", "digits", *TINY,
                                 "--epochs", "1000", "--out", str(out)], stderr=subprocess.PIPE, text=True)
        time.sleep(delay)
        proc.send_signal(2)
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 130, err
        assert len(err.splitlines()) == 1 and "Traceback" not in err, err
        assert err.startswith(("vaelab: interrupted", "vaelab: stopped at step")), err
        if err.startswith("vaelab: interrupted"):  # before training began: nothing was left behind
            assert not out.exists() or RunDir(out).config.exists()


def test_nothing_in_the_table_is_accepted_by_the_config_alone():
    """The value rules hold for configs from files and Python too, not only for flags."""
    for key, value in (("model.latent_dim", 0), ("train.lr", -1.0), ("kl.beta", -0.5), ("objective.k", 0),
                       ("model.sigma", 0.0), ("train.patience", -2)):
        section, name = key.split(".")
        with pytest.raises(Exception, match=key.replace(".", r"\.")):
            RunConfig().override({section: {name: value}})
