"""Models by name: presets over each family's one builder. Each entry of :data:`MODELS` says which family builds it
and which config values its name implies (``beta-vae`` is a VAE with beta = 4; ``cvae`` a conditional one).
Builders take the run config and the data facts (:class:`~vaelab.data.DataFacts`) the model is built for."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from torch import nn

from ..config import ConfigError, ModelConfig, RunConfig
from ..data import DataFacts
from ..registry import Registry
from .autoencoder import Autoencoder
from .family import AUTOENCODER, CODE_PRIOR, VAE, VQ, Family
from .flows import IAFPosterior, PlanarPosterior
from .hierarchical import HierarchicalVAE
from .likelihood import LIKELIHOODS
from .m2 import M2
from . import continuous_bernoulli, logistic  # noqa: F401 - they register their likelihoods
from .networks import DECODERS, ENCODERS
from .pixelcnn import GatedPixelCNN, PixelCNNLikelihood
from .posterior import DeterministicPosterior, GaussianPosterior
from .prior import PRIORS, StandardNormal
from .quantizer import VectorQuantizer
from .vae import VAE as VAEModel
from .vqvae import VQ_NETWORKS, VQVAE


@dataclass
class ModelSpec:
    family: Family
    about: str
    presets: dict[str, Any] = field(default_factory=dict)  # RunConfig overrides the name implies


MODELS: Registry[ModelSpec] = Registry("model")
POSTERIORS: Registry = Registry("posterior")
POSTERIORS.register("gaussian")(GaussianPosterior)
POSTERIORS.register("planar")(PlanarPosterior)
POSTERIORS.register("iaf")(IAFPosterior)
POSTERIORS.register("deterministic")(DeterministicPosterior)


def image_shape(facts: DataFacts) -> tuple[int, int, int]:
    if len(facts.shape) != 3:
        raise ConfigError(f"this model takes images [C, H, W]; the data are {list(facts.shape)}")
    return tuple(facts.shape)


def decoder_and_likelihood(cfg: ModelConfig, shape: tuple[int, int, int], in_features: int
                           ) -> tuple[nn.Module, nn.Module]:
    """p(x|z) as (network z -> parameters, likelihood), or a PixelCNN that is both (z passes unchanged)."""
    if cfg.decoder == "pixelcnn":
        try:
            return nn.Identity(), PixelCNNLikelihood(shape, in_features, cfg.pixelcnn_dim, cfg.pixelcnn_layers)
        except ValueError as e:
            raise ConfigError(str(e)) from None
    if cfg.decoder != "network":
        raise ConfigError(f"unknown model.decoder {cfg.decoder!r}; known: network, pixelcnn")
    options = dict(hidden=cfg.hidden, channels=cfg.channels, act=cfg.activation)
    likelihood = LIKELIHOODS.get(cfg.likelihood).from_config(shape, cfg)
    return DECODERS.get(cfg.arch)(in_features, likelihood.out_shape(shape), **options), likelihood


def classes(cfg: ModelConfig, facts: DataFacts) -> int:
    """The number of labels a conditional model sees (0: not conditional)."""
    if cfg.conditional and facts.num_classes < 2:
        raise ConfigError(f"model {cfg.name!r} is conditional, but the data have no labels (a labelled dataset "
                          f"has at least 2 classes)")
    return facts.num_classes if cfg.conditional else 0


def require_density(cfg: ModelConfig, why: str) -> None:
    """ConfigError when ``model.posterior`` has no density q(z|x) (a deterministic encoder), which ``why`` needs."""
    if not getattr(POSTERIORS.get(cfg.posterior), "density", True):
        able = ", ".join(n for n in MODELS.names() if MODELS.get(n).family is AUTOENCODER)
        raise ConfigError(f"model.posterior {cfg.posterior!r} is a deterministic encoder with no density q(z|x), "
                          f"which {why}; a deterministic encoder is for the autoencoders ({able})")


@VAE.builder
def build_vae(run: RunConfig, facts: DataFacts) -> nn.Module:
    """A VAE from parts; with ``model.layers`` (latent sizes, bottom first) a hierarchical one."""
    cfg = run.model
    require_density(cfg, "a VAE's ELBO needs (log q(z|x) in its KL)")
    if cfg.layers:
        return build_hierarchical(cfg, facts)
    shape = image_shape(facts)
    num_classes = classes(cfg, facts)
    options = dict(hidden=cfg.hidden, channels=cfg.channels, act=cfg.activation)
    encoder = ENCODERS.get(cfg.arch)(shape, **options)
    decoder, likelihood = decoder_and_likelihood(cfg, shape, cfg.latent_dim + num_classes)
    q = POSTERIORS.get(cfg.posterior)(encoder.out_features + num_classes, cfg.latent_dim, flows=cfg.flows)
    if cfg.prior == "vampprior" and num_classes:
        raise ConfigError("the VampPrior's pseudo-inputs carry no labels: use it without conditional")
    prior = PRIORS.get(cfg.prior)(cfg.latent_dim, components=cfg.prior_components, shape=shape)
    if cfg.classifier:
        return M2(encoder, q, prior, decoder, likelihood, cfg.latent_dim, num_classes,
                  classifier=classifier(cfg, shape, num_classes))
    return VAEModel(encoder, q, prior, decoder, likelihood, cfg.latent_dim, num_classes)


def classifier(cfg: ModelConfig, shape: tuple[int, int, int], num_classes: int) -> nn.Module:
    """M2's q(y|x): model.arch's encoder, then a linear layer to the class logits."""
    if not num_classes:
        raise ConfigError("model.classifier (M2) classifies the labels of a conditional model: set "
                          "model.conditional=true")
    encoder = ENCODERS.get(cfg.arch)(shape, hidden=cfg.hidden, channels=cfg.channels, act=cfg.activation)
    return nn.Sequential(encoder, nn.Linear(encoder.out_features, num_classes))


def build_hierarchical(cfg: ModelConfig, facts: DataFacts) -> HierarchicalVAE:
    shape = image_shape(facts)
    if cfg.conditional or cfg.classifier:
        raise ConfigError("hierarchical models are not conditional (model.conditional or model.classifier with "
                          "model.layers)")
    options = dict(hidden=cfg.hidden, channels=cfg.channels, act=cfg.activation)
    encoder = ENCODERS.get(cfg.arch)(shape, **options)
    decoder, likelihood = decoder_and_likelihood(cfg, shape, cfg.layers[0])
    width = cfg.hidden[-1] if cfg.hidden else 256
    top_in = encoder.out_features if len(cfg.layers) == 1 else width
    top_q = POSTERIORS.get(cfg.posterior)(top_in, cfg.layers[-1], flows=cfg.flows)
    prior = PRIORS.get(cfg.prior)(cfg.layers[-1], components=cfg.prior_components, shape=shape)
    try:
        return HierarchicalVAE(encoder, top_q, prior, decoder, likelihood, cfg.layers, width, cfg.activation,
                               ladder=cfg.inference == "ladder")
    except ValueError as e:
        raise ConfigError(str(e)) from None


AE_POSTERIORS = ("deterministic", "gaussian")


@AUTOENCODER.builder
def build_autoencoder(run: RunConfig, facts: DataFacts) -> Autoencoder:
    """An autoencoder from the VAE's parts: model.arch's encoder and decoder, a deterministic or Gaussian encoder
    (``model.posterior``), the prior N(0, I); a conditional one's decoder sees the label."""
    cfg = run.model
    got = [f"model.layers {cfg.layers}"] if cfg.layers else []
    got += [f"model.posterior {cfg.posterior}"] if cfg.posterior not in AE_POSTERIORS else []
    got += [f"model.prior {cfg.prior}"] if cfg.prior != "standard" else []
    got += [f"model.decoder {cfg.decoder}"] if cfg.decoder != "network" else []
    if got:
        raise ConfigError(f"model {cfg.name!r} is an autoencoder with one latent layer, a deterministic or Gaussian "
                          f"encoder and the prior N(0, I) (model.layers [], model.posterior deterministic|gaussian, "
                          f"model.prior standard, model.decoder network); got {', '.join(got)}")
    shape = image_shape(facts)
    num_classes = classes(cfg, facts)
    encoder = ENCODERS.get(cfg.arch)(shape, hidden=cfg.hidden, channels=cfg.channels, act=cfg.activation)
    decoder, likelihood = decoder_and_likelihood(cfg, shape, cfg.latent_dim + num_classes)
    q = POSTERIORS.get(cfg.posterior)(encoder.out_features, cfg.latent_dim)
    return Autoencoder(encoder, q, StandardNormal(cfg.latent_dim), decoder, likelihood, cfg.latent_dim, num_classes)


