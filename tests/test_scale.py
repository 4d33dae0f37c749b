"""Datasets larger than memory (uint8 storage, the memory-mapped image cache) and the GPU path (device auto, mixed
precision with float32 sums, the loss scaler); tests marked ``gpu`` need CUDA and are skipped without it."""
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from vaelab.config import RunConfig
from vaelab.data import cache, load_dataset
from vaelab.data.base import Split, as_float
from vaelab.data.images import ImageOptions, read_images
from vaelab.device import resolve
from vaelab.models import build_model
from vaelab.models.posterior import DiagonalGaussian
from vaelab.train.trainer import Trainer

gpu = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


@pytest.fixture(autouse=True)
def own_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))


def folder(root: Path, n: int = 30, size: int = 20) -> Path:
    """``n`` random RGB JPEGs, ``size`` pixels square, directly in ``root``."""
    root.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(n):
        Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(root / f"{i:03d}.jpg")
    return root


def cached_files(tmp_path: Path) -> list[Path]:
    return sorted((tmp_path / "xdg-cache" / "vaelab" / "images").glob("*.npy"))


def test_eight_bit_splits_are_uint8_and_convert_exactly_as_float32_did():
    data = load_dataset("fashion-mnist")
    split = data.test
    assert split.eight_bit and split.pixels.dtype == torch.uint8
    rows = torch.tensor([5, 0, 17])
    # float32 k / 255 as the loaders divided before: the same bits, so runs resume and compare bit-exactly
    assert torch.equal(split.batch(rows), split.pixels[rows].float().div(255))
    assert torch.equal(split.batch(rows), split.x[rows]) and split.x.dtype == torch.float32
    assert torch.equal(split.batch(slice(2, 4)), split.x[2:4])
    codes = Split(torch.arange(12).reshape(3, 2, 2), None)  # a VQ prior's int64 code grids stay integers
    assert torch.equal(codes.batch(torch.tensor([2])), torch.arange(8, 12).reshape(1, 2, 2))


def test_image_folder_is_decoded_once_into_a_mapped_cache(tmp_path):
    root = folder(tmp_path / "imgs")
    d = load_dataset("image-folder", root, size=16)
    assert d.train.pixels.dtype == torch.uint8 and cache.is_mapped(d.train.pixels)
    paths = sorted(root.iterdir())
    whole = torch.cat([d.train.x, d.val.x, d.test.x])
    assert torch.equal(whole.sort(0).values, torch.from_numpy(read_images(paths, ImageOptions(size=16))).sort(0).values)
    [first] = cached_files(tmp_path)
    stamp = first.stat().st_mtime_ns
    again = load_dataset("image-folder", root, size=16)  # an unchanged listing maps the same cache, undecoded
    assert cached_files(tmp_path) == [first] and first.stat().st_mtime_ns == stamp
    assert torch.equal(again.train.x, d.train.x)
    os.utime(paths[3], ns=(1, 1))  # a changed mtime: the listing's checksum changes, the images decode afresh
    load_dataset("image-folder", root, size=16)
    assert len(cached_files(tmp_path)) == 2
    load_dataset("image-folder", root, size=8)  # another size, another cache
    assert len(cached_files(tmp_path)) == 3


def resident_kb(path: Path) -> int:
    """This process's resident kilobytes of the mapping of ``path`` (/proc/self/smaps)."""
    total, inside = 0, False
    for line in Path("/proc/self/smaps").read_text().splitlines():
        if line[:1].isalnum() and "-" in line.split()[0] and ":" not in line.split()[0]:
            inside = line.endswith(str(path))
        elif inside and line.startswith("Rss:"):
            total += int(line.split()[1])
    return total


@pytest.mark.skipif(not Path("/proc/self/smaps").exists(), reason="reads /proc/self/smaps (Linux)")
def test_pages_read_through_the_cache_are_released(tmp_path, monkeypatch):
    d = load_dataset("image-folder", folder(tmp_path / "imgs", n=200, size=64), size=64)
    [path] = cached_files(tmp_path)
    monkeypatch.setattr(cache, "RELEASE_BYTES", 1 << 40)
    d.train.batch(torch.arange(len(d.train)))
    assert resident_kb(path) > 100  # 160 images of 12 KiB were read
    monkeypatch.setattr(cache, "RELEASE_BYTES", 1)
    d.train.batch(torch.tensor([0]))  # crosses the threshold: every mapping's pages released
    assert resident_kb(path) == 0


