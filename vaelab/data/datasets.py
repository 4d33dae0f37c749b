"""The registered datasets and :func:`load_dataset`.

Each registered loader takes ``(data_dir, Options)`` and returns a :class:`Dataset`.
The files each needs, with their checksums, are in :data:`SOURCES`. Datasets with options of their own (image
size, crop, ...) are in :data:`DATASET_OPTIONS`: ``load_dataset`` passes its other keyword arguments into those.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from ..registry import Registry
from . import celeba as celeba_files
from . import files, frey, omniglot
from .amat import parse_amat
from .base import Dataset, Split, check_finite, hold_out
from .cifar import parse_batch
from .errors import DataError
from .factors import FactorSplits, factor_split_dataset
from .files import Archive, Converted, Folder, FileSpec, Source
from .idx import check_counts, images_size, labels_size, parse_images, parse_labels
from .cache import cached_images
from .images import ImageOptions, find_images


@dataclass(frozen=True)
class Options:
    """The keyword arguments of :func:`load_dataset`, passed on to each loader."""

    val_size: int | None = None
    seed: int = 0
    download: bool = True
    verify: bool = True
    extra: Any = None  # the dataset's own options (its DATASET_OPTIONS entry, updated), else None


DATASETS: Registry[Callable[[Folder, Options], Dataset]] = Registry("dataset")
IDX_TRAIN = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte")  # (images, labels) file names
IDX_TEST = ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
CIFAR_TRAIN = tuple(f"data_batch_{i}.bin" for i in range(1, 6))
CIFAR_TEST = "test_batch.bin"

# Config values a dataset's images call for, applied by `vaelab train` under the model name's presets: grey and colour
# images whose literature quotes bits per dimension are scored by the discretized logistic, a pmf over their 256
# values, not binarized. Datasets not named here keep the defaults: a Bernoulli likelihood with dynamic binarization,
# the protocol of the MNIST and Omniglot results (Burda et al. 2016), and of binary data.
GREY_PRESET = {"model": {"likelihood": "discretized-logistic"}, "data": {"binarize": "none"}}
DATASET_PRESETS: dict[str, dict[str, Any]] = {
    name: GREY_PRESET for name in ("fashion-mnist", "cifar10", "celeba", "image-folder", "frey-faces")}

# Datasets that take keyword arguments of their own in load_dataset: their defaults, which those replace.
DATASET_OPTIONS: dict[str, Any] = {"image-folder": ImageOptions(), "celeba": celeba_files.CelebAOptions(crop=140)}
DATASET_OPTIONS.update({name: FactorSplits() for name in ("dsprites", "dsprites-procedural", "3dshapes")})

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
    "cifar10": Source(
        name="cifar10",
        folder="cifar10",
        mirror="https://www.cs.toronto.edu/~kriz/",
        files=tuple(FileSpec(name, None) for name in (*CIFAR_TRAIN, CIFAR_TEST)),  # no per-file sha256 published
        archive=Archive(  # with the md5 published on https://www.cs.toronto.edu/~kriz/cifar.html
            "cifar-10-binary.tar.gz", md5="c32a1d4ab5d03f1284b67883e8d87530", folder="cifar-10-batches-bin"
        ),
    ),
    "frey-faces": Source(
        name="frey-faces",
        folder="frey_faces",
        mirror="https://cs.nyu.edu/~roweis/data/",
        files=(FileSpec(frey.NPY, "2177ea074dc1d5ce35294c687dfce79ced65db6d7b745d95a2e1757fcfbe41c0"),),
        converted=Converted(frey.MAT, frey.convert_mat),  # Roweis' MATLAB file, with no published checksum
    ),
    "omniglot": Source(
        name="omniglot",
        folder="omniglot",
        mirror="https://raw.githubusercontent.com/brendenlake/omniglot/master/python/",
        gzipped=False,
        files=(
            FileSpec(omniglot.ZIPS[0], "f38eb80f801274ac2b4dff5b24289016bfaba4a7d5bb50deebf27104ad6cb8a4"),
            FileSpec(omniglot.ZIPS[1], "3ccaa407515a8778e5d0861875af38b17e418f301ad5bb3b5a6b65d901a41c7f"),
        ),
    ),
    # Found by celeba.find, not files.locate: a folder of JPEGs, with no file list and no download.
    "celeba": Source(name="celeba", folder="celeba", files=(), mirror=celeba_files.PAGE),
}


def load_dataset(
    name: str,
    data_dir: Folder = None,
    *,
    val_size: int | None = None,
    seed: int = 0,
    download: bool = True,
    verify: bool = True,
    **options: Any,
) -> Dataset:
    """Load dataset ``name`` (see ``DATASETS.names()``) with train, val and test splits.

    data_dir: the folder that directly holds the files; searched before $VAELAB_DATA/<folder>, the cache
    (~/.cache/vaelab/<folder>) and system places, and the download target when given.
    val_size: rows carved from train for validation (a per-dataset default when None; unused by datasets
    with an official validation split). seed: fixes that carving.
    download: fetch missing files from the official mirror. verify: check each file's sha256.
    options: the dataset's own, for those in DATASET_OPTIONS: image-folder and celeba take ``size``, ``crop``
    and ``channels`` (see ImageOptions), e.g. ``load_dataset("celeba", size=32)``, celeba also ``attributes``
    (see CelebAOptions); factor datasets ``train_size`` and ``test_size``. Others take none.
    """
    loader = DATASETS.get(name)
    data = loader(data_dir, Options(val_size, seed, download, verify, _own_options(name, options)))
    check_finite(data)
    return data


def _own_options(name: str, options: dict[str, Any]) -> Any:
    """Dataset ``name``'s DATASET_OPTIONS entry with ``options`` replacing its defaults (None if it has none)."""
    default = DATASET_OPTIONS.get(name)
    known = [field.name for field in dataclasses.fields(default)] if default is not None else []
    if unknown := sorted(set(options) - set(known)):
        takes = f"takes only the options {', '.join(known)}" if known else "takes no options of its own"
        raise DataError(f"dataset {name!r} {takes}; got {', '.join(unknown)}")
    return None if default is None else dataclasses.replace(default, **options)