@VQ.builder
def build_vqvae(run: RunConfig, facts: DataFacts) -> VQVAE:
    shape, vq = image_shape(facts), run.vq
    if shape[1] % 4 or shape[2] % 4:
        raise ConfigError(f"VQ-VAE encoders halve the image twice: height and width must be multiples of 4, got {shape}")
    likelihood = LIKELIHOODS.get(run.model.likelihood).from_config(shape, run.model)
    encoder, decoder = VQ_NETWORKS.get(run.model.arch)(shape[0], vq.hidden, vq.dim, vq.residual_hidden,
                                                       out_channels=likelihood.out_shape(shape)[0])
    quantizer = VectorQuantizer(vq.codebook_size, vq.dim, ema=vq.ema, decay=vq.decay, kmeans_init=vq.kmeans_init,
                                dead_after=vq.dead_after, lookup_dim=vq.lookup_dim, cosine=vq.cosine)
    return VQVAE(encoder, decoder, quantizer, likelihood)


@CODE_PRIOR.builder
def build_prior(run: RunConfig, facts: DataFacts) -> GatedPixelCNN:
    p = run.code_prior
    return GatedPixelCNN(run.vq.codebook_size, dim=p.dim, layers=p.layers, kernel=p.kernel)


def preset(name: str, family: Family, about: str, presets: dict[str, Any] | None = None) -> None:
    MODELS.register(name)(ModelSpec(family, about, presets or {}))


