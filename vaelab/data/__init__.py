"""Datasets for vaelab: MNIST, Fashion-MNIST, statically binarized MNIST, scikit-learn's 8x8 digits, CIFAR-10,
CelebA and any folder of images.

``load_dataset(name)`` finds the standard files (``data_dir``, ``$VAELAB_DATA/<folder>``, ``~/.cache/vaelab``,
system places), downloads them when missing, checks their sha256 (CIFAR-10: the archive's md5), and returns
train/val/test tensors. Image folders and CelebA take their own options: ``load_dataset("celeba", size=32)``.
"""
from .base import Dataset, Split
from .datasets import DATASET_OPTIONS, DATASETS, load_dataset
from .errors import DataError
from .images import ImageOptions

__all__ = ["Dataset", "Split", "DataError", "DATASETS", "DATASET_OPTIONS", "ImageOptions", "load_dataset"]
