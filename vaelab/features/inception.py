"""The FID Inception network (Szegedy et al. 2016's InceptionV3 as TensorFlow's 2015-12-05 graph, which Heusel et
al. 2017 used for FID), in the module layout of torch-fidelity's ``FeatureExtractorInceptionV3`` and pytorch-fid's
``FIDInceptionV3``, so that their weight files load as they are:

- ``pt_inception-2015-12-05-6726825d.pth`` (pytorch-fid's release ``fid_weights``) or torch-fidelity's
  ``weights-inception-2015-12-05-6726825d.pth`` (its release ``v0.2.0``): plain state dicts, read with
  ``torch.load(weights_only=True)``, which unpickles tensors and containers only, never code;
- the same weights as ``.safetensors`` (convert once: ``save_file(torch.load(PATH, weights_only=True), OUT)``).

Images are resized to 299 x 299 by TensorFlow 1.x's bilinear resize (half-pixel-free sampling, as the original graph
and torch-fidelity do), from 8-bit values ((x - 128) / 128); grey images repeat their channel. Features: the 2048
activations of the last average pool (FID, KID, precision/recall); logits: the 1008 logits without the classifier's
bias (torch-fidelity's ``logits_unbiased``, for the Inception Score).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

SIZE = 299
FEATURE_LAYER = "pool3: the 2048 activations of the last average pool"


class BasicConv2d(nn.Module):
    def __init__(self, c_in: int, c_out: int, **kw):
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, bias=False, **kw)
        self.bn = nn.BatchNorm2d(c_out, eps=0.001)

    def forward(self, x):
        return F.relu(self.bn(self.conv(x)))


def _avg_pool(x):
    """TensorFlow's 3x3 average pool: padded zeros are not counted."""
    return F.avg_pool2d(x, 3, 1, 1, count_include_pad=False)


class InceptionA(nn.Module):
    def __init__(self, c: int, pool_features: int):
        super().__init__()
        self.branch1x1 = BasicConv2d(c, 64, kernel_size=1)
        self.branch5x5_1, self.branch5x5_2 = BasicConv2d(c, 48, kernel_size=1), BasicConv2d(48, 64, kernel_size=5,
                                                                                             padding=2)
        self.branch3x3dbl_1 = BasicConv2d(c, 64, kernel_size=1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, kernel_size=3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, kernel_size=3, padding=1)
        self.branch_pool = BasicConv2d(c, pool_features, kernel_size=1)

    def forward(self, x):
        return torch.cat([self.branch1x1(x), self.branch5x5_2(self.branch5x5_1(x)),
                          self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x))),
                          self.branch_pool(_avg_pool(x))], 1)


class InceptionB(nn.Module):
    def __init__(self, c: int):
        super().__init__()
        self.branch3x3 = BasicConv2d(c, 384, kernel_size=3, stride=2)
        self.branch3x3dbl_1 = BasicConv2d(c, 64, kernel_size=1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, kernel_size=3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, kernel_size=3, stride=2)

    def forward(self, x):
        return torch.cat([self.branch3x3(x), self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x))),
                          F.max_pool2d(x, 3, 2)], 1)


def _seven(c_in: int, c_out: int, first: str) -> BasicConv2d:
    """A 1x7 ("w") or 7x1 ("h") convolution."""
    return BasicConv2d(c_in, c_out, kernel_size=(1, 7) if first == "w" else (7, 1),
                       padding=(0, 3) if first == "w" else (3, 0))


class InceptionC(nn.Module):
    def __init__(self, c: int, channels_7x7: int):
        super().__init__()
        c7 = channels_7x7
        self.branch1x1 = BasicConv2d(c, 192, kernel_size=1)
        self.branch7x7_1, self.branch7x7_2, self.branch7x7_3 = (BasicConv2d(c, c7, kernel_size=1), _seven(c7, c7, "w"),
                                                                _seven(c7, 192, "h"))
        self.branch7x7dbl_1 = BasicConv2d(c, c7, kernel_size=1)
        self.branch7x7dbl_2, self.branch7x7dbl_3 = _seven(c7, c7, "h"), _seven(c7, c7, "w")
        self.branch7x7dbl_4, self.branch7x7dbl_5 = _seven(c7, c7, "h"), _seven(c7, 192, "w")
        self.branch_pool = BasicConv2d(c, 192, kernel_size=1)

    def forward(self, x):
        dbl = x
        for i in range(1, 6):
            dbl = getattr(self, f"branch7x7dbl_{i}")(dbl)
        return torch.cat([self.branch1x1(x), self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x))), dbl,
                          self.branch_pool(_avg_pool(x))], 1)


class InceptionD(nn.Module):
    def __init__(self, c: int):
        super().__init__()
        self.branch3x3_1, self.branch3x3_2 = BasicConv2d(c, 192, kernel_size=1), BasicConv2d(192, 320, kernel_size=3,
                                                                                             stride=2)
        self.branch7x7x3_1, self.branch7x7x3_2 = BasicConv2d(c, 192, kernel_size=1), _seven(192, 192, "w")
        self.branch7x7x3_3, self.branch7x7x3_4 = _seven(192, 192, "h"), BasicConv2d(192, 192, kernel_size=3, stride=2)

    def forward(self, x):
        b = x
        for i in range(1, 5):
            b = getattr(self, f"branch7x7x3_{i}")(b)
        return torch.cat([self.branch3x3_2(self.branch3x3_1(x)), b, F.max_pool2d(x, 3, 2)], 1)


