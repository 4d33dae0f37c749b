"""Typed run configuration: defaults that work, YAML files, and ``--set key=value`` overrides.

A run directory's ``config.yaml`` holds a whole :class:`RunConfig`, enough to rebuild
the model and to resume training.
"""
from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from operator import attrgetter
from pathlib import Path
from typing import Any

import yaml

CONFIG_VERSION = 1


class ConfigError(ValueError):
    """A config file or override that does not fit the schema."""


@dataclass
class DataConfig:
    name: str = "fashion-mnist"
    data_dir: str | None = None
    binarize: str = "dynamic"  # none | dynamic (resampled every step, Burda et al. 2016) | static (fixed, seeded)
    val_size: int | None = None  # carved from train when the dataset has no validation split (None: its default)
    seed: int = 0  # validation split and static binarization
    image_size: int | None = None  # image-folder / celeba: side of the square images (their default: 64)
    crop: int | None = None  # image-folder / celeba: center crop before resizing (celeba: 140)
    channels: int | None = None  # image-folder: 1 (grey) or 3 (colour)
    train_size: int | None = None  # factor datasets (dsprites, 3dshapes): images drawn for training (20000)
    test_size: int | None = None  # factor datasets: images drawn for testing (2000)


@dataclass
class ModelConfig:
    name: str = "vae"
    arch: str = "mlp"  # mlp | conv (VAEs); vq-conv | vq-residual (VQ-VAE)
    latent_dim: int = 32
    hidden: list[int] = field(default_factory=lambda: [512, 512])  # mlp
    channels: list[int] = field(default_factory=lambda: [8, 16, 32])  # conv (the seed notebook's)
    activation: str = "relu"
    likelihood: str = "bernoulli"  # bernoulli | gaussian
    sigma: float = 0.1  # gaussian: fixed sigma, or the initial one when learned
    learn_sigma: bool = False
    sigma_mode: str = "per-pixel"  # gaussian: a sigma per pixel, or one shared by all (isotropic)
    conditional: bool = False  # CVAE: encoder and decoder see the class label
    prior: str = "standard"  # standard | mog | vampprior
    prior_components: int = 500  # pseudo-inputs of the VampPrior, components of the mixture
    posterior: str = "gaussian"  # gaussian | planar | iaf
    flows: int = 4  # flow steps of a planar or IAF posterior
    decoder: str = "network"  # network (model.arch's decoder, then model.likelihood) | pixelcnn (PixelVAE)
    pixelcnn_layers: int = 5
    pixelcnn_dim: int = 32
    layers: list[int] = field(default_factory=list)  # hierarchical: latent sizes, bottom first (empty: one layer)
    inference: str = "ladder"  # hierarchical inference path: ladder | bottom-up
    input_shape: list[int] | None = None  # filled from the dataset at train time
    num_classes: int = 0  # filled from the dataset when conditional


@dataclass
class VQConfig:
    """The VQ-VAE's codebook (van den Oord et al. 2017) and how it is trained (see vaelab.models.quantizer)."""

    codebook_size: int = 512  # K
    dim: int = 64  # D
    beta: float = 0.25  # commitment weight
    ema: bool = True  # EMA codebook updates instead of the codebook loss
    decay: float = 0.99
    kmeans_init: bool = False
    dead_after: int = 0  # restart codes unused for this many steps (0: never)
    lookup_dim: int | None = None  # look codes up in a learned projection of this size (ViT-VQGAN)
    cosine: bool = False  # l2-normalize vectors and codes: lookup by cosine similarity
    hidden: int = 128  # channels of the convolutional encoder/decoder
    residual_hidden: int = 32  # channels inside residual blocks (arch vq-residual)


@dataclass
class PriorConfig:
    """The gated PixelCNN over code indices (van den Oord et al. 2016), trained by ``vaelab train-prior``."""

    layers: int = 10
    dim: int = 64
    kernel: int = 7
    epochs: int = 10
    batch_size: int = 128
    lr: float = 1e-3


