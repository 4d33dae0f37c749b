"""Dataset containers: a :class:`Dataset` holds three :class:`Split` s of image tensors; :class:`DataFacts` is what
a model is built for."""
from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any

import torch

from . import cache
from .errors import DataError

SPLITS = ("train", "val", "test")


@dataclass
class Split:
    """Images and labels ``y`` (int64 [N], or None; -1: hidden, semi-supervised).

    ``pixels``: what the split stores, [N, C, H, W]: uint8 0..255 for 8-bit images (4x smaller than float32; may be a
    memory-mapped cache), float32 in [0, 1] for other images, or int64 codes (a VQ-VAE's code grids [N, H', W']).
    :attr:`x` is the float32 view of all of it (uint8 / 255; other dtypes as stored); training and evaluation take
    batches, :meth:`batch`, converted on the device, so a large uint8 split is never turned into float whole.

    ``source``: when ``x`` is a binarization (:mod:`~vaelab.data.binarize`), the grey images its pixels were drawn
    from, else None. A Bernoulli likelihood scores ``x``; pictures and image metrics show and compare with
    :attr:`images`, what the dataset holds. ``attributes``: binary attributes of each image [N, A] (int64 0/1; CelebA's
    ``list_attr_celeba.txt``), their names in :attr:`Dataset.attribute_names`, or None."""

    pixels: torch.Tensor
    y: torch.Tensor | None
    source: torch.Tensor | None = None
    attributes: torch.Tensor | None = None

    def __len__(self) -> int:
        return self.pixels.shape[0]

    @property
    def eight_bit(self) -> bool:
        """The split stores 8-bit images (uint8)."""
        return self.pixels.dtype == torch.uint8

    @property
    def x(self) -> torch.Tensor:
        """All images as float32 in [0, 1] (a new tensor for 8-bit images: prefer :meth:`batch` for large splits)."""
        return as_float(self.pixels)

    def batch(self, index: torch.Tensor | slice, device: torch.device | str = "cpu") -> torch.Tensor:
        """The images at ``index`` (row numbers or a slice) as :attr:`x` holds them, on ``device``: the uint8 rows are
        gathered (from memory or the memory-mapped cache), copied (pinned, without blocking, to a CUDA device), then
        converted there."""
        return as_float(self.rows(index, device))

    def rows(self, index: torch.Tensor | slice, device: torch.device | str = "cpu") -> torch.Tensor:
        """The stored :attr:`pixels` at ``index`` on ``device``, unconverted (uint8 for 8-bit images)."""
        if isinstance(index, torch.Tensor):  # index_select: a tenth of the time of indexing with a tensor
            rows = self.pixels.index_select(0, index.to(self.pixels.device))
        else:
            rows = self.pixels[index]
        if cache.is_mapped(self.pixels):
            cache.note_read(len(rows), rows[0].nbytes if len(rows) else 0)
        return to_device(rows, device)

    @property
    def images(self) -> torch.Tensor:
        """The images as the dataset holds them: ``source`` for a binarized split, else ``x``."""
        return self.x if self.source is None else self.source

    def images_at(self, index: torch.Tensor | slice, device: torch.device | str = "cpu") -> torch.Tensor:
        """:attr:`images` at ``index``, batched as :meth:`batch` is."""
        return self.batch(index, device) if self.source is None else self.source[index].to(device)

    def pixel_mean(self, batch_size: int = 4096) -> torch.Tensor:
        """The mean image of :attr:`x` [C, H, W] (float32), summed in float64 batch by batch."""
        total = torch.zeros(self.pixels.shape[1:], dtype=torch.float64)
        for start in range(0, len(self), batch_size):
            total += self.batch(slice(start, start + batch_size)).double().sum(0)
        return (total / len(self)).float()

    def is_binary(self, batch_size: int = 4096) -> bool:
        """Every value of :attr:`x` is 0 or 1 (checked batch by batch)."""
        one = 255 if self.eight_bit else 1
        return all(bool(((part == 0) | (part == one)).all()) for part in self.pixels.split(batch_size))

    def take(self, index: torch.Tensor) -> Split:
        """The rows at ``index``, as a new split."""
        pick = lambda t: None if t is None else t.index_select(0, index)  # noqa: E731
        return Split(pick(self.pixels), pick(self.y), pick(self.source), pick(self.attributes))


