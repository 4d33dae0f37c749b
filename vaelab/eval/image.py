"""Reconstruction quality of images in [0, 1], per image and batched."""
from __future__ import annotations

import torch


def mse(x: torch.Tensor, x_hat: torch.Tensor) -> torch.Tensor:
    """Mean squared error per image: [B]."""
    return ((x - x_hat) ** 2).flatten(1).mean(1)


def psnr(x: torch.Tensor, x_hat: torch.Tensor, eps: float = 1e-10) -> torch.Tensor:
    """Peak signal-to-noise ratio in dB for a peak of 1, per image: [B]."""
    return -10 * torch.log10(mse(x, x_hat) + eps)


def _gaussian_band(n: int, size: int, sigma: float, like: torch.Tensor) -> torch.Tensor:
    """[n, n - size + 1]: column j holds the normalized Gaussian window over positions j .. j + size - 1, so that
    ``t @ band`` filters the last dimension of t over its valid region (a separable filter as one matmul)."""
    t = torch.arange(size, dtype=like.dtype, device=like.device) - (size - 1) / 2
    g = torch.exp(-(t**2) / (2 * sigma**2))
    cols = torch.arange(n - size + 1, device=like.device)
    band = torch.zeros(n, n - size + 1, dtype=like.dtype, device=like.device)
    band[cols + torch.arange(size, device=like.device)[:, None], cols] = (g / g.sum())[:, None]
    return band


def ssim(x: torch.Tensor, x_hat: torch.Tensor, window: int = 11, sigma: float = 1.5,
         k1: float = 0.01, k2: float = 0.03) -> torch.Tensor:
    """Structural similarity (Wang et al. 2004, eq. 13) with a Gaussian window over the valid region,
    averaged over positions and channels, per image: [B] in the dtype of x. Images smaller than the window use a
    window of their size. The Gaussian is separable: the local moments are filtered by two matmuls.

    Eq. 13 needs sigma_x^2 + sigma_y^2 and sigma_xy, so four moments are filtered: x, y, x^2 + y^2 and xy, in
    float64, because the variances E[x^2] - E[x]^2 cancel: in float32 their error (a few 1e-8, set by the order
    in which the BLAS kernel sums, which differs between CPUs) moved the SSIM of constant images by up to 5e-4
    next to c2 = 9e-4. Products of float32 values are exact in float64."""
    h, w = x.shape[-2:]
    window = min(window, h, w)
    x64, y64 = x.double(), x_hat.double()  # [B, C, H, W]
    band_h, band_w = _gaussian_band(h, window, sigma, x64), _gaussian_band(w, window, sigma, x64)

    def local_mean(t: torch.Tensor) -> torch.Tensor:  # [B, C, H, W] -> [B, C, H', W'], one GEMM per direction
        return band_h.T @ (t @ band_w)

    mu_x, mu_y, sq, xy = local_mean(x64), local_mean(y64), local_mean(x64 * x64 + y64 * y64), local_mean(x64 * y64)
    mu_xy, mu_sq = mu_x * mu_y, mu_x**2 + mu_y**2
    cov, var = xy - mu_xy, sq - mu_sq  # sigma_xy, sigma_x^2 + sigma_y^2
    c1, c2 = k1**2, k2**2
    s = ((2 * mu_xy + c1) * (2 * cov + c2)) / ((mu_sq + c1) * (var + c2))
    return s.flatten(1).mean(1).to(x.dtype)
