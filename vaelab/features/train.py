"""Training a feature network: the small CNN classifier of :mod:`.network` on a labelled dataset's train split,
seeded, with random shifts (and left-right flips where a dataset's classes allow them), Adam with
a one-cycle learning rate; its accuracy is measured on the test split."""
from __future__ import annotations

import time
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..data import Dataset, Split
from .network import ClassifierCNN


@dataclass(frozen=True)
class Recipe:
    """How the feature network of a dataset is trained."""

    epochs: int
    flip: bool = False  # left-right flips keep the class (garments, objects; not digits)
    shift: int = 2  # random shifts of up to this many pixels
    batch_size: int = 128
    lr: float = 3e-3  # the one-cycle peak
    dim: int = 128  # features


def _augment(x: torch.Tensor, recipe: Recipe, g: torch.Generator) -> torch.Tensor:
    """The batch shifted by one random (dy, dx) in [-shift, shift]^2 (zeros come in), each image flipped left-right
    with probability 1/2 when the recipe flips."""
    s = recipe.shift
    dy, dx = torch.randint(-s, s + 1, (2,), generator=g).tolist()
    h, w = x.shape[-2:]
    x = F.pad(x, (s,) * 4)[..., s - dy:s - dy + h, s - dx:s - dx + w]
    if recipe.flip:
        flipped = torch.rand(len(x), generator=g) < 0.5
        x = torch.where(flipped[:, None, None, None], x.flip(-1), x)
    return x


@torch.no_grad()
def accuracy(net: nn.Module, split: Split, batch_size: int = 1000) -> float:
    net.eval()
    right = sum((net(split.x[s:s + batch_size])[1].argmax(1) == split.y[s:s + batch_size]).sum().item()
                for s in range(0, len(split), batch_size))
    return right / len(split)


def train_classifier(data: Dataset, recipe: Recipe, seed: int = 0, log=print) -> tuple[ClassifierCNN, dict]:
    """The trained network (eval mode) and what its training found: test accuracy, epochs, seconds."""
    torch.manual_seed(seed)  # the initial weights and dropout
    g = torch.Generator().manual_seed(seed)  # example order and augmentation
    net = ClassifierCNN(data.shape, data.num_classes, recipe.dim)
    steps_per_epoch = len(data.train) // recipe.batch_size
    opt = torch.optim.Adam(net.parameters(), recipe.lr)
    schedule = torch.optim.lr_scheduler.OneCycleLR(opt, recipe.lr, total_steps=recipe.epochs * steps_per_epoch)
    start = time.perf_counter()
    for epoch in range(recipe.epochs):
        net.train()
        order = torch.randperm(len(data.train), generator=g)
        for i in range(steps_per_epoch):
            rows = order[i * recipe.batch_size:(i + 1) * recipe.batch_size]
            x = _augment(data.train.x[rows], recipe, g)
            loss = F.cross_entropy(net(x)[1], data.train.y[rows])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            schedule.step()
        log(f"epoch {epoch + 1}/{recipe.epochs}: loss {loss.item():.4f}, val accuracy {accuracy(net, data.val):.4f} "
            f"({time.perf_counter() - start:.0f} s)")
    return net.eval(), {"test_accuracy": accuracy(net, data.test), "epochs": recipe.epochs, "seed": seed,
                        "seconds": round(time.perf_counter() - start, 1)}
