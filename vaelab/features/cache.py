"""Feature networks on disk and by name.

vaelab's own networks live in the user's cache, ``cache_root()/features/NAME.safetensors`` (the weights, no pickle)
beside ``NAME.json`` (what they are: name, dataset, SHA-256 of the weights file, test accuracy, feature dimension and
layer, how they were trained). A name is ``<dataset>-cnn``. ``inception:PATH`` names the FID Inception network with
the user's weights file (:mod:`.inception`). Every sample-quality figure carries :attr:`FeatureNetwork.info`, so two
figures are compared only when they come from the same network.
"""
from __future__ import annotations

import hashlib
import json
import pickle
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from ..data import DataError
from ..data.files import cache_root
from ..durable import replacing, write_atomic
from ..registry import Registry
from . import inception
from .network import FEATURE_LAYER, ClassifierCNN
from .train import Recipe

# The datasets vaelab trains a feature network for, by name, and how (a few minutes each on 2 CPU cores).
RECIPES: Registry[Recipe] = Registry("feature network recipe")
RECIPES.register("mnist")(Recipe(epochs=3))
RECIPES.register("fashion-mnist")(Recipe(epochs=10, flip=True))
RECIPES.register("cifar10")(Recipe(epochs=15, flip=True))
RECIPES.register("digits")(Recipe(epochs=20, batch_size=64, shift=0))  # 8x8: the tests' network, in seconds
SAME_IMAGES = {"binarized-mnist": "mnist"}  # datasets whose images another dataset's network describes
INCEPTION = "inception:"


class FeatureError(DataError):
    """A feature network that is missing, damaged or does not fit the images."""


@dataclass
class FeatureNetwork:
    """A network ``module``: images [B, C, H, W] in [0, 1] -> (features [B, D], logits [B, K]); ``info``: what it
    is (name, sha256, test_accuracy, dim, layer, ...), as written beside every figure made with it."""

    module: nn.Module
    info: dict

    @property
    def name(self) -> str:
        return self.info["name"]

    def check(self, shape: tuple[int, ...], what: str) -> None:
        """A clear error when images of ``shape`` (C, H, W) cannot pass through the network."""
        want = self.info.get("shape")
        if want is None:  # Inception resizes any image; it needs 1 or 3 channels
            if shape[0] not in (1, 3):
                raise FeatureError(f"{what}: the Inception network takes 1 or 3 channels, got images of shape {shape}")
        elif tuple(want) != tuple(shape):
            raise FeatureError(f"{what}: images of shape {tuple(shape)} do not fit feature network {self.name} "
                               f"(made for {tuple(want)}); choose another with --features")


def network_name(dataset: str) -> str:
    """The name of the feature network for images of ``dataset``: ``mnist-cnn`` (binarized-mnist: ``mnist-cnn``)."""
    return f"{SAME_IMAGES.get(dataset, dataset)}-cnn"


def folder() -> Path:
    return cache_root() / "features"


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def save_network(net: ClassifierCNN, dataset: str, facts: dict) -> dict:
    """Write ``net`` to the cache as ``<dataset>-cnn``, each file replaced whole or not at all (weights first, so a
    kill between the two leaves a JSON whose hash refuses the new weights); its info (with the weights file's
    SHA-256) is returned."""
    name = network_name(dataset)
    weights, meta = folder() / f"{name}.safetensors", folder() / f"{name}.json"
    weights.parent.mkdir(parents=True, exist_ok=True)
    with replacing(weights) as tmp:
        save_file({k: v.contiguous() for k, v in net.state_dict().items()}, tmp)
    info = {"name": name, "dataset": dataset, "sha256": sha256(weights), **facts, "dim": net.num_features,
            "layer": FEATURE_LAYER, "shape": list(net.shape), "classes": net.classes, "architecture": "ClassifierCNN"}
    write_atomic(meta, json.dumps(info, indent=2))
    return info


def _cached(name: str) -> FeatureNetwork:
    weights, meta = folder() / f"{name}.safetensors", folder() / f"{name}.json"
    if not (weights.exists() and meta.exists()):
        dataset = name.removesuffix("-cnn")
        how = (f"train it with `vaelab features train --dataset {dataset}` (a few minutes on 2 CPU cores)"
               if dataset in RECIPES else f"vaelab trains networks for {', '.join(RECIPES)}; or pass "
               f"--features {INCEPTION}PATH with the FID Inception weights")
        raise FeatureError(f"no feature network {name} in {folder()}; {how}")
    info = json.loads(meta.read_text())
    if sha256(weights) != info["sha256"]:
        raise FeatureError(f"{weights}: its SHA-256 is not the one {meta.name} records (a damaged or replaced file); "
                           f"train it again with `vaelab features train --dataset {info['dataset']} --overwrite`")
    net = ClassifierCNN(tuple(info["shape"]), info["classes"], info["dim"])
    net.load_state_dict(load_file(weights))
    return FeatureNetwork(net.eval(), info)


def _inception(path: str) -> FeatureNetwork:
    """The FID Inception network with the weights in ``path``: ``.safetensors``, or a state dict read by
    ``torch.load(weights_only=True)`` (no code is unpickled)."""
    file = Path(path).expanduser()
    if not file.is_file():
        raise FeatureError(f"{INCEPTION}{path}: no such file; see README (Sample quality) for where the FID "
                           "Inception weights come from")
    try:
        state = load_file(file) if file.suffix == ".safetensors" else torch.load(file, map_location="cpu",
                                                                                   weights_only=True)
    except (SafetensorError, pickle.UnpicklingError, RuntimeError, OSError, ValueError, EOFError) as e:
        raise FeatureError(f"{file}: not a readable weights file ({type(e).__name__}: {e})") from None
    net = inception.FIDInceptionV3()
    want = {k for k in net.state_dict() if not k.endswith("num_batches_tracked")}
    missing = sorted(want - set(state))
    if missing or not isinstance(state, dict):
        raise FeatureError(f"{file}: not the FID Inception weights (missing {', '.join(missing[:3])}, ...); use "
                           "pt_inception-2015-12-05-6726825d.pth or weights-inception-2015-12-05-6726825d.pth")
    try:
        net.load_state_dict({k: state[k] for k in want}, strict=False)
    except RuntimeError as e:
        raise FeatureError(f"{file}: tensors of the wrong shape for the FID Inception network ({e})") from None
    info = {"name": "inception-v3-fid", "sha256": sha256(file), "test_accuracy": None, "dim": net.num_features,
            "layer": inception.FEATURE_LAYER, "shape": None, "file": str(file)}
    return FeatureNetwork(net.eval(), info)


def load_network(spec: str) -> FeatureNetwork:
    """The feature network ``spec`` names: a cached ``<dataset>-cnn``, or ``inception:PATH``."""
    if spec.startswith(INCEPTION):
        return _inception(spec[len(INCEPTION):])
    return _cached(spec)