preset("vae", VAE, "VAE (Kingma & Welling 2014), MLP or conv (model.arch)")
preset("beta-vae", VAE, "beta-VAE (Higgins et al. 2017): KL weighted by beta, with warm-up/cyclical/capacity schedules",
       {"kl": {"beta": 4.0}})
preset("vampprior", VAE, "VAE with a VampPrior (Tomczak & Welling 2018): a mixture of the posterior at learned "
       "pseudo-inputs", {"model": {"prior": "vampprior"}})
preset("flow-vae", VAE, "VAE with a normalizing-flow posterior: planar (Rezende & Mohamed 2015) or IAF (Kingma et al. "
       "2016)", {"model": {"posterior": "iaf"}})
preset("hvae", VAE, "hierarchical VAE: Ladder VAE (Sønderby et al. 2016) or bottom-up (model.inference), model.layers",
       {"model": {"layers": [32, 16]}})
preset("beta-tcvae", VAE, "beta-TC-VAE (Chen et al. 2018): the KL split into MI, total correlation, dimension-wise KL",
       {"objective": {"name": "beta-tc"}})
preset("factorvae", VAE, "FactorVAE (Kim & Mnih 2018): total correlation from a discriminator with its own optimizer",
       {"objective": {"name": "factor"}})
preset("dip-vae", VAE, "DIP-VAE (Kumar et al. 2018): the aggregate posterior's covariance pushed to I (objective "
       "dip-i/ii)", {"objective": {"name": "dip-ii"}})
preset("pixel-vae", VAE, "VAE with a gated PixelCNN decoder conditioned on z (PixelVAE); free bits keep z in use",
       {"model": {"decoder": "pixelcnn"}, "kl": {"free_bits": 0.25}, "data": {"binarize": "dynamic"}})
preset("linear-vae", VAE, "linear-Gaussian VAE: probabilistic PCA (Tipping & Bishop 1999), its log p(x) exact "
       "(nll_exact)",
       # sigma learned from 1, not 0.1: after 400 steps on digits (d = 8) the largest principal angle to PCA's
       # subspace was 18 degrees, not 70; lr 0.01: at 0.001 log sigma moved too slowly (sigma 0.6 after 500 steps)
       {"model": {"arch": "mlp", "hidden": [], "likelihood": "gaussian", "learn_sigma": True,
                  "sigma_mode": "isotropic", "sigma": 1.0}, "data": {"binarize": "none"}, "train": {"lr": 0.01}})
preset("cvae", VAE, "conditional VAE (Sohn et al. 2015): encoder and decoder see the class label",
       {"model": {"conditional": True}})
preset("m2", VAE, "M2 (Kingma et al. 2014): a CVAE with a classifier q(y|x), semi-supervised with --labels N "
       "(objective.m2.alpha weighs the classifier's loss)",
       {"model": {"conditional": True, "classifier": True}, "objective": {"name": "m2"}})