def _images(x: np.ndarray, scale: float) -> torch.Tensor:
    """[N, H, W] or [N, C, H, W] pixel values (a writable array) -> [N, C, H, W]: 8-bit images (uint8, ``scale``
    255) kept as uint8 (:class:`Split` converts them per batch), others float32 divided by ``scale``."""
    images = torch.from_numpy(x)
    images = images.unsqueeze(1) if images.ndim == 3 else images
    return images if images.dtype == torch.uint8 and scale == 255 else images.float().div_(scale)


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
    sizes = {IDX_TRAIN[0]: images_size, IDX_TRAIN[1]: labels_size, IDX_TEST[0]: images_size, IDX_TEST[1]: labels_size}
    arrays = files.load_all(source, paths, parsers, opt.verify, sizes)
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
    A fixed test split of 297, then val (default 200) carved by ``seed``; download, verify unused; no data_dir.
    """
    from sklearn.datasets import load_digits

    files.no_files("digits", data_dir)
    bunch = load_digits()
    full = Split(_images(bunch.images, 16), torch.from_numpy(bunch.target.astype(np.int64)))
    rest, test = hold_out(full, 297, seed=0)
    train, val = hold_out(rest, 200 if opt.val_size is None else opt.val_size, opt.seed)
    return Dataset("digits", train, val, test, num_classes=10, binary=False)


@DATASETS.register("frey-faces")
def frey_faces(data_dir: Folder, opt: Options) -> Dataset:
    """Frey Faces: 1,965 unlabelled grey 28x20 images of one face (B. J. Frey), 8-bit values k / 255.

    The continuous-data benchmark of D. P. Kingma, M. Welling, "Auto-Encoding Variational Bayes", ICLR 2014, and of
    J. M. Tomczak, M. Welling, "VAE with a VampPrior", AISTATS 2018, whose split sizes are the default: test 200
    (fixed, seed 0), val 200 (or val_size, carved by seed), train 1565. Reads ``frey_faces_uint8.npy`` (pickle-free);
    a download fetches Roweis' ``frey_rawface.mat`` and converts it (see vaelab.data.frey).
    """
    source = SOURCES["frey-faces"]
    paths = files.locate(source, data_dir, opt.download)
    faces = files.load_all(source, paths, {frey.NPY: frey.parse_npy}, opt.verify)[frey.NPY]
    rest, test = hold_out(Split(_images(faces.copy(), 255), None), 200, seed=0)
    train, val = hold_out(rest, 200 if opt.val_size is None else opt.val_size, opt.seed)
    return Dataset("frey-faces", train, val, test, num_classes=0, binary=False)


@DATASETS.register("omniglot")
def omniglot_small(data_dir: Folder, opt: Options) -> Dataset:
    """Omniglot's two small background sets: 4,840 handwritten characters of 8 alphabets, 28x28, labels = alphabet.

    B. M. Lake, R. Salakhutdinov, J. B. Tenenbaum, "Human-level concept learning through probabilistic program
    induction", Science 350, 2015. ``images_background_small1.zip`` and ``..._small2.zip``, read without unpacking:
    105x105 PNGs inverted and area-averaged to 28x28 grey (vaelab.data.omniglot). Not the IWAE paper's 28x28
    Omniglot: its numbers do not compare with theirs. Labels 0-7 are the alphabets in sorted name order (Balinese,
    Early_Aramaic, Greek, Japanese_(katakana), Korean, Latin, Sanskrit, Tagalog). No standard split exists for these
    sets: test a tenth (fixed, seed 0), val a tenth (or val_size, carved by seed).
    """
    source = SOURCES["omniglot"]
    paths = files.locate(source, data_dir, opt.download)
    sets = files.load_all(source, paths, {name: omniglot.parse_zip for name in omniglot.ZIPS}, opt.verify)
    images, labels, alphabets = omniglot.merge(list(sets.values()))
    full = Split(_images(images, 255), torch.from_numpy(labels))
    train, val, test = (full.take(rows) for rows in _carve(len(full), opt))
    return Dataset("omniglot", train, val, test, num_classes=len(alphabets), binary=False)


@DATASETS.register("cifar10")
def cifar10(data_dir: Folder, opt: Options) -> Dataset:
    """CIFAR-10: 50k train / 10k test 32x32 colour images, 10 classes, from the binary version only.

    A. Krizhevsky, "Learning Multiple Layers of Features from Tiny Images", tech. report, U. Toronto, 2009.
    Default split: train 45000 / val 5000 / test 10000. Reads ``data_batch_1.bin`` ... ``data_batch_5.bin`` and
    ``test_batch.bin`` (from ``cifar-10-batches-bin/``, or the folder itself), never the Python pickles.
    No per-file sha256 is published, so files found on disk are checked for their structure only (whole
    3073-byte records, labels 0-9), whatever ``verify`` says; a download is checked against the md5 that the
    CIFAR page publishes for ``cifar-10-binary.tar.gz`` before anything is unpacked.
    """
    source = SOURCES["cifar10"]
    paths = files.locate(source, data_dir, opt.download)
    batches = files.load_all(source, paths, {spec.name: parse_batch for spec in source.files}, opt.verify)
    full_train, test = _cifar_split([batches[name] for name in CIFAR_TRAIN]), _cifar_split([batches[CIFAR_TEST]])
    del batches
    train, val = hold_out(full_train, 5000 if opt.val_size is None else opt.val_size, opt.seed)
    return Dataset("cifar10", train, val, test, num_classes=10, binary=False)


def _cifar_split(batches: list[tuple[np.ndarray, np.ndarray]]) -> Split:
    """The split of parsed CIFAR-10 batch files (images, labels), in file order."""
    x, y = (np.concatenate(arrays) for arrays in zip(*batches))
    return Split(_images(x, 255), torch.from_numpy(y.astype(np.int64)))


def _carve(n: int, opt: Options) -> list[torch.Tensor]:
    """Row numbers of train, val and test among ``n`` images: test a tenth fixed by seed 0, val a tenth (or
    ``opt.val_size``) fixed by ``opt.seed``; each at least one image once there are three."""
    tenth = max(1, n // 10) if n >= 3 else 0
    rest, test = hold_out(Split(torch.arange(n), None), tenth, seed=0)  # carving row numbers, not images
    train, val = hold_out(rest, tenth if opt.val_size is None else opt.val_size, opt.seed)
    return [train.pixels, val.pixels, test.pixels]


def _image_dataset(
    name: str, paths: list[Path], labels: np.ndarray | None, num_classes: int, parts: list[torch.Tensor],
    image_opt: ImageOptions, attributes: tuple[tuple[str, ...], np.ndarray | None] = ((), None),
) -> Dataset:
    """The dataset of the image files ``paths`` (with ``labels`` or None) split by ``parts``: train, val and test
    row numbers; ``attributes``: (names, int64 [N, A] per file or None), each split's rows of it.

    The images are decoded split after split, once, into a memory-mapped uint8 cache (:mod:`~vaelab.data.cache`), so
    each split is a slice of it: no copies, and no more resident memory than the batches read.
    """
    order = torch.cat(parts)
    x = cached_images([paths[i] for i in order.tolist()], image_opt)
    sizes = [len(part) for part in parts]
    in_order = lambda a: [None] * 3 if a is None else torch.from_numpy(a)[order].split(sizes)  # noqa: E731
    names, table = attributes
    splits = [Split(xs, y, attributes=a) for xs, y, a in zip(x.split(sizes), in_order(labels), in_order(table))]
    return Dataset(name, *splits, num_classes=num_classes, binary=False, attribute_names=names)


@DATASETS.register("image-folder")
def image_folder(data_dir: Folder, opt: Options) -> Dataset:
    """Any folder of images (.png .jpg .jpeg .bmp .webp, any case), found recursively, as RGB or grey squares.

    Each image is centre-cropped to a square (``crop`` pixels; default its shorter side) and resized (bicubic)
    to ``size`` (default 64); ``channels`` 3 or 1. Pass them to load_dataset: ``load_dataset("image-folder",
    folder, size=32, crop=100, channels=1)``. When the images sit in subfolders, each immediate subfolder is
    a class (labels 0.. in sorted name order); else no labels. Split: test a tenth (fixed), val a tenth (or
    val_size, carved by seed), at least one each from 3 images. data_dir is required; download, verify unused.
    """
    if data_dir is None:
        raise DataError("image-folder needs data_dir: the folder of the images (in class subfolders, or not)")
    paths, labels, classes = find_images(Path(data_dir))
    return _image_dataset("image-folder", paths, labels, len(classes), _carve(len(paths), opt), opt.extra)


@DATASETS.register("celeba")
def celeba(data_dir: Folder, opt: Options) -> Dataset:
    """CelebA, aligned and cropped: 202,599 178x218 face JPEGs, as 3x64x64 images, with their 40 attributes.

    Z. Liu, P. Luo, X. Wang, X. Tang, "Deep Learning Face Attributes in the Wild", ICCV 2015. The usual
    preprocessing for generative models: centre crop 140x140, resize to 64x64 (``size``, ``crop``, ``channels``
    overridable as for image-folder). Looks for ``img_align_celeba/`` (or a folder of its JPEGs) in data_dir,
    $VAELAB_DATA/celeba and the cache. Split: the official 162,770 / 19,867 / 19,962 from
    ``list_eval_partition.txt`` beside the image folder (val_size and seed unused); without it, image-folder's
    seeded 80/10/10. With ``list_attr_celeba.txt`` beside it, every split carries each image's attributes
    (``split.attributes`` [N, 40] of 0/1, names in ``dataset.attribute_names``), and ``attributes`` (a list of
    names) makes their pattern the labels, sum_i 2^i a_i, for a CVAE (``data.attributes=[Male,Smiling]``: 4
    classes); else unlabelled. Never downloaded: CelebA is behind a form; the error says where to get it.
    """
    folder, paths = celeba_files.find(files.search_dirs(SOURCES["celeba"], data_dir))
    partition = celeba_files.beside(folder, celeba_files.PARTITION)
    parts = _carve(len(paths), opt) if partition is None else celeba_files.parse_partition(partition, paths)
    attribute_file = celeba_files.beside(folder, celeba_files.ATTRIBUTES)
    names, table = ((), None) if attribute_file is None else celeba_files.parse_attributes(attribute_file, paths)
    labels, classes = celeba_files.pattern_labels(names, table, opt.extra.attributes, folder)
    return _image_dataset("celeba", paths, labels, classes, parts, opt.extra, (names, table))


@DATASETS.register("dsprites")
def dsprites(data_dir: Folder, opt: Options) -> Dataset:
    """dSprites: binary 64x64 sprites, a seeded random subset of the official file's 737,280 (factors.DSprites).

    L. Matthey, I. Higgins, D. Hassabis, A. Lerchner, "dSprites: Disentanglement testing Sprites dataset", 2017.
    Reads ``dsprites_ndarray_co1sh3sc6or40x32y32_64x64.npz`` (data_dir, $VAELAB_DATA/dsprites, the cache; else
    downloaded), checked by structure since no sha256 is published; never unpickles its metadata. Default split:
    train 20000 / val 2000 / test 2000 distinct images drawn by ``seed``; ``train_size``, ``val_size`` and
    ``test_size`` change it. Unlabelled: the factors are for metrics, through ``load_factor_dataset``.
    """
    return factor_split_dataset("dsprites", data_dir, opt)


@DATASETS.register("dsprites-procedural")
def dsprites_procedural(data_dir: Folder, opt: Options) -> Dataset:
    """dSprites' factor grid rendered by vaelab (no file): a seeded random subset (factors.ProceduralDSprites).

    Shapes square, ellipse, heart; 6 scales, 40 orientations, 32 x 32 positions; binary 64x64, approximating the
    official sprites. Default split: train 20000 / val 2000 / test 2000 distinct images drawn by ``seed``;
    ``train_size``, ``val_size`` and ``test_size`` change it. download and verify are unused; no data_dir.
    """
    return factor_split_dataset("dsprites-procedural", data_dir, opt)


@DATASETS.register("3dshapes")
def shapes3d(data_dir: Folder, opt: Options) -> Dataset:
    """3D Shapes: 64x64 colour renders, a seeded random subset of the official 480,000 (factors.Shapes3D).

    C. Burgess, H. Kim, "3D Shapes Dataset", 2018. Reads ``3dshapes.h5`` with h5py (data_dir,
    $VAELAB_DATA/3dshapes, the cache; else downloaded), checked by structure since no sha256 is published.
    Default split: train 20000 / val 2000 / test 2000 distinct images drawn by ``seed``; ``train_size``,
    ``val_size`` and ``test_size`` change it. Unlabelled: the factors are for metrics, via ``load_factor_dataset``.
    """
    return factor_split_dataset("3dshapes", data_dir, opt)
