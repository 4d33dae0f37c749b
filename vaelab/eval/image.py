"""Reconstruction quality of images in [0, 1], per image and batched."""
from __future__ import annotations

import torch
import torch.nn.functional as F


def mse(x: torch.Tensor, x_hat: torch.Tensor) -> torch.Tensor:
    """Mean squared error per image: [B]."""
    return ((x - x_hat) ** 2).flatten(1).mean(1)


def psnr(x: torch.Tensor, x_hat: torch.Tensor, eps: float = 1e-10) -> torch.Tensor:
    """Peak signal-to-noise ratio in dB for a peak of 1, per image: [B]."""
    return -10 * torch.log10(mse(x, x_hat) + eps)


def _gaussian_window(size: int, sigma: float, channels: int, like: torch.Tensor) -> torch.Tensor:
    t = torch.arange(size, dtype=like.dtype, device=like.device) - (size - 1) / 2
    g = torch.exp(-(t**2) / (2 * sigma**2))
    g = g / g.sum()
    return (g[:, None] * g[None, :]).expand(channels, 1, size, size)  # depthwise


def ssim(x: torch.Tensor, x_hat: torch.Tensor, window: int = 11, sigma: float = 1.5,
         k1: float = 0.01, k2: float = 0.03) -> torch.Tensor:
    """Structural similarity (Wang et al. 2004, eq. 13) with a Gaussian window over the valid region,
    averaged over positions and channels, per image: [B]. Images smaller than the window use a window
    of their size."""
    c = x.shape[1]
    window = min(window, x.shape[-1], x.shape[-2])
    w = _gaussian_window(window, sigma, c, x)
    filt = lambda t: F.conv2d(t, w, groups=c)  # noqa: E731
    mu_x, mu_y = filt(x), filt(x_hat)
    var_x = filt(x * x) - mu_x**2
    var_y = filt(x_hat * x_hat) - mu_y**2
    cov = filt(x * x_hat) - mu_x * mu_y
    c1, c2 = k1**2, k2**2
    s = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / ((mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2))
    return s.flatten(1).mean(1)
