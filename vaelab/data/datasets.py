"""The registered datasets and :func:`load_dataset`.

Each registered loader takes ``(data_dir, Options)`` and returns a :class:`Dataset`.
The files each needs, with their checksums, are in :data:`SOURCES`.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from ..registry import Registry
from . import files
from .amat import parse_amat
from .base import Dataset, Split, hold_out
from .files import Folder, FileSpec, Source
from .idx import check_counts, parse_images, parse_labels


@dataclass(frozen=True)
class Options:
    """The keyword arguments of :func:`load_dataset`, passed on to each loader."""

    val_size: int | None = None
    seed: int = 0
    download: bool = True
    verify: bool = True


DATASETS: Registry[Callable[[Folder, Options], Dataset]] = Registry("dataset")
IDX_TRAIN = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte")  # (images, labels) file names
IDX_TEST = ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")

SOURCES: dict[str, Source] = {
    "mnist": Source(
        name="mnist",
        folder="mnist",
        mirror="https://ossci-datasets.s3.amazonaws.com/mnist/",
        files=(
            FileSpec("train-images-idx3-ubyte", "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db"),
            FileSpec("train-labels-idx1-ubyte", "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5"),
            FileSpec("t10k-images-idx3-ubyte", "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7"),
            FileSpec("t10k-labels-idx1-ubyte", "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2"),
        ),
    ),
    "fashion-mnist": Source(
        name="fashion-mnist",
        folder="fashion-mnist",
        mirror="http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
        files=(
            FileSpec("train-images-idx3-ubyte", "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888"),
            FileSpec("train-labels-idx1-ubyte", "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9"),
            FileSpec("t10k-images-idx3-ubyte", "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b"),
            FileSpec("t10k-labels-idx1-ubyte", "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34"),
        ),
        standard_dirs=("/usr/share/datasets/fashion-mnist",),
        advice="On Debian or Ubuntu: apt-get install dataset-fashion-mnist.",
    ),
    "binarized-mnist": Source(
        name="binarized-mnist",
        folder="binarized_mnist",
        mirror="http://www.cs.toronto.edu/~larocheh/public/datasets/binarized_mnist/",
        gzipped=False,
        files=(
            FileSpec("binarized_mnist_train.amat", "ad693b29f94c14277b095f5238ddefbbdaaae0939789dd2f4f0205278cee3e4d"),
            FileSpec("binarized_mnist_valid.amat", "1de3d397c40fe8eeb33dafd4099a1f665ec01e96d9be234aaeeac8a34930e2e2"),
            FileSpec("binarized_mnist_test.amat", "e6687bfea3f820c174f33b7865140b2a2dd2930ef786f35d45795fc193b5ab2c"),
        ),
    ),
}


def load_dataset(
    name: str,
    data_dir: Folder = None,
    *,
    val_size: int | None = None,
    seed: int = 0,
    download: bool = True,
    verify: bool = True,
) -> Dataset:
    """Load dataset ``name`` (see ``DATASETS.names()``) with train, val and test splits.

    data_dir: the folder that directly holds the files; searched before $VAELAB_DATA/<folder>, the cache
    (~/.cache/vaelab/<folder>) and system places, and the download target when given.
    val_size: rows carved from train for validation (a per-dataset default when None; unused by datasets
    with an official validation split). seed: fixes that carving.
    download: fetch missing files from the official mirror. verify: check each file's sha256.
    """
    return DATASETS.get(name)(data_dir, Options(val_size, seed, download, verify))


def _images(x: np.ndarray, scale: float) -> torch.Tensor:
    """[N, H, W] pixel values (a writable array) -> float32 [N, 1, H, W] divided by ``scale``."""
    return torch.from_numpy(x).unsqueeze(1).float().div_(scale)


def _labelled(arrays: dict[str, np.ndarray], paths: dict[str, Path], images: str, labels: str) -> Split:
    """The split from the parsed IDX ``images`` and ``labels`` files."""
    check_counts(arrays[images], arrays[labels], paths[images], paths[labels])
    return Split(_images(arrays[images], 255), torch.from_numpy(arrays[labels].astype(np.int64)))


def _idx_dataset(name: str, data_dir: Folder, opt: Options) -> Dataset:
    """A 28x28 labelled IDX dataset (the MNIST layout): the official train and test, val carved from train."""
    source = SOURCES[name]
    paths = files.locate(source, data_dir, opt.download)
    parsers = {
        IDX_TRAIN[0]: parse_images, IDX_TRAIN[1]: parse_labels, IDX_TEST[0]: parse_images, IDX_TEST[1]: parse_labels
    }
    arrays = files.load_all(source, paths, parsers, opt.verify)
    full_train, test = _labelled(arrays, paths, *IDX_TRAIN), _labelled(arrays, paths, *IDX_TEST)
    train, val = hold_out(full_train, 5000 if opt.val_size is None else opt.val_size, opt.seed)
    return Dataset(name, train, val, test, num_classes=10, binary=False)


@DATASETS.register("mnist")
def mnist(data_dir: Folder, opt: Options) -> Dataset:
    """MNIST: 60k train / 10k test handwritten digits, 28x28 grey, labels 0-9.

    Y. LeCun, L. Bottou, Y. Bengio, P. Haffner, "Gradient-based learning applied to document recognition",
    Proc. IEEE 86(11), 1998. Default split: train 55000 / val 5000 / test 10000.
    """
    return _idx_dataset("mnist", data_dir, opt)


@DATASETS.register("fashion-mnist")
def fashion_mnist(data_dir: Folder, opt: Options) -> Dataset:
    """Fashion-MNIST: 60k train / 10k test clothing images, 28x28 grey, 10 classes; MNIST's layout.

    H. Xiao, K. Rasul, R. Vollgraf, "Fashion-MNIST: a Novel Image Dataset for Benchmarking Machine
    Learning Algorithms", arXiv:1708.07747, 2017. Default split: train 55000 / val 5000 / test 10000.
    """
    return _idx_dataset("fashion-mnist", data_dir, opt)


@DATASETS.register("binarized-mnist")
def binarized_mnist(data_dir: Folder, opt: Options) -> Dataset:
    """Statically binarized MNIST: 50k / 10k / 10k unlabelled 28x28 images in {0, 1}, the official splits.

    H. Larochelle, I. Murray, "The Neural Autoregressive Distribution Estimator", AISTATS 2011; the
    binarization follows R. Salakhutdinov, I. Murray, ICML 2008. The fixed binarization of IWAE
    (Burda et al. 2016) and VampPrior (Tomczak & Welling 2018). val_size and seed are unused.
    """
    source = SOURCES["binarized-mnist"]
    paths = files.locate(source, data_dir, opt.download)
    arrays = files.load_all(source, paths, {spec.name: parse_amat for spec in source.files}, opt.verify)
    train, val, test = (Split(_images(a.reshape(-1, 28, 28), 1), None) for a in arrays.values())
    return Dataset("binarized-mnist", train, val, test, num_classes=0, binary=True)


@DATASETS.register("digits")
def digits(data_dir: Folder, opt: Options) -> Dataset:
    """scikit-learn's bundled 8x8 digits (1797 images, 17 grey levels, labels 0-9): needs no download.

    The test set of UCI "Optical Recognition of Handwritten Digits" (E. Alpaydin, C. Kaynak, 1998).
    A fixed test split of 297, then val (default 200) carved by ``seed``; data_dir, download, verify unused.
    """
    from sklearn.datasets import load_digits

    bunch = load_digits()
    full = Split(_images(bunch.images, 16), torch.from_numpy(bunch.target.astype(np.int64)))
    rest, test = hold_out(full, 297, seed=0)
    train, val = hold_out(rest, 200 if opt.val_size is None else opt.val_size, opt.seed)
    return Dataset("digits", train, val, test, num_classes=10, binary=False)
