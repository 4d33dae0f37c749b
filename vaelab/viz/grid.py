"""Image grids with numpy and Pillow (no torchvision)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from ..durable import replacing


def make_grid(images: torch.Tensor, nrow: int = 8, pad: int = 2, pad_value: float = 1.0) -> np.ndarray:
    """[N, C, H, W] in [0, 1] -> uint8 [rows*(H+pad)+pad, nrow*(W+pad)+pad, C] (C is 1 or 3), row-major."""
    if images.dim() != 4 or images.shape[1] not in (1, 3):
        raise ValueError(f"images must be [N, 1 or 3, H, W], got {tuple(images.shape)}")
    n, c, h, w = images.shape
    rows = -(-n // nrow)
    x = images.detach().float().clamp(0, 1).cpu().numpy()
    x = np.concatenate([x, np.full((rows * nrow - n, c, h, w), pad_value, np.float32)])
    x = np.pad(x, ((0, 0), (0, 0), (pad, 0), (pad, 0)), constant_values=pad_value)  # [R*nrow, C, H+p, W+p]
    x = x.reshape(rows, nrow, c, h + pad, w + pad).transpose(0, 3, 1, 4, 2)  # [R, H+p, nrow, W+p, C]
    x = x.reshape(rows * (h + pad), nrow * (w + pad), c)
    x = np.pad(x, ((0, pad), (0, pad), (0, 0)), constant_values=pad_value)
    return (x * 255 + 0.5).astype(np.uint8)


def grid_image(images: torch.Tensor, nrow: int = 8, scale: int = 2) -> Image.Image:
    """The grid as a Pillow image, each pixel scaled up ``scale`` times (nearest) for legibility."""
    grid = make_grid(images, nrow)
    img = Image.fromarray(grid[..., 0] if grid.shape[-1] == 1 else grid)
    return img.resize((img.width * scale, img.height * scale), Image.NEAREST) if scale > 1 else img


def save_grid(images: torch.Tensor, path: str | Path, nrow: int = 8, scale: int = 2) -> Path:
    """Write a PNG grid (see :func:`grid_image`), whole or not at all."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with replacing(path) as tmp:
        grid_image(images, nrow, scale).save(tmp, format=Image.registered_extensions().get(path.suffix.lower(), "PNG"))
    return path


def _font(size: int):
    """Pillow's built-in font at ``size`` pixels (its bitmap font where Pillow lacks FreeType)."""
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, ImportError, OSError):  # Pillow < 10.1 or no FreeType: the fixed bitmap font
        return ImageFont.load_default()


def labelled_grid(images: torch.Tensor, nrow: int = 8, scale: int = 2, rows: list[str] | None = None,
                  columns: list[str] | None = None, font_px: int = 13) -> Image.Image:
    """:func:`grid_image` with a label left of each row ("original", "z3") and above each column ("-3", "0", "3"),
    drawn in black on white at ``font_px`` pixels, so a saved grid says what it shows."""
    grid = grid_image(images, nrow, scale)
    if not rows and not columns:
        return grid
    font = _font(font_px)
    draw = ImageDraw.Draw(grid)
    left = int(max((draw.textlength(r, font=font) for r in rows), default=0)) + 8 if rows else 0
    top = font_px + 8 if columns else 0
    out = Image.new(grid.mode, (grid.width + left, grid.height + top), 255 if grid.mode == "L" else (255,) * 3)
    out.paste(grid, (left, top))
    draw, ink = ImageDraw.Draw(out), 0 if grid.mode == "L" else (0, 0, 0)
    cell_h, cell_w = (images.shape[-2] + 2) * scale, (images.shape[-1] + 2) * scale  # an image and its padding
    for i, label in enumerate(rows or []):
        draw.text((left - 4, top + i * cell_h + cell_h // 2), label, fill=ink, font=font, anchor="rm")
    for j, label in enumerate(columns or []):
        draw.text((left + j * cell_w + cell_w // 2 + scale, top - 4), label, fill=ink, font=font, anchor="md")
    return out