@dataclass
class KLConfig:
    """How the KL term enters the loss: loss = recon + beta(step) * KL, or the capacity form.

    schedule: constant | linear (warm-up from 0 over ``warmup_steps``) |
    cyclical (Fu et al. 2019: ``cycles`` ramps over the run, rising for ``ratio`` of each).
    free_bits: nats per latent dimension below which KL is not penalized (Kingma et al. 2016, eq. 15).
    capacity: if set, loss = recon + gamma * |KL - C(step)| with C rising linearly to ``capacity``
    nats over ``capacity_steps`` (Burgess et al. 2018).
    """

    beta: float = 1.0
    schedule: str = "constant"
    warmup_steps: int = 10000
    cycles: int = 4
    ratio: float = 0.5
    free_bits: float = 0.0
    capacity: float | None = None
    capacity_steps: int = 100000
    gamma: float = 1000.0


@dataclass
class ObjectiveConfig:
    """What training maximizes: ``elbo`` (averaged over k samples) or ``iwae``, the k-sample
    importance-weighted bound (Burda et al. 2016, eq. 8), which KL schedules do not shape."""

    name: str = "elbo"  # elbo | iwae | vq | prior | beta-tc | factor | dip-i | dip-ii
    k: int = 1  # samples of z per example
    # beta-TC-VAE (Chen et al. 2018): weights of index-code MI, total correlation, dimension-wise KL
    alpha: float = 1.0
    tc_beta: float = 6.0
    gamma: float = 1.0
    estimator: str = "mss"  # mws (minibatch-weighted) | mss (minibatch-stratified)
    dataset_size: int = 0  # N for the estimators; filled from the training set at train time
    # FactorVAE (Kim & Mnih 2018): TC weight and the discriminator's own optimizer
    factor_gamma: float = 35.0
    disc_lr: float = 1e-4
    disc_hidden: int = 1000
    # DIP-VAE (Kumar et al. 2018): off-diagonal and diagonal covariance penalties
    lambda_od: float = 10.0
    lambda_d: float | None = None  # None: the variant's default, 10 * lambda_od (DIP-I) or lambda_od (DIP-II)


@dataclass
class TrainConfig:
    epochs: int | None = 10
    steps: int | None = None  # if set, overrides epochs
    batch_size: int = 128  # global, split over DDP ranks
    lr: float = 1e-3
    weight_decay: float = 0.0
    grad_clip: float | None = None  # max gradient norm
    patience: int | None = None  # early stopping: epochs without a better validation loss
    checkpoint_every: int = 1000  # steps between mid-epoch checkpoints (and one at every epoch end)
    seed: int = 0
    device: str = "cpu"
    eval_batch_size: int | None = None  # examples per validation pass; None: the model's (vaelab.eval.eval_batch_size)
    progress: bool = True