def test_device_auto_is_cuda_when_present_else_cpu():
    assert RunConfig().train.device == "auto"
    assert resolve("auto", "train.device").type == ("cuda" if torch.cuda.is_available() else "cpu")


def vae_cfg(*more: str) -> RunConfig:
    return RunConfig().set(["data.name=fashion-mnist", "data.limit=512", "model.hidden=[64]", "model.latent_dim=4",
                            "train.batch_size=64", "train.progress=false", "train.device=cpu", *more])


def test_bf16_keeps_the_likelihood_and_kl_sums_in_float32():
    torch.manual_seed(0)
    cfg = vae_cfg()
    data = load_dataset("fashion-mnist").test
    model = build_model(cfg, load_dataset("fashion-mnist").facts)
    x = (data.batch(torch.arange(32)) > 0.5).float()
    seen = {}
    model.decoder.register_forward_hook(lambda m, i, out: seen.update(out=out))
    posterior = model.posterior
    model.posterior = lambda *a: seen.setdefault("q", posterior(*a))
    with torch.autocast("cpu", torch.bfloat16):
        t = model(x)
    assert seen["out"].dtype == torch.bfloat16  # the networks did run in bf16
    assert t.log_px_z.dtype == t.kl.dtype == seen["q"].mu.dtype == torch.float32
    # references in float64 from the same bf16 decoder output and posterior: a sum over 784 pixels (or the 4 latent
    # dimensions) reduced in bf16 (8 bits of mantissa) is off by ~1e-3 relative; float32 order moves it by ~1e-6
    log_px = model.likelihood.log_prob(x.double(), seen["out"].double())
    kl = DiagonalGaussian(seen["q"].mu.double(), seen["q"].logvar.double()).kl_standard_normal().sum(-1)
    torch.testing.assert_close(t.log_px_z.double(), log_px, rtol=2e-5, atol=0)
    torch.testing.assert_close(t.kl.double(), kl, rtol=2e-5, atol=1e-6)


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_reduced_precision_trains_on_cpu(precision):
    trainer = Trainer(vae_cfg(f"train.precision={precision}", "train.epochs=3", "train.lr=3e-3"))
    assert (trainer.scaler is not None) == (precision == "fp16")
    first = trainer.fit()
    assert first["epoch"] == 3 and np.isfinite(first["train/loss"])
    assert first["val/loss"] < 400  # from ~543 nats at initialization: it learns


def test_fp16_resumes_bit_exactly_with_its_loss_scale(tiny_cfg, tmp_path):
    tiny_cfg.train.precision = "fp16"
    ref, first = Trainer(tiny_cfg, tmp_path / "ref"), Trainer(tiny_cfg.set(["train.epochs=1"]), tmp_path / "run")
    for t in (ref, first):  # a scale so large that fp16 gradients overflow: it backs off, the checkpoint must carry it
        t.scaler = torch.amp.GradScaler("cpu", init_scale=3 * 2.0**38)
    ref.fit()
    first.fit()
    assert ref.scaler.get_scale() < 3 * 2.0**38 and ref.scaler.get_scale() != 2.0**16  # a fresh scaler's scale
    tiny_cfg.train.epochs = 2
    resumed = Trainer(tiny_cfg, tmp_path / "run")
    resumed.resume()
    resumed.fit()
    assert resumed.scaler.get_scale() == ref.scaler.get_scale()
    for k, v in ref.model.state_dict().items():
        assert torch.equal(resumed.model.state_dict()[k], v), k


def test_a_bad_precision_is_one_line():
    from vaelab.config import ConfigError
    with pytest.raises(ConfigError, match="precision"):
        vae_cfg("train.precision=fp8")


@pytest.mark.gpu
@gpu
@pytest.mark.parametrize("precision", ["bf16", "fp16", "fp32"])
def test_the_gpu_path_trains_a_conv_vae(precision):
    cfg = vae_cfg(f"train.precision={precision}", "train.device=auto", "model.name=conv-vae", "train.epochs=2")
    trainer = Trainer(cfg)
    assert trainer.device.type == "cuda" and trainer.channels_last
    record = trainer.fit()
    assert np.isfinite(record["val/loss"]) and record["val/loss"] < 400
