"""Models: networks, posteriors and flows, priors, likelihoods, assembled into VAEs, hierarchical VAEs, autoencoders
and VQ-VAEs;
model families (:mod:`.family`) and the model names over their builders (:mod:`.build`); trained models read back
from run directories (:mod:`.load`)."""
from .autoencoder import AETerms, Autoencoder
from .build import MODELS, POSTERIORS, ModelSpec, build_model, family_of
from .family import AUTOENCODER, CODE_PRIOR, FAMILIES, VAE as VAE_FAMILY, VQ as VQ_FAMILY, Family
from .likelihood import LIKELIHOODS, Likelihood
from .load import load, load_run, run_facts
from .pixelcnn import GatedPixelCNN
from .posterior import DiagonalGaussian
from .prior import StandardNormal
from .quantizer import VectorQuantizer
from .vae import VAE, ELBOTerms
from .vqvae import VQVAE

__all__ = ["MODELS", "POSTERIORS", "ModelSpec", "build_model", "family_of", "FAMILIES", "Family", "VAE_FAMILY",
           "VQ_FAMILY", "AUTOENCODER", "CODE_PRIOR", "VAE", "Autoencoder", "AETerms", "VQVAE", "VectorQuantizer",
           "GatedPixelCNN", "ELBOTerms", "DiagonalGaussian", "StandardNormal", "Likelihood", "LIKELIHOODS", "load",
           "load_run", "run_facts"]
