"""Datasets for vaelab: MNIST, Fashion-MNIST, statically binarized MNIST and scikit-learn's 8x8 digits.

``load_dataset(name)`` finds the standard files (``data_dir``, ``$VAELAB_DATA/<folder>``, ``~/.cache/vaelab``,
system places), downloads them when missing, checks their sha256, and returns train/val/test tensors.
"""
from .base import Dataset, Split
from .datasets import DATASETS, load_dataset
from .errors import DataError

__all__ = ["Dataset", "Split", "DataError", "DATASETS", "load_dataset"]