@dataclass
class RunConfig:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    kl: KLConfig = field(default_factory=KLConfig)
    objective: ObjectiveConfig = field(default_factory=ObjectiveConfig)
    vq: VQConfig = field(default_factory=VQConfig)
    code_prior: PriorConfig = field(default_factory=PriorConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    version: int = CONFIG_VERSION

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "RunConfig":
        return _build(cls, d, "").check()

    def check(self) -> "RunConfig":
        """Raise ConfigError for a value of the right type that training cannot use; return the config."""
        from .data.binarize import MODES  # imported here: these modules import this one
        from .models.likelihood import LIKELIHOODS, SIGMA_MODES
        from .models.networks import ACTIVATIONS
        from .objectives.schedules import BETA_SCHEDULES

        t, kl = self.train, self.kl
        value = lambda key: attrgetter(key)(self)  # noqa: E731
        rules = [("train.batch_size", t.batch_size >= 1, ">= 1"),
                 ("train.steps", t.steps is None or t.steps >= 1, ">= 1 (or null)"),
                 ("train.epochs", t.steps is not None or (t.epochs or 0) >= 1, ">= 1 when train.steps is null"),
                 ("train.checkpoint_every", t.checkpoint_every >= 1, ">= 1"),
                 ("train.eval_batch_size", t.eval_batch_size is None or t.eval_batch_size >= 1, ">= 1 (or null)"),
                 ("kl.ratio", 0 < kl.ratio <= 1, "in (0, 1]"),
                 ("kl.cycles", kl.cycles >= 1, ">= 1"),
                 ("kl.warmup_steps", kl.warmup_steps >= 0, ">= 0"),
                 ("kl.capacity_steps", kl.capacity_steps >= 0, ">= 0")]
        rules += [(key, value(key) in known, f"one of {', '.join(known)}")
                  for key, known in (("data.binarize", MODES), ("kl.schedule", BETA_SCHEDULES.names()),
                                     ("model.likelihood", LIKELIHOODS.names()), ("model.sigma_mode", SIGMA_MODES),
                                     ("model.activation", [*ACTIVATIONS, "gated"]))]
        for key, ok, need in rules:
            if not ok:
                raise ConfigError(f"{key} must be {need}; got {value(key)!r}")
        return self

    def override(self, d: dict[str, Any]) -> "RunConfig":
        """A copy with the (nested) keys of ``d`` replaced."""
        return RunConfig.from_dict(_merge(self.to_dict(), d))

    def set(self, assignments: list[str]) -> "RunConfig":
        """Apply ``section.key=value`` strings; values are parsed as YAML (``3e-4``, ``[256, 256]``, ``null``)."""
        patch: dict[str, Any] = {}
        for item in assignments:
            key, sep, value = item.partition("=")
            if not sep or "." not in key:
                raise ConfigError(f"--set expects section.key=value, got {item!r}")
            node = patch
            *parents, leaf = key.strip().split(".")
            for p in parents:
                node = node.setdefault(p, {})
            node[leaf] = yaml.safe_load(value)
        return self.override(patch)

    def save(self, path: str | Path) -> None:
        Path(path).write_text(yaml.safe_dump(self.to_dict(), sort_keys=False))

    @classmethod
    def load(cls, path: str | Path) -> "RunConfig":
        return cls.from_dict(read_patch(path))


def read_patch(path: str | Path) -> dict[str, Any]:
    """The keys a YAML config file sets (checked against the schema), to override other values with."""
    try:
        d = yaml.safe_load(Path(path).read_text()) or {}
    except OSError as e:
        raise ConfigError(f"cannot read config {path}: {e.strerror}") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"{path} is not valid YAML: {e}") from None
    if not isinstance(d, dict):
        raise ConfigError(f"{path} must hold a mapping of sections (data, model, kl, objective, train)")
    if d.get("version", CONFIG_VERSION) != CONFIG_VERSION:
        raise ConfigError(f"{path} has config version {d.get('version')}; this vaelab reads {CONFIG_VERSION}")
    RunConfig.from_dict(d)
    return d


def _merge(base: dict, patch: dict) -> dict:
    out = dict(base)
    for k, v in patch.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def _build(cls, d: Any, where: str):
    if not isinstance(d, dict):
        raise ConfigError(f"{where or 'config'} must be a mapping, got {d!r}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = set(d) - names
    if unknown:
        raise ConfigError(f"unknown config key(s) {', '.join(where + k for k in sorted(unknown))}; "
                          f"known in {where or 'top level'}: {', '.join(sorted(names))}")
    kwargs = {k: _value(hints[k], v, f"{where}{k}") for k, v in d.items()}
    return cls(**kwargs)


def _value(tp, v, where: str):
    if dataclasses.is_dataclass(tp):
        return _build(tp, v, where + ".")
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (types.UnionType, typing.Union):
        if v is None and type(None) in args:
            return None
        tp = next(a for a in args if a is not type(None))
        origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is list:
        if not isinstance(v, list):
            raise ConfigError(f"{where} must be a list, got {v!r}")
        return [_value(args[0], x, where) for x in v]
    if tp is float and not isinstance(v, bool) and isinstance(v, (int, str)):
        try:
            return float(v)  # YAML 1.1 reads 3e-4 (no dot) as a string
        except ValueError:
            pass
    if not isinstance(v, tp) or (tp is int and isinstance(v, bool)):
        raise ConfigError(f"{where} must be {tp.__name__}, got {v!r}")
    return v
