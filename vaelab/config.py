"""Typed run configuration: defaults that work, YAML files, and ``--set key=value`` overrides.

A run directory's ``config.yaml`` holds a whole :class:`RunConfig`: what the user chose, enough (with the data
facts the run directory records beside it) to rebuild the model and to resume training. It is input only: nothing
writes facts found at run time back into it.

Components own their options. A section with option groups (``objective``) holds, besides its own fields, the
group of the component it names (``objective.btc.*`` for ``objective.name=beta-tc``), which that component
registers with :func:`register_options`. Choices that a registry knows (``kl.schedule``, ``model.likelihood``, ...)
are checked against that registry by its kind (``field(metadata=choices("KL schedule"))``). So this module imports
no component, and every component may import it.
"""
from __future__ import annotations

import dataclasses
import math
import re
import types
import typing
from dataclasses import dataclass, field
from operator import attrgetter
from pathlib import Path
from typing import Any, ClassVar

import yaml

from .durable import write_atomic
from .registry import Registry

CONFIG_VERSION = 2  # version 1 (vaelab 0.1.0) is read through migrate_v1
BINARIZE_MODES = ("none", "static", "dynamic")
SIGMA_MODES = ("per-pixel", "per-channel", "isotropic")  # a Gaussian likelihood's sigma: per pixel, channel, or one


class ConfigError(ValueError):
    """A config file or override that does not fit the schema."""


def choices(kind: str, *also: str) -> dict:
    """Field metadata: the value must be a name of the registry of ``kind`` (or one of ``also``)."""
    return {"registry": kind, "also": also}


@dataclass
class DataConfig:
    name: str = field(default="fashion-mnist", metadata=choices("dataset"))
    data_dir: str | None = None
    binarize: str = field(default="dynamic", metadata={"choices": BINARIZE_MODES})  # none | dynamic (resampled
    # every step, Burda et al. 2016) | static (fixed, seeded)
    val_size: int | None = None  # carved from train when the dataset has no validation split (None: its default)
    seed: int = 0  # validation split and static binarization
    image_size: int | None = None  # image-folder / celeba: side of the square images (their default: 64)
    crop: int | None = None  # image-folder / celeba: center crop before resizing (celeba: 140)
    channels: int | None = None  # image-folder: 1 (grey) or 3 (colour)
    attributes: list[str] | None = None  # celeba: attributes of list_attr_celeba.txt whose pattern labels the images
    # (sum_i 2^i a_i: [Male, Smiling] gives 4 classes), for a conditional model
    train_size: int | None = None  # factor datasets (dsprites, 3dshapes): images drawn for training (20000)
    test_size: int | None = None  # factor datasets: images drawn for testing (2000)
    labels: int | None = None  # semi-supervised (M2): keep the labels of this many training examples, balanced
    # across classes and drawn by data.seed; the others are unlabelled (y = -1; vaelab.data.semi)
    limit: int | None = None  # keep only the first `limit` examples of each split: a quick look (a notebook's small
    # budget, a trial sweep); its numbers are not the dataset's
    classes: list[int] | None = None  # labelled datasets: keep only the examples of these classes in every split
    # (one-class anomaly detection: [3] trains on threes alone); null: all
    perturb: float = 0.0  # replace each training pixel by a uniform random value with this probability, afresh at
    # every step (the background model of Ren et al. 2019's likelihood ratio); 0: none


