"""Feature networks: trained, cached and read back by name with their SHA-256; damaged or missing ones refused in one
line; the FID Inception network in torch-fidelity's layout, loaded without pickle; and sample quality end to end
through `vaelab eval --sample-quality` and `vaelab fid` for every family that draws samples."""
import argparse
import json

import pytest
import torch
from safetensors.torch import save_file

from vaelab.cli import main
from vaelab.data import load_dataset
from vaelab.features import FeatureError, FIDInceptionV3, load_network
from vaelab.features.inception import resize_like_tf1
from vaelab.measures import MEASURES

SMALL = ["--set", "model.hidden=[64]", "--set", "model.latent_dim=4", "--set", "train.batch_size=64",
         "--set", "train.progress=false"]


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    """A user cache holding digits-cnn, trained by `vaelab features train` (20 epochs of the 8x8 digits)."""
    mp = pytest.MonkeyPatch()
    root = tmp_path_factory.mktemp("cache")
    mp.setenv("XDG_CACHE_HOME", str(root))
    assert main(["features", "train", "--dataset", "digits"]) == 0
    yield root / "vaelab" / "features"
    mp.undo()


def test_a_trained_network_is_cached_with_its_hash_and_accuracy(cache, capsys):
    info = json.loads((cache / "digits-cnn.json").read_text())
    assert info["test_accuracy"] >= 0.97  # 0.993 when measured
    assert info["dim"] == 128 and "after ReLU" in info["layer"] and info["shape"] == [1, 8, 8]
    net = load_network("digits-cnn")
    assert net.info == info
    x = load_dataset("digits").test.x[:50]
    with torch.no_grad():
        features, logits = net.module(x)
    assert features.shape == (50, 128) and (features >= 0).all() and logits.shape == (50, 10)
    assert main(["features", "train", "--dataset", "digits"]) == 0  # cached: not trained again
    assert "already in" in capsys.readouterr().out


def test_training_is_seeded(cache):
    from vaelab.features import RECIPES, train_classifier

    data = load_dataset("digits")
    recipe = RECIPES.get("digits")
    short = type(recipe)(epochs=2, batch_size=64, shift=1)
    a, _ = train_classifier(data, short, seed=3, log=lambda s: None)
    b, _ = train_classifier(data, short, seed=3, log=lambda s: None)
    assert all(torch.equal(v, b.state_dict()[k]) for k, v in a.state_dict().items())


def test_damaged_or_missing_networks_get_one_line(cache, capsys):
    with pytest.raises(FeatureError, match="vaelab features train --dataset mnist"):
        load_network("mnist-cnn")
    damaged = cache.parent.parent / "damaged"
    (damaged / "vaelab" / "features").mkdir(parents=True)
    for name in ("digits-cnn.json", "digits-cnn.safetensors"):
        (damaged / "vaelab" / "features" / name).write_bytes((cache / name).read_bytes())
    weights = damaged / "vaelab" / "features" / "digits-cnn.safetensors"
    weights.write_bytes(weights.read_bytes()[:-1] + b"\0")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("XDG_CACHE_HOME", str(damaged))
        with pytest.raises(FeatureError, match="SHA-256"):
            load_network("digits-cnn")
    assert main(["fid", "mnist:test", "mnist:train", "--n", "10"]) == 2
    assert "no feature network mnist-cnn" in capsys.readouterr().err
    assert main(["fid", "digits:test", "/no/such/folder"]) == 2
    assert "neither a folder nor DATASET:SPLIT" in capsys.readouterr().err


def test_tf1_resize():
    """TensorFlow 1.x's bilinear resize samples input i * in / out (no half-pixel offset), the edge repeated."""
    x = torch.tensor([[[[0.0, 4.0], [8.0, 16.0]]]])
    out = resize_like_tf1(x, 4)
    assert out[0, 0, 0].tolist() == [0, 2, 4, 4] and out[0, 0, :, 0].tolist() == [0, 4, 8, 8]
    assert out[0, 0, 1, 1].item() == 0.25 * (0 + 4 + 8 + 16)


def test_inception_weights_load_without_pickle(tmp_path):
    """A state dict in pytorch-fid's layout (weights_only torch.load) or as safetensors; anything else: one line.
    (With the same weights this module's outputs were compared with torch-fidelity 0.4.0's FeatureExtractorInceptionV3
    once: bit-identical features and logits.)"""
    net = FIDInceptionV3()
    state = {k: v for k, v in net.state_dict().items() if not k.endswith("num_batches_tracked")}
    assert len(state) == 94 * 5 + 2 and state["fc.weight"].shape == (1008, 2048)  # 94 conv + BN layers, fc
    torch.save(state, tmp_path / "pt_inception.pth")
    save_file(state, tmp_path / "inception.safetensors")
    for name in ("pt_inception.pth", "inception.safetensors"):
        loaded = load_network(f"inception:{tmp_path / name}")
        assert loaded.info["dim"] == 2048 and loaded.info["test_accuracy"] is None and len(loaded.info["sha256"]) == 64
    with torch.no_grad():
        features, logits = loaded.module(torch.rand(1, 1, 28, 28))
    assert features.shape == (1, 2048) and logits.shape == (1, 1008)
    torch.save({"fc.weight": state["fc.weight"]}, tmp_path / "other.pth")
    with pytest.raises(FeatureError, match="not the FID Inception weights"):
        load_network(f"inception:{tmp_path / 'other.pth'}")
    torch.save({**state, "code": argparse.Namespace()}, tmp_path / "pickled.pth")  # an object, not a tensor
    with pytest.raises(FeatureError, match="not a readable weights file"):
        load_network(f"inception:{tmp_path / 'pickled.pth'}")


