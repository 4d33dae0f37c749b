"""CelebA's aligned images (``img_align_celeba/*.jpg``) and its official partition (``list_eval_partition.txt``).

The partition file has one line per image, ``000001.jpg 0``: 0 for train, 1 for val, 2 for test.
"""
from __future__ import annotations

from pathlib import Path

import torch

from .errors import DataError
from .images import is_image

FOLDER = "img_align_celeba"
PARTITION = "list_eval_partition.txt"
PAGE = "https://mmlab.ie.cuhk.edu.hk/projects/CelebA.html"
HOW_TO_GET = (
    f"CelebA cannot be downloaded automatically (it is shared on Google Drive behind a form). From {PAGE} get "
    f"Img/img_align_celeba.zip and Eval/{PARTITION}, unzip the images into one of those folders and put "
    f"{PARTITION} beside the {FOLDER}/ folder, e.g. $VAELAB_DATA/celeba/{FOLDER}/000001.jpg and "
    f"$VAELAB_DATA/celeba/{PARTITION}."
)


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


def partition_file(folder: Path) -> Path | None:
    """``list_eval_partition.txt`` beside the image folder (or else inside it), if there is one."""
    return next((path for path in (folder.parent / PARTITION, folder / PARTITION) if path.is_file()), None)


def parse_partition(path: Path, images: list[Path]) -> list[torch.Tensor]:
    """Positions in ``images`` of the official train, val and test images, as ``path`` assigns them.

    Every image must be listed, and every listed image present: a mismatch means an incomplete unzip or
    another partition.
    """
    try:
        lines = path.read_text().splitlines()
    except (OSError, UnicodeDecodeError) as err:
        raise DataError(f"{path}: cannot be read: {err}") from err
    part = {}
    for number, line in enumerate(lines, start=1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) != 2 or fields[1] not in ("0", "1", "2"):
            raise DataError(f"{path}: line {number} is {line!r}; expected '<image>.jpg 0|1|2' (train, val, test)")
        part[fields[0]] = int(fields[1])
    names = [image.name for image in images]
    folder = images[0].parent
    if unlisted := [name for name in names if name not in part]:
        raise DataError(
            f"{path} does not list {len(unlisted)} of the {len(names)} images in {folder}, such as {unlisted[0]}; "
            f"use the {PARTITION} that came with these images, or remove it to split them at random"
        )
    if missing := sorted(part.keys() - set(names)):
        raise DataError(
            f"{path} lists {len(missing)} images that {folder} lacks, such as {missing[0]}: the folder is "
            f"incomplete; unzip img_align_celeba.zip again, or remove {PARTITION} to split the images present at random"
        )
    return [torch.tensor([i for i, name in enumerate(names) if part[name] == k], dtype=torch.int64) for k in range(3)]
