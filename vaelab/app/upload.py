"""An uploaded image file as a model input, or a message that says what is wrong with it."""
from __future__ import annotations

import io

import numpy as np
import torch

from ..data.errors import DataError
from ..data.images import DECODE_ERRORS, quiet_open


def image_tensor(data: bytes, name: str, shape: tuple[int, int, int]) -> torch.Tensor:
    """[1, C, H, W] in [0, 1] from the bytes of an image file, for a model that takes ``shape`` = (C, H, W).

    Colour and grey are converted to the model's channels; any other size is an error, never a silent resize."""
    c, h, w = shape
    try:
        with quiet_open(io.BytesIO(data)) as image:
            size = image.size  # from the header: a wrong size is refused before anything is decoded
            if size != (w, h):
                raise DataError(f"{name} is {size[0]}x{size[1]} pixels; this model takes {w}x{h} "
                                f"{'colour' if c == 3 else 'grey'} images. Resize or crop it to {w}x{h} first.")
            pixels = image.convert("RGB" if c == 3 else "L")
    except DataError:
        raise
    except DECODE_ERRORS as err:  # its message names the in-memory file (<_io.BytesIO object at 0x...>): not shown
        raise DataError(f"{name} is not an image file Pillow can read (PNG, JPEG, BMP, GIF, WebP): "
                        f"{type(err).__name__}") from None
    x = np.asarray(pixels, np.float32).reshape(h, w, c).transpose(2, 0, 1) / 255
    return torch.from_numpy(x)[None]