@dataclass
class ModelConfig:
    name: str = field(default="vae", metadata=choices("model"))
    arch: str = "mlp"  # mlp | conv | conv64 (VAEs); vq-conv | vq-residual (VQ-VAE)
    latent_dim: int = 32
    hidden: list[int] = field(default_factory=lambda: [512, 512])  # mlp
    channels: list[int] = field(default_factory=lambda: [8, 16, 32])  # conv (the seed notebook's)
    activation: str = field(default="relu", metadata=choices("activation", "gated"))
    likelihood: str = field(default="bernoulli", metadata=choices("likelihood"))  # vaelab list: bernoulli |
    # continuous-bernoulli | discretized-logistic | gaussian | dequantized-gaussian
    sigma: float = 0.1  # gaussians: fixed sigma, or the initial one when learned
    learn_sigma: bool = False
    sigma_mode: str = field(default="per-pixel", metadata={"choices": SIGMA_MODES})  # gaussians: a sigma per pixel,
    # per channel, or one shared by all (isotropic)
    sigma_min: float | None = None  # gaussians: a learned sigma stays above it (null: gaussian 0, dequantized-gaussian
    # 1 / (256 sqrt 12), the dequantization noise's own standard deviation)
    mixtures: int = 1  # discretized-logistic: logistic components per pixel (PixelCNN++ uses 10 for CIFAR-10)
    conditional: bool = False  # CVAE: encoder and decoder see the class label
    classifier: bool = False  # M2 (Kingma et al. 2014): a classifier q(y|x) beside the CVAE, model.arch's encoder
    prior: str = field(default="standard", metadata=choices("prior"))  # standard | mog | vampprior
    prior_components: int = 500  # pseudo-inputs of the VampPrior, components of the mixture
    posterior: str = field(default="gaussian", metadata=choices("posterior"))  # gaussian | planar | iaf
    flows: int = 4  # flow steps of a planar or IAF posterior
    decoder: str = "network"  # network (model.arch's decoder, then model.likelihood) | pixelcnn (PixelVAE)
    pixelcnn_layers: int = 5
    pixelcnn_dim: int = 32
    layers: list[int] = field(default_factory=list)  # hierarchical: latent sizes, bottom first (empty: one layer)
    inference: str = "ladder"  # hierarchical inference path: ladder | bottom-up


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
    nats over ``capacity_steps`` (Burgess et al. 2018; ``gamma`` is their gamma, the capacity's weight).
    """

    beta: float = 1.0
    schedule: str = field(default="constant", metadata=choices("KL schedule"))
    warmup_steps: int = 10000
    cycles: int = 4
    ratio: float = 0.5
    free_bits: float = 0.0
    capacity: float | None = None
    capacity_steps: int = 100000
    gamma: float = 1000.0


@dataclass(frozen=True)
class OptionGroup:
    """A component's own options: dataclass ``cls`` at ``<section>.<key>``, for the components named ``owners``."""

    key: str
    cls: type
    owners: tuple[str, ...]


_GROUPS: dict[str, dict[str, OptionGroup]] = {"objective": {}}  # section -> key -> its option group


def register_options(section: str, key: str, cls: type, owner: str) -> None:
    """Make dataclass ``cls`` the options at ``<section>.<key>`` of the component ``owner`` (``objective.name``)."""
    groups = _GROUPS[section]
    old = groups.get(key)
    if old is not None and old.cls is not cls:
        raise KeyError(f"{section}.{key} is already the options of {', '.join(old.owners)}")
    groups[key] = OptionGroup(key, cls, (*(old.owners if old else ()), owner))


def option_group(section: str, owner: str) -> OptionGroup | None:
    """The option group of component ``owner`` in ``section``, if it has one."""
    return next((g for g in _GROUPS[section].values() if owner in g.owners), None)


@dataclass
class ObjectiveConfig:
    """What training maximizes (``name``, see ``vaelab list``); ``k`` samples of z per example for objectives that
    draw them (``elbo``, ``iwae``). The chosen objective's own options sit in its group, ``objective.<key>.*``
    (``objective.btc.beta`` for ``beta-tc``), held in ``options`` and read as an attribute: ``cfg.objective.btc``."""

    GROUPS: ClassVar[str] = "objective"  # the option groups of this section, chosen by ``name``

    name: str = field(default="elbo", metadata=choices("objective"))
    k: int = 1
    options: dict[str, Any] = field(default_factory=dict)  # {key: the named objective's options}, filled by _build

    def __getattr__(self, key: str) -> Any:
        options = self.__dict__.get("options", {})
        if key in options:
            return options[key]
        raise AttributeError(f"objective.{key}: the options of another objective or no such key "
                             f"(this config's objective is {self.__dict__.get('name')!r})")


PRECISIONS = ("fp32", "bf16", "fp16")


@dataclass
class TrainConfig:
    epochs: int | None = 10
    steps: int | None = None  # if set, overrides epochs
    batch_size: int = 128  # global, split over DDP ranks
    lr: float = 1e-3
    adam_beta1: float = 0.9  # the model's Adam (beta2 0.999); the WAE paper's 0.5
    weight_decay: float = 0.0
    grad_clip: float | None = None  # max gradient norm
    patience: int | None = None  # early stopping: epochs without a better validation loss
    checkpoint_every: int = 1000  # steps between mid-epoch checkpoints (and one at every epoch end)
    seed: int = 0
    device: str = "auto"  # auto: cuda when this machine has one, else cpu; cpu | cuda | cuda:N | mps
    precision: str = field(default="fp32", metadata={"choices": PRECISIONS})  # bf16 | fp16 (autocast, fp16 with a
    # loss scaler): the networks in reduced precision, the likelihood and KL sums in float32
    compile: bool = False  # torch.compile the model (measured: see README)
    eval_batch_size: int | None = None  # examples per validation pass; None: the model's (vaelab.eval.eval_batch_size)
    progress: bool = True
    track: str = field(default="tensorboard", metadata=choices("tracker"))  # tensorboard | mlflow | none (vaelab.track)
    tracking_uri: str | None = None  # MLflow's store or server; None: $MLFLOW_TRACKING_URI, else RUNS/mlflow.db


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
        d = dataclasses.asdict(self)
        d["objective"] |= d["objective"].pop("options")  # the option groups sit beside the section's own keys
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "RunConfig":
        return _build(cls, d, "").check()

    def check(self) -> "RunConfig":
        """Raise ConfigError for a value of the right type that training cannot use; return the config."""
        t, kl, m, vq, p = self.train, self.kl, self.model, self.vq, self.code_prior
        value = lambda key: attrgetter(key)(self)  # noqa: E731
        positive = lambda x: math.isfinite(x) and x > 0  # noqa: E731
        at_least_0 = lambda x: math.isfinite(x) and x >= 0  # noqa: E731
        rules = [("train.batch_size", t.batch_size >= 1, ">= 1"),
                 ("train.steps", t.steps is None or t.steps >= 1, ">= 1 (or null)"),
                 ("train.epochs", t.steps is not None or (t.epochs or 0) >= 1, ">= 1 when train.steps is null"),
                 ("train.checkpoint_every", t.checkpoint_every >= 1, ">= 1"),
                 ("train.eval_batch_size", t.eval_batch_size is None or t.eval_batch_size >= 1, ">= 1 (or null)"),
                 ("train.lr", positive(t.lr), "a finite number > 0"),
                 ("train.adam_beta1", 0 <= t.adam_beta1 < 1, "in [0, 1)"),
                 ("train.weight_decay", at_least_0(t.weight_decay), "a finite number >= 0"),
                 ("train.grad_clip", t.grad_clip is None or at_least_0(t.grad_clip), "a finite number >= 0 (or null)"),
                 ("train.patience", t.patience is None or t.patience >= 0, ">= 0 epochs (or null)"),
                 ("data.data_dir", self.data.data_dir is None or self.data.data_dir.strip() != "",
                  "a folder (or null: the standard places)"),
                 ("data.val_size", self.data.val_size is None or self.data.val_size >= 0, ">= 0 (or null)"),
                 ("data.labels", self.data.labels is None or self.data.labels >= 1, ">= 1 (or null: all labelled)"),
                 ("data.limit", self.data.limit is None or self.data.limit >= 1, ">= 1 (or null)"),
                 ("data.classes", self.data.classes is None or (len(self.data.classes) > 0 and
                                                                all(c >= 0 for c in self.data.classes)),
                  "a non-empty list of class labels >= 0 (or null: all)"),
                 ("data.perturb", 0 <= self.data.perturb < 1, "in [0, 1)"),
                 ("model.latent_dim", m.latent_dim >= 1, ">= 1"),
                 ("model.hidden", all(h >= 1 for h in m.hidden), "a list of layer sizes, each >= 1"),
                 ("model.channels", all(c >= 1 for c in m.channels), "a list of channel counts, each >= 1"),
                 ("model.layers", all(n >= 1 for n in m.layers), "a list of latent sizes, each >= 1 (or [])"),
                 ("model.sigma", positive(m.sigma), "a finite number > 0"),
                 ("model.prior_components", m.prior_components >= 1, ">= 1"),
                 ("model.flows", m.flows >= 1, ">= 1"),
                 ("model.pixelcnn_layers", m.pixelcnn_layers >= 1, ">= 1"),
                 ("model.pixelcnn_dim", m.pixelcnn_dim >= 1, ">= 1"),
                 ("kl.beta", at_least_0(kl.beta), "a finite number >= 0"),
                 ("kl.free_bits", at_least_0(kl.free_bits), "a finite number >= 0"),
                 ("kl.capacity", kl.capacity is None or at_least_0(kl.capacity), "a finite number >= 0 (or null)"),
                 ("kl.gamma", at_least_0(kl.gamma), "a finite number >= 0"),
                 ("kl.ratio", 0 < kl.ratio <= 1, "in (0, 1]"),
                 ("kl.cycles", kl.cycles >= 1, ">= 1"),
                 ("kl.warmup_steps", kl.warmup_steps >= 0, ">= 0"),
                 ("kl.capacity_steps", kl.capacity_steps >= 0, ">= 0"),
                 ("objective.k", self.objective.k >= 1, ">= 1 (samples of z per example)"),
                 ("vq.codebook_size", vq.codebook_size >= 1, ">= 1"),
                 ("vq.dim", vq.dim >= 1, ">= 1"),
                 ("vq.beta", at_least_0(vq.beta), "a finite number >= 0"),
                 ("vq.decay", 0 <= vq.decay < 1, "in [0, 1)"),
                 ("vq.dead_after", vq.dead_after >= 0, ">= 0"),
                 ("vq.lookup_dim", vq.lookup_dim is None or vq.lookup_dim >= 1, ">= 1 (or null)"),
                 ("vq.hidden", vq.hidden >= 1, ">= 1"),
                 ("vq.residual_hidden", vq.residual_hidden >= 1, ">= 1"),
                 ("code_prior.layers", p.layers >= 1, ">= 1"),
                 ("code_prior.dim", p.dim >= 1, ">= 1"),
                 ("code_prior.kernel", p.kernel >= 1, ">= 1"),
                 ("code_prior.epochs", p.epochs >= 1, ">= 1"),
                 ("code_prior.batch_size", p.batch_size >= 1, ">= 1"),
                 ("code_prior.lr", positive(p.lr), "a finite number > 0"),
                 ("model.mixtures", self.model.mixtures >= 1, ">= 1"),
                 ("model.sigma_min", self.model.sigma_min is None or self.model.sigma_min >= 0, ">= 0 (or null)")]
        rules += [(key, value(key) in known, f"one of {', '.join(known)}") for key, known in _choice_rules(self)]
        for key, ok, need in rules:
            if not ok:
                raise ConfigError(f"{key} must be {need}; got {value(key)!r}")
        return self

    def override(self, d: dict[str, Any]) -> "RunConfig":
        """A copy with the (nested) keys of ``d`` replaced. When ``d`` names another objective, the option group of
        the old one is left behind (it is the old objective's, not the new one's)."""
        base = self.to_dict()
        new = (d.get("objective") or {}).get("name") if isinstance(d.get("objective"), dict) else None
        if new is not None and new != self.objective.name:
            base["objective"] = {k: v for k, v in base["objective"].items() if k not in _GROUPS["objective"]}
        return RunConfig.from_dict(_merge(base, d))

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
                if not isinstance(node, dict):
                    raise ConfigError(f"--set {item!r}: {p} is a value, not a section")
            node[leaf] = yaml_value(value, item)
        return self.override(patch)

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)

    def save(self, path: str | Path) -> None:
        write_atomic(path, self.to_yaml())

    @classmethod
    def load(cls, path: str | Path) -> "RunConfig":
        return cls.from_dict(read_patch(path))


