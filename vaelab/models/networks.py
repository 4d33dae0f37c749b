"""Encoder and decoder networks: x -> features, and (z, y) -> decoder output [C, H, W]."""
from __future__ import annotations

import math

import torch
from torch import nn

from ..registry import Registry

ACTIVATIONS: Registry[type[nn.Module]] = Registry("activation")  # and "gated": gated linear layers (MLPs only)
for _name, _cls in {"relu": nn.ReLU, "tanh": nn.Tanh, "elu": nn.ELU, "gelu": nn.GELU, "silu": nn.SiLU}.items():
    ACTIVATIONS.register(_name)(_cls)
ENCODERS: Registry = Registry("encoder architecture")
DECODERS: Registry = Registry("decoder architecture")


def activation(name: str) -> nn.Module:
    return ACTIVATIONS.get(name)()


class GatedLinear(nn.Module):
    """h = (W x + b) * sigmoid(V x + c): the gated dense layer of Dauphin et al. 2017, used by the VampPrior
    paper's MLPs (Tomczak & Welling 2018, §5)."""

    def __init__(self, n_in: int, n_out: int):
        super().__init__()
        self.linear = nn.Linear(n_in, 2 * n_out)

    def forward(self, x):
        h, g = self.linear(x).chunk(2, -1)
        return h * torch.sigmoid(g)


def mlp(sizes: list[int], act: str) -> nn.Sequential:
    """Linear layers with an activation after each; ``act="gated"`` makes each a gated linear layer."""
    layers: list[nn.Module] = []
    for n_in, n_out in zip(sizes[:-1], sizes[1:]):
        layers += [GatedLinear(n_in, n_out)] if act == "gated" else [nn.Linear(n_in, n_out), activation(act)]
    return nn.Sequential(*layers)


def conv_sizes(size: int, n_layers: int) -> list[int]:
    """Spatial sizes after each stride-2, kernel-3, padding-1 convolution: 28 -> [28, 14, 7, 4]."""
    sizes = [size]
    for _ in range(n_layers):
        sizes.append((sizes[-1] - 1) // 2 + 1)
    return sizes


@ENCODERS.register("mlp")
class MLPEncoder(nn.Module):
    """Flatten, then ``hidden`` fully connected layers."""

    def __init__(self, shape: tuple[int, int, int], hidden: list[int], act: str = "relu", **_):
        super().__init__()
        self.net = mlp([math.prod(shape), *hidden], act)
        self.out_features = hidden[-1] if hidden else math.prod(shape)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x.flatten(1))


@DECODERS.register("mlp")
class MLPDecoder(nn.Module):
    """``hidden`` fully connected layers, then a linear map to C*H*W outputs."""

    def __init__(self, in_features: int, shape: tuple[int, int, int], hidden: list[int], act: str = "relu", **_):
        super().__init__()
        sizes = [in_features, *reversed(hidden)]
        self.net = nn.Sequential(mlp(sizes, act), nn.Linear(sizes[-1], math.prod(shape)))
        self.shape = shape

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.net(h).unflatten(-1, self.shape)


@ENCODERS.register("conv")
class ConvEncoder(nn.Module):
    """Stride-2 3x3 convolutions (the seed notebook's 1x28x28 -> 8x14x14 -> 16x7x7 -> 32x4x4), flattened."""

    def __init__(self, shape: tuple[int, int, int], channels: list[int], act: str = "relu", **_):
        super().__init__()
        layers: list[nn.Module] = []
        for c_in, c_out in zip([shape[0], *channels[:-1]], channels):
            layers += [nn.Conv2d(c_in, c_out, 3, stride=2, padding=1), activation(act)]
        self.net = nn.Sequential(*layers, nn.Flatten())
        h, w = conv_sizes(shape[1], len(channels))[-1], conv_sizes(shape[2], len(channels))[-1]
        self.out_features = channels[-1] * h * w

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


@DECODERS.register("conv")
class ConvDecoder(nn.Module):
    """A linear map to the encoder's last feature map, then transposed convolutions mirroring the encoder.

    ``output_padding`` is chosen per layer so each one exactly inverts the encoder's sizes
    (28 <- 14 <- 7 <- 4 for MNIST, 32 <- 16 <- 8 <- 4 for CIFAR-sized inputs).
    """

    def __init__(self, in_features: int, shape: tuple[int, int, int], channels: list[int], act: str = "relu", **_):
        super().__init__()
        hs, ws = conv_sizes(shape[1], len(channels)), conv_sizes(shape[2], len(channels))
        self.first = (channels[-1], hs[-1], ws[-1])
        self.fc = nn.Sequential(nn.Linear(in_features, math.prod(self.first)), activation(act))
        outs = [*reversed(channels[:-1]), shape[0]]
        layers: list[nn.Module] = []
        for i, (c_in, c_out) in enumerate(zip(reversed(channels), outs)):
            h_in, w_in, h_out, w_out = hs[-1 - i], ws[-1 - i], hs[-2 - i], ws[-2 - i]
            pad = (h_out - (2 * h_in - 1), w_out - (2 * w_in - 1))
            layers.append(nn.ConvTranspose2d(c_in, c_out, 3, stride=2, padding=1, output_padding=pad))
            if i < len(channels) - 1:
                layers.append(activation(act))
        self.net = nn.Sequential(*layers)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        lead = h.shape[:-1]
        out = self.net(self.fc(h.reshape(-1, h.shape[-1])).unflatten(-1, self.first))
        return out.reshape(*lead, *out.shape[1:])


@ENCODERS.register("conv64")
class Conv64Encoder(nn.Module):
    """disentanglement_lib's encoder for 64x64 images (Locatello et al. 2019, table 1): 4x4 stride-2
    convolutions with 32, 32, 64, 64 channels, then 256 units."""

    def __init__(self, shape: tuple[int, int, int], act: str = "relu", **_):
        super().__init__()
        if shape[1:] != (64, 64):
            raise ValueError(f"the conv64 architecture takes 64x64 images, got {shape}")
        layers: list[nn.Module] = []
        for c_in, c_out in zip([shape[0], 32, 32, 64], [32, 32, 64, 64]):
            layers += [nn.Conv2d(c_in, c_out, 4, 2, 1), activation(act)]
        self.net = nn.Sequential(*layers, nn.Flatten(), nn.Linear(64 * 4 * 4, 256), activation(act))
        self.out_features = 256

    def forward(self, x):
        return self.net(x)


@DECODERS.register("conv64")
class Conv64Decoder(nn.Module):
    """The mirror of :class:`Conv64Encoder`: 256 units, 64x4x4, then 4x4 stride-2 transposed convolutions."""

    def __init__(self, in_features: int, shape: tuple[int, int, int], act: str = "relu", **_):
        super().__init__()
        self.fc = nn.Sequential(nn.Linear(in_features, 256), activation(act), nn.Linear(256, 64 * 4 * 4),
                                activation(act))
        layers: list[nn.Module] = []
        for c_in, c_out in zip([64, 64, 32, 32], [64, 32, 32, shape[0]]):
            layers += [nn.ConvTranspose2d(c_in, c_out, 4, 2, 1), activation(act)]
        self.net = nn.Sequential(*layers[:-1])

    def forward(self, h):
        lead = h.shape[:-1]
        out = self.net(self.fc(h.reshape(-1, h.shape[-1])).unflatten(-1, (64, 4, 4)))
        return out.reshape(*lead, *out.shape[1:])