def test_fid_between_datasets_and_folders(cache, tmp_path, capsys):
    """The floor: the digits' train split against their test split is close; a folder of the same test images
    written as 8-bit PNGs (their 17 grey levels rounded to 1/255) scores about 0 against the split."""
    from PIL import Image

    assert main(["fid", "digits:test", "digits:train"]) == 0
    out = capsys.readouterr().out
    assert "FID ↓" in out and "digits-cnn (sha256" in out
    test = load_dataset("digits").test.x
    folder = tmp_path / "pngs"
    folder.mkdir()
    for i, image in enumerate(test):
        Image.fromarray((image[0] * 255).round().byte().numpy()).save(folder / f"{i:03d}.png")
    from vaelab.api import compare_images

    same = compare_images("digits:test", str(folder))
    floor = compare_images("digits:test", "digits:train")
    assert abs(same["fid"]) < 0.01 * floor["fid"] and same["precision"] == 1 and same["n_b"] == len(test)
    assert floor["precision"] > 0.7 and floor["recall"] > 0.7


def test_sample_quality_of_every_family(cache, tmp_path, capsys):
    """A VAE, a CVAE (per class too) and a VQ-VAE with its code prior, through `vaelab eval --sample-quality`; the
    VAE's samples score worse than its reconstructions, which score worse than test images (the floor); FID falls
    as the VAE trains."""
    from vaelab.api import load_run
    from vaelab.eval.quality import extract, in_batches, scores

    runs = {}
    for name, model, extra in (("vae", "vae", ["--epochs", "1"]), ("cvae", "cvae", ["--epochs", "3"])):
        runs[name] = tmp_path / name
        assert main(["train", "--model", model, "--dataset", "digits", *extra, *SMALL, "--out", str(runs[name])]) == 0
    assert main(["eval", str(runs["vae"]), "--sample-quality", "--n", "600"]) == 0
    early = json.loads((runs["vae"] / "eval.json").read_text())
    assert main(["train", "--resume", str(runs["vae"]), "--epochs", "40"]) == 0
    assert main(["eval", str(runs["vae"]), "--sample-quality", "--n", "600"]) == 0
    out = capsys.readouterr().out
    assert "FID ↓" in out and "precision (fraction) ↑" in out and "digits-cnn (sha256" in out
    assert MEASURES["fid"].help in out and MEASURES["coverage"].help in out  # each figure explained in one line
    late = json.loads((runs["vae"] / "eval.json").read_text())
    assert late["fid"] < early["fid"]
    about = late["sample_quality"]
    assert about["features"]["name"] == "digits-cnn" and about["n"] == 600 and about["reference"] == "digits:test"
    assert len(about["features"]["sha256"]) == 64 and about["features"]["test_accuracy"] >= 0.97

    _, model = load_run(runs["vae"])
    net = load_network("digits-cnn")
    data = load_dataset("digits")
    test, _ = extract(net, [data.test.x])
    train, _ = extract(net, [data.train.x])
    recon, _ = extract(net, in_batches(model.reconstruct(data.train.x)))
    floor, reconstructions = scores(test, train)["fid"], scores(test, recon)["fid"]
    assert floor < reconstructions < late["fid"]

    assert main(["eval", str(runs["cvae"]), "--sample-quality", "--n", "600"]) == 0
    cvae = json.loads((runs["cvae"] / "eval.json").read_text())
    per_class = cvae["sample_quality"]["per_class"]
    assert sorted(per_class) == [str(c) for c in range(10)] and all("fid" in v for v in per_class.values())

    vq = tmp_path / "vq"
    assert main(["train", "--model", "vqvae", "--dataset", "digits", "--steps", "40", "--set", "vq.hidden=16",
                 "--set", "vq.codebook_size=16", "--set", "vq.dim=4", "--set", "train.progress=false",
                 "--out", str(vq)]) == 0
    assert main(["eval", str(vq), "--sample-quality", "--n", "100"]) == 2
    assert "train-prior" in capsys.readouterr().err
    assert main(["train-prior", str(vq), "--epochs", "1", "--set", "train.progress=false"]) == 0
    assert main(["eval", str(vq), "--sample-quality", "--n", "100"]) == 0
    assert json.loads((vq / "eval.json").read_text())["sample_quality"]["samples"].startswith("code grids")