def _choice_rules(cfg: RunConfig) -> list[tuple[str, tuple[str, ...]]]:
    """(key, allowed values) for every field with choices; a registry not loaded yet is not checked."""
    rules = []
    for section in dataclasses.fields(cfg):
        part = getattr(cfg, section.name)
        if not dataclasses.is_dataclass(part):
            continue
        for f in dataclasses.fields(part):
            if "choices" in f.metadata:
                rules.append((f"{section.name}.{f.name}", f.metadata["choices"]))
            elif "registry" in f.metadata and (reg := Registry.of_kind(f.metadata["registry"])) is not None:
                rules.append((f"{section.name}.{f.name}", (*reg.names(), *f.metadata["also"])))
    return rules


def yaml_value(text: str, item: str) -> Any:
    """A ``--set`` value read as plain YAML: no tags (``!!python/...``), which could name Python objects."""
    if re.search(r"(^|[\s\[{,:])!", text):
        raise ConfigError(f"--set {item!r}: YAML tags (!...) are not accepted; give a plain value (a number, a "
                          f"string, true/false, null or a [list])")
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise ConfigError(f"--set {item!r}: the value is not valid YAML ({' '.join(str(e).split())})") from None


def read_patch(path: str | Path) -> dict[str, Any]:
    """The keys a YAML config file sets (checked against the schema), to override other values with. A file of
    config version 1 is migrated (:func:`migrate_v1`); its data facts are dropped (see :func:`read_versioned`)."""
    return read_versioned(path)[0]