preset("infovae", VAE, "InfoVAE (Zhao et al. 2019): recon + (1 - alpha) KL + (alpha + lambda - 1) MMD(q(z) || p(z))",
       {"objective": {"name": "infovae"}})
preset("mmd-vae", VAE, "MMD-VAE: InfoVAE with alpha = 1, no KL (Zhao et al. 2019)",
       {"objective": {"name": "infovae", "info": {"alpha": 1.0}}})
AE_DATA = {"binarize": "none"}  # autoencoders reconstruct the grey images
preset("wae-mmd", AUTOENCODER, "Wasserstein autoencoder, MMD penalty (Tolstikhin et al. 2018): deterministic encoder, "
       "||x - x^||^2 + lambda MMD, inverse multiquadratic kernels",
       {"model": {"posterior": "deterministic"}, "data": AE_DATA, "objective": {"name": "wae-mmd"}})
preset("wae-gan", AUTOENCODER, "Wasserstein autoencoder, GAN penalty (Tolstikhin et al. 2018): a latent discriminator "
       "with its own optimizer", {"model": {"posterior": "deterministic"}, "data": AE_DATA,
                                  "objective": {"name": "wae-gan"}})
preset("aae", AUTOENCODER, "adversarial autoencoder (Makhzani et al. 2015); conditional: the supervised AAE, the label "
       "given to the decoder", {"model": {"posterior": "deterministic"}, "data": AE_DATA, "objective": {"name": "aae"}})
preset("vae-gan", AUTOENCODER, "VAE-GAN (Larsen et al. 2016): reconstruction in an image discriminator's features",
       {"model": {"posterior": "gaussian"}, "data": AE_DATA, "objective": {"name": "vae-gan"}})
# The WAE paper's settings (Tolstikhin et al. 2018, §4): MNIST d_z 8, lambda 10, batches of 100, Adam with beta1 0.5
# and lr 1e-3 (the adversary's 5e-4), 100 epochs; CelebA 64x64 d_z 64, lambda 100 (the paper's CelebA learning rates
# and epochs differ; these keep MNIST's). Their networks are DCGAN-like convolutions; these take model.arch's.
WAE_TRAIN = {"batch_size": 100, "lr": 1e-3, "adam_beta1": 0.5, "epochs": 100}
for _penalty, _key in (("mmd", "wae"), ("gan", "wae_gan")):
    preset(f"wae-{_penalty}-mnist", AUTOENCODER, f"WAE-{_penalty.upper()} with the paper's MNIST settings",
           {"model": {"posterior": "deterministic", "latent_dim": 8}, "data": {"name": "mnist", **AE_DATA},
            "objective": {"name": f"wae-{_penalty}", _key: {"lam": 10.0}}, "train": WAE_TRAIN})
    preset(f"wae-{_penalty}-celeba", AUTOENCODER, f"WAE-{_penalty.upper()} with the paper's CelebA 64x64 d_z and "
           f"lambda", {"model": {"posterior": "deterministic", "latent_dim": 64, "arch": "conv64",
                                 "likelihood": "gaussian"},
                       "data": {"name": "celeba", "image_size": 64, **AE_DATA},
                       "objective": {"name": f"wae-{_penalty}", _key: {"lam": 100.0}}, "train": WAE_TRAIN})
preset("vqvae", VQ, "VQ-VAE (van den Oord et al. 2017): EMA codebook, k-means init, dead-code restarts, PixelCNN prior",
       {"model": {"arch": "vq-conv", "likelihood": "gaussian", "sigma": 0.1}, "data": {"binarize": "none"},
        "objective": {"name": "vq"}})
preset("pixelcnn-prior", CODE_PRIOR, "gated PixelCNN (van den Oord et al. 2016) over a VQ-VAE's codes; made by "
       "`vaelab train-prior`", {"objective": {"name": "prior"}, "data": {"binarize": "none"}})


def family_of(cfg: RunConfig) -> Family:
    """The family of the model a run config names."""
    return MODELS.get(cfg.model.name).family


def build_model(cfg: RunConfig | ModelConfig, facts: DataFacts) -> nn.Module:
    """The model a run config describes (a bare ModelConfig stands for a run with defaults elsewhere), built for
    data with ``facts``."""
    run = cfg if isinstance(cfg, RunConfig) else RunConfig(model=cfg)
    return family_of(run).build(run, facts)
