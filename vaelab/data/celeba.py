"""CelebA's aligned images (``img_align_celeba/*.jpg``), its official partition (``list_eval_partition.txt``) and
its 40 binary attributes (``list_attr_celeba.txt``).

The partition file has one line per image, ``000001.jpg 0``: 0 for train, 1 for val, 2 for test. The attribute
file has the number of images on its first line, the 40 attribute names on its second (``5_o_Clock_Shadow
Arched_Eyebrows ... Young``), then one line per image, ``000001.jpg -1  1  1 -1 ...``: 1 where the image has the
attribute, -1 where not.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .errors import DataError
from .images import ImageOptions, is_image

FOLDER = "img_align_celeba"
PARTITION = "list_eval_partition.txt"
ATTRIBUTES = "list_attr_celeba.txt"
MAX_LABEL_ATTRIBUTES = 10  # data.attributes: at most 2^10 classes
PAGE = "https://mmlab.ie.cuhk.edu.hk/projects/CelebA.html"
HOW_TO_GET = (
    f"CelebA cannot be downloaded automatically (it is shared on Google Drive behind a form). From {PAGE} get "
    f"Img/img_align_celeba.zip, Eval/{PARTITION} and (for attributes) Anno/{ATTRIBUTES}, unzip the images into "
    f"one of those folders and put the text files beside the {FOLDER}/ folder, e.g. "
    f"$VAELAB_DATA/celeba/{FOLDER}/000001.jpg and $VAELAB_DATA/celeba/{PARTITION}."
)


@dataclass(frozen=True)
class CelebAOptions(ImageOptions):
    """CelebA's options: image-folder's, and ``attributes``: names of attributes of ``list_attr_celeba.txt`` whose
    pattern labels each image (``load_dataset("celeba", attributes=["Male", "Smiling"])``, ``data.attributes``)."""

    attributes: tuple[str, ...] | None = None

    def __post_init__(self):
        super().__post_init__()
        if self.attributes is None:
            return
        names = self.attributes
        if (isinstance(names, str) or not all(isinstance(name, str) for name in names)
                or not 1 <= len(names) <= MAX_LABEL_ATTRIBUTES or len(set(names)) != len(names)):
            raise DataError(f"attributes={names!r}: expected a list of 1 to {MAX_LABEL_ATTRIBUTES} distinct attribute "
                            f"names of {ATTRIBUTES}, such as [Male, Smiling]")
        object.__setattr__(self, "attributes", tuple(names))


def images_in(folder: Path) -> list[Path]:
    """The sorted ``.jpg`` files directly in ``folder`` (none when it is not a folder)."""
    if not folder.is_dir():
        return []
    return sorted(path for path in folder.iterdir() if is_image(path) and path.suffix.lower() == ".jpg")


def find(places: list[tuple[Path, str]]) -> tuple[Path, list[Path]]:
    """The first place's ``img_align_celeba`` folder of JPEGs (or the place itself, if one), and its JPEGs."""
    for place, _ in places:
        for folder in (place / FOLDER, place):
            if images := images_in(folder):
                return folder, images
    looked = "; ".join(f"{place}/{FOLDER}, or {place} itself ({origin})" for place, origin in places)
    raise DataError(f"celeba: no folder holds CelebA's aligned JPEGs; looked in {looked}. {HOW_TO_GET}")


def beside(folder: Path, name: str) -> Path | None:
    """The file ``name`` (``list_eval_partition.txt``, ``list_attr_celeba.txt``) beside the image folder, or else
    inside it, if there is one."""
    return next((path for path in (folder.parent / name, folder / name) if path.is_file()), None)


def _lines(path: Path) -> list[str]:
    try:
        return path.read_text().splitlines()
    except (OSError, UnicodeDecodeError) as err:
        raise DataError(f"{path}: cannot be read: {err}") from err


