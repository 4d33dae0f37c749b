"""An image grid with its rows and columns named, as a figure: which run and latent dimension a row traverses,
which value a column sets (the β study's traversals of several runs in one picture)."""
from __future__ import annotations

import torch
from matplotlib.figure import Figure

from .grid import make_grid

PAD = 2  # pixels between images, as make_grid draws them


def labelled_grid_figure(images: torch.Tensor, row_labels: list[str], column_labels: list[str],
                         title: str | None = None, breaks: list[int] = ()) -> Figure:
    """``images`` [R, K, C, H, W] as R rows of K images, row r named ``row_labels[r]`` on the left, column k named
    ``column_labels[k]`` below; a line above each row index in ``breaks`` (where another run's rows begin)."""
    rows, cols, _, h, w = images.shape
    grid = make_grid(images.flatten(0, 1), cols, PAD)  # [R*(H+p)+p, K*(W+p)+p, C]
    scale = max(0.5, min(1.0, 28 / h)) * 0.75  # inches per image: 8x8 digits as large as 28x28 MNIST
    fig = Figure(figsize=(cols * scale + 2.4, rows * scale + 1.1), layout="tight")
    ax = fig.subplots()
    ax.imshow(grid[..., 0] if grid.shape[-1] == 1 else grid, cmap="gray", vmin=0, vmax=255, interpolation="nearest")
    ax.set_yticks([PAD + r * (h + PAD) + (h - 1) / 2 for r in range(rows)], row_labels, fontsize=10)
    ax.set_xticks([PAD + k * (w + PAD) + (w - 1) / 2 for k in range(cols)], column_labels, fontsize=10)
    ax.tick_params(length=0)
    for r in breaks:
        ax.axhline(r * (h + PAD) + PAD / 2 - 0.5, color="tab:red", lw=1.5)
    for side in ax.spines.values():
        side.set_visible(False)
    if title:
        ax.set_title(title, fontsize=11)
    return fig
