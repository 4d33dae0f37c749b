"""Models by name. Each entry builds a model from a :class:`~vaelab.config.ModelConfig` and says
which config values its name implies (``beta-vae`` is a VAE with beta = 4; ``cvae`` a conditional one)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from torch import nn

from ..config import ConfigError, ModelConfig
from ..registry import Registry
from .likelihood import LIKELIHOODS, Likelihood
from .networks import DECODERS, ENCODERS
from .posterior import DiagonalGaussian
from .prior import StandardNormal
from .vae import VAE, ELBOTerms


@dataclass
class ModelSpec:
    build: Callable[[ModelConfig], nn.Module]
    about: str
    presets: dict[str, Any] = field(default_factory=dict)  # RunConfig overrides the name implies


MODELS: Registry[ModelSpec] = Registry("model")


def build_vae(cfg: ModelConfig) -> VAE:
    if cfg.input_shape is None:
        raise ConfigError("model.input_shape is not set (it is filled from the dataset at train time)")
    shape = tuple(cfg.input_shape)
    if cfg.conditional and cfg.num_classes < 2:
        raise ConfigError("a conditional model needs a labelled dataset (model.num_classes >= 2)")
    num_classes = cfg.num_classes if cfg.conditional else 0
    options = dict(hidden=cfg.hidden, channels=cfg.channels, act=cfg.activation)
    encoder = ENCODERS.get(cfg.arch)(shape, **options)
    decoder = DECODERS.get(cfg.arch)(cfg.latent_dim + num_classes, shape, **options)
    likelihood = LIKELIHOODS.get(cfg.likelihood).from_config(shape, cfg)
    return VAE(encoder, decoder, likelihood, cfg.latent_dim, num_classes)


MODELS.register("vae")(ModelSpec(build_vae, "VAE (Kingma & Welling 2014), MLP or conv (model.arch)"))
MODELS.register("beta-vae")(ModelSpec(
    build_vae, "beta-VAE (Higgins et al. 2017): KL weighted by beta, with warm-up/cyclical/capacity schedules",
    {"kl": {"beta": 4.0}}))
MODELS.register("cvae")(ModelSpec(
    build_vae, "conditional VAE (Sohn et al. 2015): encoder and decoder see the class label",
    {"model": {"conditional": True}}))


def build_model(cfg: ModelConfig) -> nn.Module:
    return MODELS.get(cfg.name).build(cfg)


__all__ = ["MODELS", "ModelSpec", "VAE", "ELBOTerms", "DiagonalGaussian", "StandardNormal", "Likelihood",
           "LIKELIHOODS", "build_model"]
