"""Datasets for vaelab: MNIST, Fashion-MNIST, statically binarized MNIST, scikit-learn's 8x8 digits, CIFAR-10,
CelebA and any folder of images; factor datasets (dSprites, 3D Shapes) for disentanglement metrics.

``load_dataset(name)`` finds the standard files (``data_dir``, ``$VAELAB_DATA/<folder>``, ``~/.cache/vaelab``,
system places), downloads them when missing, checks their sha256 (CIFAR-10: the archive's md5), and returns
train/val/test tensors. Image folders and CelebA take their own options: ``load_dataset("celeba", size=32)``.
``load_factor_dataset(name)`` gives a factor dataset itself (a :class:`FactorDataset`): images by factor values.
"""
from .base import DataFacts, Dataset, Split, check_finite
from .datasets import DATASET_OPTIONS, DATASET_PRESETS, DATASETS, load_dataset
from .errors import DataError
from .factors import DSprites, FactorDataset, NpzFactorDataset, ProceduralDSprites, Shapes3D, load_factor_dataset
from .images import ImageOptions

__all__ = ["DataFacts", "Dataset", "Split", "check_finite", "DataError", "DATASETS", "DATASET_OPTIONS", "DATASET_PRESETS",
           "ImageOptions", "load_dataset",
           "FactorDataset", "DSprites", "ProceduralDSprites", "Shapes3D", "NpzFactorDataset", "load_factor_dataset"]