def read_versioned(path: str | Path, written: bool = False) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """(the keys the file sets, in the current version; the data facts a version-1 file held, else None). A file
    that vaelab ``written`` (a run directory's config.yaml) must say its version: an empty one is damaged."""
    try:
        d = yaml.safe_load(Path(path).read_bytes().decode())
    except OSError as e:
        raise ConfigError(f"cannot read config {path}: {e.strerror}") from None
    except UnicodeDecodeError as e:
        raise ConfigError(f"{path} is not a text file (byte 0x{e.object[e.start]:02x} at offset {e.start} is not "
                          f"UTF-8); a config is a YAML mapping of sections (data, model, kl, objective, train)") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"{path} is not valid YAML: {' '.join(str(e).split())}") from None
    if d is None and not written:
        d = {}
    if not isinstance(d, dict):
        raise ConfigError(f"{path} must hold a mapping of sections (data, model, kl, objective, train), not "
                          f"{'nothing' if d is None else type(d).__name__}")
    if written and "version" not in d:
        raise ConfigError(f"{path} holds no config version: it is not whole (vaelab writes every key and the "
                          f"version)")
    facts = None
    version = d.get("version", CONFIG_VERSION)
    if version == 1:
        d, facts = migrate_v1(d)
    elif isinstance(version, int) and not isinstance(version, bool) and version > CONFIG_VERSION:
        raise ConfigError(f"{path} was written by a newer vaelab (config version {version}); this one reads versions "
                          f"1 and {CONFIG_VERSION}: upgrade vaelab to use it")
    elif version != CONFIG_VERSION:
        raise ConfigError(f"{path} has config version {version!r}, from an incompatible vaelab; this one reads "
                          f"{CONFIG_VERSION} (and 1)")
    RunConfig.from_dict(d)
    return d, facts


