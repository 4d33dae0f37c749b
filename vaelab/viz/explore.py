"""Pictures of what a model learned: samples, reconstructions, interpolations, latent traversals.

Each returns an image batch [N, C, H, W] laid out for :func:`~vaelab.viz.grid.save_grid` with ``nrow`` columns.
"""
from __future__ import annotations

import torch
from torch import nn


@torch.no_grad()
def samples(model: nn.Module, n: int = 64, temperature: float = 1.0) -> tuple[torch.Tensor, int]:
    """Unconditional samples; a CVAE gives one row per class (``n`` per row)."""
    if not model.conditional:
        return model.sample(n, temperature=temperature), 8
    y = torch.arange(model.num_classes).repeat_interleave(n)
    return model.sample(len(y), y=y, temperature=temperature), n


@torch.no_grad()
def vq_samples(model: nn.Module, prior: nn.Module, grid: tuple[int, int], n: int = 64, temperature: float = 1.0,
               generator: torch.Generator | None = None) -> tuple[torch.Tensor, int]:
    """VQ-VAE samples: code grids [H', W'] drawn from the PixelCNN prior, then decoded."""
    codes = prior.sample(n, grid, temperature=temperature, generator=generator)
    return model.decode(codes), 8


@torch.no_grad()
def reconstructions(model: nn.Module, x: torch.Tensor, y: torch.Tensor | None = None, nrow: int = 8,
                    images: torch.Tensor | None = None) -> tuple[torch.Tensor, int]:
    """Rows of originals, each followed by a row of the reconstructions of x. ``images``: the originals to show, when
    x is not what the dataset holds (binary draws of grey ``images``: a binarized split's ``images``); default x."""
    y = y if model.conditional else None
    x_hat = model.reconstruct(x, y)
    shown = x if images is None else images
    n = len(x) - len(x) % nrow or len(x)
    pairs = torch.stack([shown[:n].unflatten(0, (-1, nrow)), x_hat[:n].unflatten(0, (-1, nrow))], 1)  # [R, 2, nrow, ...]
    return pairs.flatten(0, 2), min(nrow, n)


@torch.no_grad()
def interpolation(model: nn.Module, x0: torch.Tensor, x1: torch.Tensor, steps: int = 10,
                  y0: torch.Tensor | None = None, y1: torch.Tensor | None = None) -> tuple[torch.Tensor, int]:
    """Decode points on the line between the posterior means of pairs x0[i] and x1[i]: one row per pair."""
    y0 = y0 if model.conditional else None
    y1 = y1 if model.conditional else None
    z0, z1 = model.encode(x0, y0), model.encode(x1, y1)  # [P, D]
    t = torch.linspace(0, 1, steps, device=z0.device)[:, None, None]  # [T, 1, 1]
    z = ((1 - t) * z0 + t * z1).transpose(0, 1).reshape(-1, z0.shape[-1])  # [P*T, D], row-major per pair
    y = None if y0 is None else y0.repeat_interleave(steps)  # the label of each row's start
    return model.decode(z, y), steps


@torch.no_grad()
def traversal(model: nn.Module, x: torch.Tensor, y: torch.Tensor | None = None, dims: list[int] | None = None,
              steps: int = 9, span: float = 3.0) -> tuple[torch.Tensor, int]:
    """From the posterior mean of one image x [1, C, H, W], vary each latent in ``dims`` over
    [-span, span] (prior standard deviations) with the others fixed: one row per dimension."""
    y = y if model.conditional else None
    return code_traversal(model, model.encode(x, y)[0], y, dims, steps, span)


@torch.no_grad()
def code_traversal(model: nn.Module, z0: torch.Tensor, y: torch.Tensor | None = None, dims: list[int] | None = None,
                   steps: int = 9, span: float = 3.0) -> tuple[torch.Tensor, int]:
    """:func:`traversal` around a code z0 [D] (an encoded image's, or any point of the latent space)."""
    dims = list(range(z0.numel())) if dims is None else dims
    values = torch.linspace(-span, span, steps, device=z0.device)
    zs = z0.repeat(len(dims), steps, 1)  # [len(dims), steps, D]
    zs[torch.arange(len(dims)), :, dims] = values
    ys = None if y is None else y.expand(len(dims) * steps)
    return decode_edited(model, z0, zs.flatten(0, 1), ys), steps


@torch.no_grad()
def decode_edited(model: nn.Module, z0: torch.Tensor, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
    """Decode codes z [N, D] that edit one code z0 [D]. In a hierarchical model the layers below an edited one
    follow it down the generative path (``model.top_down``), so every dimension can change the image."""
    if hasattr(model, "top_down"):
        z = model.top_down(z0, z)
    return model.decode(z, y)


def dims_by_kl(evaluation: dict, top: int | None = None) -> list[int]:
    """Latent dimensions of an :func:`~vaelab.eval.evaluate` result, the ones the model uses first: by their KL,
    or, where the KL has no per-dimension split (``kl_per_dim`` None), by the variance of their posterior mean
    over the data, ``var_mu`` (the activity of Burda et al. 2016, §5.2)."""
    score = evaluation.get("kl_per_dim") or evaluation.get("var_mu")
    if score is None:
        raise ValueError("dims_by_kl needs an evaluation with kl_per_dim or var_mu (vaelab.eval.evaluate of a VAE)")
    order = sorted(range(len(score)), key=lambda i: -score[i])
    return order[:top] if top else order


@torch.no_grad()
def latent_map(model: nn.Module, x: torch.Tensor, y: torch.Tensor | None = None, method: str = "pca",
               batch_size: int = 1000, dims: tuple[int, int] = (0, 1)) -> torch.Tensor:
    """2-D coordinates [N, 2] of the posterior means of ``x``: their first two principal components
    (``pca``) or the latent dimensions ``dims`` (``dims``; e.g. the two of most KL, :func:`dims_by_kl`)."""
    y = y if model.conditional else None
    z = torch.cat([model.encode(x[i:i + batch_size], None if y is None else y[i:i + batch_size])
                   for i in range(0, len(x), batch_size)])  # [N, D]
    if method == "dims":
        return z[:, list(dims)]
    if method != "pca":
        raise ValueError(f"unknown latent map {method!r}; known: pca, dims")
    z = z - z.mean(0)
    _, _, v = torch.linalg.svd(z, full_matrices=False)  # rows of v: principal directions
    return z @ v[:2].T
