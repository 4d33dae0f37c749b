"""Model families: what kind of model a run holds, known before one is built.

A family is one object that every layer asks instead of comparing names: which config section sizes its networks,
what its latent space is, whether it has a likelihood bound, what the command line and the app can show for it,
and how to build its model from (config, data facts). Model names (``vae``, ``beta-vae``, ``cvae``, ...) are
presets over a family's one builder (:data:`vaelab.models.MODELS`). Layers above register their part per family
in registries of their own: how it is evaluated (:data:`vaelab.eval.EVALUATORS`), which objectives train it (each
objective's ``family``).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable

from ..config import ConfigError
from ..registry import Registry

if TYPE_CHECKING:
    from torch import nn

    from ..config import RunConfig
    from ..data import DataFacts

# What the command line and the app can do with a model, by name:
VIEWS = {
    "samples": "draw samples",
    "reconstruct": "reconstruct images",
    "interpolate": "interpolate in a continuous latent space",
    "traverse": "traverse latent dimensions",
    "explore": "explore a continuous latent space",
    "likelihood": "estimate log p(x) (importance sampling, AIS)",
    "disentangle": "measure disentanglement on factor datasets",
    "codes": "show codebook usage and code maps",
    "code-prior": "train a prior over its codes",
}


@dataclass(eq=False)
class Family:
    name: str
    about: str  # "a VAE (continuous latents)": what the model is, in a message
    section: str  # the config section that sizes its networks: model | vq | code_prior
    latent: str  # continuous (encode: posterior means [B, D]) | codes (encode: code grids [B, H', W']) | none
    density: bool  # it bounds log p(x) (an ELBO), so likelihoods and bits per dimension can be estimated
    size_key: str  # the key of its section that says how large its latent space is
    archs: str  # the kind of the registry of its network architectures (model.arch)
    views: frozenset[str] = field(default_factory=frozenset)  # what the CLI and app can show (keys of VIEWS)
    user_trained: bool = True  # trained by `vaelab train --model` (a code prior is made by `vaelab train-prior`)
    _build: Callable | None = field(default=None, repr=False)

    def builder(self, fn: Callable[["RunConfig", "DataFacts"], "nn.Module"]) -> Callable:
        """Decorator: ``fn(cfg, facts)`` builds this family's models."""
        self._build = fn
        return fn

    def build(self, cfg: "RunConfig", facts: "DataFacts") -> "nn.Module":
        return self._build(cfg, facts)

    def can(self, view: str) -> bool:
        return view in self.views

    def size(self, cfg: "RunConfig") -> int:
        """How large the latent space of ``cfg``'s model is: latent dimensions, or codes in the codebook."""
        return getattr(getattr(cfg, self.section), self.size_key)

    def require(self, view: str, command: str) -> None:
        """A clear error when ``command`` needs ``view`` (a key of VIEWS) and this family has none."""
        if not self.can(view):
            able = [f.about for f in FAMILIES.values() if f.can(view)]
            raise ConfigError(f"{command} needs a model that can {VIEWS[view]} ({' or '.join(able) or 'none'}); this "
                              f"run holds {self.about}")

    def __repr__(self) -> str:
        return f"Family({self.name!r})"


class _Families(Registry[Family]):
    def add(self, family: Family) -> Family:
        return self.register(family.name)(family)

    def values(self) -> list[Family]:
        return [self.get(n) for n in self.names()]


FAMILIES = _Families("model family")

VAE = FAMILIES.add(Family(
    "vae", "a VAE (continuous latents)", "model", "continuous", density=True, size_key="latent_dim",
    archs="encoder architecture", views=frozenset({"samples", "reconstruct", "interpolate", "traverse", "explore", "likelihood", "disentangle"})))
VQ = FAMILIES.add(Family(
    "vq", "a VQ-VAE (a codebook)", "vq", "codes", density=False, size_key="codebook_size",
    archs="VQ-VAE architecture", views=frozenset({"samples", "reconstruct", "codes", "code-prior"})))
AUTOENCODER = FAMILIES.add(Family(
    "autoencoder", "an autoencoder without a likelihood (continuous latents, no ELBO)", "model", "continuous",
    density=False, size_key="latent_dim", archs="encoder architecture",
    views=frozenset({"samples", "reconstruct", "interpolate", "traverse", "explore"})))
CODE_PRIOR = FAMILIES.add(Family(
    "prior", "a code prior (a PixelCNN over a VQ-VAE's codes)", "code_prior", "none", density=False,
    size_key="dim", archs="", user_trained=False))