def _for_images(path: Path, listed: dict[str, object], images: list[Path], without: str) -> list:
    """The entry ``listed`` holds for each of ``images``, in their order. Every image must be listed, and every listed
    image present: a mismatch means an incomplete unzip or another version of the file (``without``: what removing
    the file gives)."""
    names = [image.name for image in images]
    folder = images[0].parent
    if unlisted := [name for name in names if name not in listed]:
        raise DataError(
            f"{path} does not list {len(unlisted)} of the {len(names)} images in {folder}, such as {unlisted[0]}; "
            f"use the {path.name} that came with these images, or remove it {without}"
        )
    if missing := sorted(listed.keys() - set(names)):
        raise DataError(
            f"{path} lists {len(missing)} images that {folder} lacks, such as {missing[0]}: the folder is "
            f"incomplete; unzip img_align_celeba.zip again, or remove {path.name} {without}"
        )
    return [listed[name] for name in names]


def parse_partition(path: Path, images: list[Path]) -> list[torch.Tensor]:
    """Positions in ``images`` of the official train, val and test images, as ``path`` assigns them.

    Every image must be listed, and every listed image present (without the file, the images are split at random).
    """
    part = {}
    for number, line in enumerate(_lines(path), start=1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) != 2 or fields[1] not in ("0", "1", "2"):
            raise DataError(f"{path}: line {number} is {line!r}; expected '<image>.jpg 0|1|2' (train, val, test)")
        part[fields[0]] = int(fields[1])
    which = _for_images(path, part, images, "to split the images present at random")
    return [torch.tensor([i for i, p in enumerate(which) if p == k], dtype=torch.int64) for k in range(3)]


def parse_attributes(path: Path, images: list[Path]) -> tuple[tuple[str, ...], np.ndarray]:
    """The attribute names and each of ``images``' attributes, int64 [N, A] of 0/1 (1: has it), from
    ``list_attr_celeba.txt``. Every image must be listed, and every listed image present."""
    lines = [line for line in _lines(path) if line.strip()]
    if len(lines) < 2 or not lines[0].strip().isdigit():
        raise DataError(f"{path}: expected the number of images on line 1 and the attribute names on line 2")
    names = tuple(lines[1].split())
    if int(lines[0]) != len(lines) - 2:
        raise DataError(f"{path}: line 1 says {int(lines[0])} images, but {len(lines) - 2} lines follow the names")
    rows = {}
    for number, line in enumerate(lines[2:], start=3):
        fields = line.split()
        if len(fields) != len(names) + 1 or any(v not in ("1", "-1") for v in fields[1:]):
            raise DataError(f"{path}: line {number} is {line[:60]!r}...; expected '<image>.jpg' and "
                            f"{len(names)} values 1 or -1")
        rows[fields[0]] = fields[1:]
    table = np.array(_for_images(path, rows, images, "to load the images without attributes"), dtype=np.int64)
    return names, (table > 0).astype(np.int64)


def pattern_labels(names: tuple[str, ...], table: np.ndarray | None, wanted: tuple[str, ...] | None, path: Path
                   ) -> tuple[np.ndarray | None, int]:
    """(labels, classes): the label of an image is the pattern of the ``wanted`` attributes, sum_i 2^i a_i (with
    [Male, Smiling]: 0 neither, 1 Male, 2 Smiling, 3 both), so 2^len(wanted) classes; (None, 0) when none are."""
    if wanted is None:
        return None, 0
    if table is None:
        raise DataError(f"celeba: attributes {list(wanted)} need {ATTRIBUTES} beside {path}/ (Anno/{ATTRIBUTES} on "
                        f"{PAGE})")
    if unknown := [name for name in wanted if name not in names]:
        raise DataError(f"celeba: unknown attribute(s) {', '.join(unknown)}; {ATTRIBUTES} has {', '.join(names)}")
    columns = table[:, [names.index(name) for name in wanted]]  # [N, len(wanted)]
    return columns @ (1 << np.arange(len(wanted), dtype=np.int64)), 2 ** len(wanted)