class InceptionE(nn.Module):
    """Mixed_7b (``pool="avg"``) and Mixed_7c (``pool="max"``: the TensorFlow graph max-pools there)."""

    def __init__(self, c: int, pool: str):
        super().__init__()
        self.pool = pool
        self.branch1x1 = BasicConv2d(c, 320, kernel_size=1)
        self.branch3x3_1 = BasicConv2d(c, 384, kernel_size=1)
        self.branch3x3_2a = BasicConv2d(384, 384, kernel_size=(1, 3), padding=(0, 1))
        self.branch3x3_2b = BasicConv2d(384, 384, kernel_size=(3, 1), padding=(1, 0))
        self.branch3x3dbl_1 = BasicConv2d(c, 448, kernel_size=1)
        self.branch3x3dbl_2 = BasicConv2d(448, 384, kernel_size=3, padding=1)
        self.branch3x3dbl_3a = BasicConv2d(384, 384, kernel_size=(1, 3), padding=(0, 1))
        self.branch3x3dbl_3b = BasicConv2d(384, 384, kernel_size=(3, 1), padding=(1, 0))
        self.branch_pool = BasicConv2d(c, 192, kernel_size=1)

    def forward(self, x):
        a = self.branch3x3_1(x)
        b = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        pooled = _avg_pool(x) if self.pool == "avg" else F.max_pool2d(x, 3, 1, 1)
        return torch.cat([self.branch1x1(x), self.branch3x3_2a(a), self.branch3x3_2b(a), self.branch3x3dbl_3a(b),
                          self.branch3x3dbl_3b(b), self.branch_pool(pooled)], 1)


def resize_like_tf1(x: torch.Tensor, size: int = SIZE) -> torch.Tensor:
    """TensorFlow 1.x's ``resize_bilinear`` (align_corners=False): output pixel i samples input i * in / out, its two
    neighbours weighted linearly (the last one repeated at the edge), along the width and then the height, in the
    float32 steps of torch-fidelity's ``interpolate_bilinear_2d_like_tensorflow1x``.
    [B, C, H, W] -> [B, C, size, size]."""
    def axis(n: int):
        pos = torch.arange(size, dtype=torch.float32, device=x.device) * torch.tensor(n / size, dtype=torch.float32)
        lo = pos.long()
        return lo, (lo + 1).clamp(max=n - 1), pos - lo.float()

    (y0, y1, dy), (x0, x1, dx) = axis(x.shape[-2]), axis(x.shape[-1])

    def along_width(rows: torch.Tensor) -> torch.Tensor:  # [B, C, size, W] -> [B, C, size, size]
        return rows[..., x0] + (rows[..., x1] - rows[..., x0]) * dx

    top, bottom = along_width(x[..., y0, :]), along_width(x[..., y1, :])
    return top + (bottom - top) * dy[:, None]


class FIDInceptionV3(nn.Module):
    """images [B, 1 or 3, H, W] in [0, 1] -> (pool3 features [B, 2048], unbiased logits [B, 1008])."""

    num_features = 2048

    def __init__(self):
        super().__init__()
        self.Conv2d_1a_3x3 = BasicConv2d(3, 32, kernel_size=3, stride=2)
        self.Conv2d_2a_3x3 = BasicConv2d(32, 32, kernel_size=3)
        self.Conv2d_2b_3x3 = BasicConv2d(32, 64, kernel_size=3, padding=1)
        self.Conv2d_3b_1x1 = BasicConv2d(64, 80, kernel_size=1)
        self.Conv2d_4a_3x3 = BasicConv2d(80, 192, kernel_size=3)
        self.Mixed_5b, self.Mixed_5c, self.Mixed_5d = InceptionA(192, 32), InceptionA(256, 64), InceptionA(288, 64)
        self.Mixed_6a = InceptionB(288)
        self.Mixed_6b, self.Mixed_6c = InceptionC(768, 128), InceptionC(768, 160)
        self.Mixed_6d, self.Mixed_6e = InceptionC(768, 160), InceptionC(768, 192)
        self.Mixed_7a = InceptionD(768)
        self.Mixed_7b, self.Mixed_7c = InceptionE(1280, "avg"), InceptionE(2048, "max")
        self.fc = nn.Linear(2048, 1008)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = (x.expand(-1, 3, -1, -1) * 255).round()  # the 8-bit values an image file holds
        x = (resize_like_tf1(x) - 128) / 128
        x = self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(x)))
        x = F.max_pool2d(x, 3, 2)
        x = F.max_pool2d(self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(x)), 3, 2)
        for name in ("5b", "5c", "5d", "6a", "6b", "6c", "6d", "6e", "7a", "7b", "7c"):
            x = getattr(self, f"Mixed_{name}")(x)
        features = x.mean((2, 3))  # [B, 2048]
        return features, features @ self.fc.weight.T  # logits without the bias: [B, 1008]