# version 1 kept every objective's options side by side in the objective section: where each went
V1_OBJECTIVE_KEYS = {"alpha": ("btc", "alpha"), "tc_beta": ("btc", "beta"), "gamma": ("btc", "gamma"),
                     "estimator": ("btc", "estimator"), "factor_gamma": ("factor", "gamma"),
                     "disc_lr": ("factor", "disc_lr"), "disc_hidden": ("factor", "disc_hidden"),
                     "lambda_od": ("dip", "lambda_od"), "lambda_d": ("dip", "lambda_d")}


def migrate_v1(d: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """A version-1 config as version 2, and the data facts it held: version 1 wrote the dataset's
    ``model.input_shape`` and ``model.num_classes`` and the training set's size (``objective.dataset_size``) into
    the config; the objective's options move into its own group (``objective.tc_beta`` -> ``objective.btc.beta``)."""
    d = {k: dict(v) if isinstance(v, dict) else v for k, v in d.items()}
    model, objective = d.get("model", {}), d.get("objective", {})
    facts = {"shape": model.pop("input_shape", None), "train_size": objective.pop("dataset_size", 0)}
    num_classes = model.pop("num_classes", 0)
    if model.get("conditional"):  # else version 1 left it 0, whatever the data had
        facts["num_classes"] = num_classes
    group = option_group("objective", objective.get("name", "elbo"))
    moved = {}
    for old, (key, new) in V1_OBJECTIVE_KEYS.items():
        if old in objective:
            value = objective.pop(old)
            if group is not None and key == group.key:
                moved[new] = value
    if moved:
        objective[group.key] = moved
    d["version"] = CONFIG_VERSION
    return d, facts


def _merge(base: dict, patch: dict) -> dict:
    out = dict(base)
    for k, v in patch.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def _build(cls, d: Any, where: str):
    if not isinstance(d, dict):
        raise ConfigError(f"{where.rstrip('.') or 'config'} must be a mapping, got {d!r}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)} - {"options"}
    groups = _GROUPS.get(getattr(cls, "GROUPS", ""), {})
    d = dict(d)
    options = _build_options(cls, d, groups, where) if groups else None
    unknown = set(d) - names
    if unknown:
        raise ConfigError(f"unknown config key(s) {', '.join(where + k for k in sorted(unknown))}; "
                          f"known in {where.rstrip('.') or 'top level'}: {', '.join(sorted(names))}")
    kwargs = {k: _value(hints[k], v, f"{where}{k}") for k, v in d.items()}
    return cls(**kwargs) if options is None else cls(**kwargs, options=options)


def _build_options(cls, d: dict, groups: dict[str, OptionGroup], where: str) -> dict[str, Any]:
    """Take the option groups out of section ``d``: the named component's (defaults where absent), and a clear error
    for another component's."""
    name = d.get("name", next(f.default for f in dataclasses.fields(cls) if f.name == "name"))
    options = {}
    for key in [k for k in d if k in groups]:
        group = groups[key]
        if name not in group.owners:
            raise ConfigError(f"{where}{key}.* are the options of {where}name {' or '.join(group.owners)}; this "
                              f"config's {where}name is {name!r}")
        options[key] = _build(group.cls, d.pop(key), f"{where}{key}.")
    own = next((g for g in groups.values() if name in g.owners), None)
    if own is not None and own.key not in options:
        options[own.key] = own.cls()
    return options


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
            v = float(v)  # YAML 1.1 reads 3e-4 (no dot) as a string
        except ValueError:
            pass
    if tp is float and isinstance(v, float) and math.isnan(v):
        raise ConfigError(f"{where} must be a number, got NaN")
    if not isinstance(v, tp) or (tp is int and isinstance(v, bool)):
        raise ConfigError(f"{where} must be {tp.__name__}, got {v!r}")
    return v
