"""The small CNN classifier whose penultimate layer gives vaelab's own sample-quality features.

Three 3x3 convolutions of stride 2 (32, 64, 128 channels; 28x28 -> 14 -> 7 -> 4), each followed by batch norm and
ReLU, then a hidden linear layer of ``dim`` units with ReLU, then the linear classifier. The **features are the
``dim`` post-ReLU activations of the hidden linear layer**, the input of the last (classifier) layer, as FID takes
Inception's last pooled layer, the input of its classifier (Heusel et al. 2017). The logits serve the Inception
Score. Strided convolutions rather than pooling keep no full-resolution maps of many channels: 10,000 MNIST images
pass in a few seconds on 2 CPU cores (``benchmarks/sample_quality.py``).
"""
from __future__ import annotations

import torch
from torch import nn

FEATURE_LAYER = "hidden linear layer after ReLU (the classifier's input)"
CHANNELS = (32, 64, 128)


def _down(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU())


def _halved(n: int, times: int) -> int:
    """The side after ``times`` 3x3 convolutions of stride 2 and padding 1: ceil(n / 2) each time."""
    for _ in range(times):
        n = (n + 1) // 2
    return n


class ClassifierCNN(nn.Module):
    """images [B, C, H, W] in [0, 1] -> (features [B, dim], logits [B, classes])."""

    def __init__(self, shape: tuple[int, int, int], classes: int, dim: int = 128, dropout: float = 0.3):
        super().__init__()
        c, h, w = shape
        self.shape, self.classes, self.num_features = tuple(shape), classes, dim
        widths = (c, *CHANNELS)
        self.convs = nn.Sequential(*(_down(a, b) for a, b in zip(widths, widths[1:])))
        flat = CHANNELS[-1] * _halved(h, len(CHANNELS)) * _halved(w, len(CHANNELS))
        self.hidden = nn.Sequential(nn.Flatten(), nn.Linear(flat, dim), nn.ReLU())
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(dim, classes))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features = self.hidden(self.convs(2 * x - 1))  # [B, dim]
        return features, self.head(features)