def as_float(pixels: torch.Tensor) -> torch.Tensor:
    """8-bit pixels as float32 in [0, 1], k / 255 (bit for bit what dividing float32 k by 255 gives, in one pass
    over the uint8 values); other tensors as they are."""
    return pixels / 255 if pixels.dtype == torch.uint8 else pixels


def to_device(t: torch.Tensor, device: torch.device | str) -> torch.Tensor:
    """``t`` on ``device``: to a CUDA device through pinned memory, without blocking the host."""
    device = torch.device(device)
    if device.type == "cuda" and t.device.type == "cpu":
        return t.pin_memory().to(device, non_blocking=True)
    return t.to(device)


@dataclass(frozen=True)
class DataFacts:
    """What a model is built for, read off its dataset: passed to model builders and objectives, and recorded in the
    run directory (``run.json``) so that a trained model is rebuilt without loading its data."""

    shape: tuple[int, ...]  # one example: (C, H, W) for images, (H', W') for the code grids of a VQ-VAE
    num_classes: int = 0  # 0: unlabelled
    train_size: int = 0  # examples in the training split

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {"shape": list(self.shape)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "DataFacts":
        return cls(tuple(d["shape"]), int(d.get("num_classes", 0)), int(d.get("train_size", 0)))


@dataclass
class Dataset:
    """A named dataset's train, val and test splits, with what a model needs to know about them."""

    name: str
    train: Split
    val: Split
    test: Split
    num_classes: int  # 0 when unlabeled
    binary: bool  # pixel values are already in {0, 1}
    attribute_names: tuple[str, ...] = ()  # the columns of each split's ``attributes`` (CelebA), else none

    @property
    def shape(self) -> tuple[int, int, int]:
        """(C, H, W) of one image."""
        return tuple(self.train.pixels.shape[1:])

    @property
    def facts(self) -> DataFacts:
        return DataFacts(self.shape, self.num_classes, len(self.train))

    def head(self, n: int) -> Dataset:
        """The first ``n`` examples of each split (all of a shorter one)."""
        first = lambda s: s.take(torch.arange(min(n, len(s))))  # noqa: E731
        return replace(self, train=first(self.train), val=first(self.val), test=first(self.test))

    def split(self, name: str) -> Split:
        if name not in SPLITS:
            raise DataError(f"unknown split {name!r}; choose one of {', '.join(SPLITS)}")
        return getattr(self, name)


def check_finite(data: Dataset) -> None:
    """Raise a DataError when a split's images hold NaN or infinite values (no likelihood is defined there)."""
    for name in SPLITS:
        x = data.split(name).pixels
        if not x.is_floating_point() or bool(torch.isfinite(x.sum())):  # one pass, no mask
            continue
        bad = sum(int((~torch.isfinite(part)).sum()) for part in x.split(1024))  # 0: the sum overflowed
        if bad:
            raise DataError(f"dataset {data.name!r}: its {name} images hold {bad} NaN or infinite values; vaelab "
                            f"trains on finite pixel values (in [0, 1])")


def hold_out(split: Split, size: int, seed: int) -> tuple[Split, Split]:
    """Split off ``size`` random rows (fixed by ``seed``): (rest, held out), each in original order."""
    n = len(split)
    if not 0 <= size < n:
        raise DataError(f"val_size={size} does not fit: the train split has {n} rows; use 0 to {n - 1}")
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    return split.take(order[size:].sort().values), split.take(order[:size].sort().values)


def keep_classes(data: Dataset, classes: list[int]) -> Dataset:
    """``data`` with only the examples labelled one of ``classes`` in each split (one-class training)."""
    if data.num_classes == 0 or data.train.y is None:
        raise DataError(f"data.classes keeps examples by label, and dataset {data.name!r} has no labels")
    if bad := sorted(set(classes) - set(range(data.num_classes))):
        raise DataError(f"data.classes: {bad} are not labels of {data.name!r} (0 to {data.num_classes - 1})")
    wanted = torch.tensor(sorted(set(classes)))
    splits = {name: data.split(name) for name in SPLITS}
    return replace(data, **{name: s.take(torch.isin(s.y, wanted).nonzero().squeeze(1))
                                        for name, s in splits.items()})
