"""Semi-supervised splits (Kingma et al. 2014, §4.1): keep the labels of a few training examples, balanced across
classes, and mark the rest unlabelled (y = -1), so one trainer and its (seed, epoch) example order serve both.

Kingma et al. pair every unlabelled batch with a batch of labelled examples. Here the labelled rows are repeated in
the split until they make up about :data:`LABELLED_SHARE` of it, so a batch of 100 holds about 10 of them, drawn
afresh (and, under dynamic binarization, binarized afresh) in every epoch's seeded order.
"""
from __future__ import annotations

import math

import torch

from .base import Split
from .errors import DataError

UNLABELLED = -1
LABELLED_SHARE = 0.1  # of the training split's rows, after repetition


def labelled_subset(y: torch.Tensor, n: int, num_classes: int, seed: int) -> torch.Tensor:
    """Sorted indices [n] of ``n`` examples with labels y [N], n / num_classes of each class, drawn by ``seed``."""
    if n % num_classes or n <= 0:
        raise DataError(f"data.labels={n}: the labelled examples are balanced across the {num_classes} classes, so "
                        f"give a positive multiple of {num_classes}")
    g = torch.Generator().manual_seed(seed)
    picked = []
    for c in range(num_classes):  # ten classes: a loop over classes, not examples
        rows = (y == c).nonzero().squeeze(1)
        if len(rows) < n // num_classes:
            raise DataError(f"data.labels={n}: class {c} has only {len(rows)} training examples, "
                            f"{n // num_classes} asked for")
        picked.append(rows[torch.randperm(len(rows), generator=g)[:n // num_classes]])
    return torch.cat(picked).sort().values


def semi_supervised(split: Split, n: int, num_classes: int, seed: int) -> Split:
    """``split`` with the labels of ``n`` balanced, seeded examples kept and the others set to -1; the labelled rows
    repeated after them until they are about :data:`LABELLED_SHARE` of the rows (at least once)."""
    if split.y is None:
        raise DataError("data.labels keeps some of the labels of a labelled dataset; this one has none")
    if n >= len(split):
        raise DataError(f"data.labels={n}: the training split has only {len(split)} examples")
    keep = labelled_subset(split.y, n, num_classes, seed)
    y = torch.full_like(split.y, UNLABELLED)
    y[keep] = split.y[keep]
    copies = max(1, math.ceil(LABELLED_SHARE * (len(split) - n) / ((1 - LABELLED_SHARE) * n)))
    marked = Split(split.x, y, split.source, split.attributes)
    extra = split.take(keep.repeat(copies - 1))
    if not len(extra):
        return marked
    cat = lambda a, b: None if a is None else torch.cat([a, b])  # noqa: E731
    return Split(cat(marked.x, extra.x), cat(marked.y, extra.y), cat(marked.source, extra.source),
                 cat(marked.attributes, extra.attributes))
