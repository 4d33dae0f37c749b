"""Gated PixelCNN over a grid of discrete codes (van den Oord et al. 2016, "Conditional Image Generation
with PixelCNN Decoders"), the learned prior of a VQ-VAE.

Two stacks remove the blind spot: the vertical stack sees the rows above, the horizontal stack the pixels
to the left in the same row. Causality comes from masks multiplied into the weights at every call
(``F.conv2d(x, w * mask)``), never written into the parameters.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .family import CODE_PRIOR


class MaskedConv2d(nn.Conv2d):
    """A convolution whose weight is multiplied by a fixed 0/1 mask (a buffer) in forward."""

    def __init__(self, *args, mask: torch.Tensor, **kwargs):
        super().__init__(*args, **kwargs)
        self.register_buffer("mask", mask.expand_as(self.weight).clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.weight * self.mask, self.bias, self.stride, self.padding)


def code_nll(logits: torch.Tensor, codes: torch.Tensor) -> torch.Tensor:
    """-log p(codes) summed over each grid, from logits [B, K, H, W]: [B] (nats)."""
    return F.cross_entropy(logits, codes, reduction="none").flatten(1).sum(1)


def gate(x: torch.Tensor) -> torch.Tensor:
    a, b = x.chunk(2, dim=1)
    return torch.tanh(a) * torch.sigmoid(b)


class GatedLayer(nn.Module):
    """One gated layer; type ``A`` (the first) excludes the current position, type ``B`` includes it."""

    def __init__(self, dim: int, kernel: int, first: bool, cond_dim: int = 0):
        super().__init__()
        k = kernel // 2
        v_mask = torch.ones(k + 1, kernel)
        h_mask = torch.ones(1, k + 1)
        if first:
            v_mask[-1] = 0  # the vertical stack's own row: rows strictly above only
            h_mask[0, -1] = 0  # the current position itself
        self.first = first
        # vertical: output row i sees input rows i-k .. i (cropped from a padded convolution)
        self.v = MaskedConv2d(dim, 2 * dim, (k + 1, kernel), padding=(k, k), mask=v_mask)
        self.h = MaskedConv2d(dim, 2 * dim, (1, k + 1), padding=(0, k), mask=h_mask)
        self.v_to_h = nn.Conv2d(2 * dim, 2 * dim, 1)
        self.h_out = nn.Conv2d(dim, dim, 1)
        self.cond = nn.Linear(cond_dim, 2 * dim, bias=False) if cond_dim else None

    def forward(self, x_v, x_h, c=None):
        """``c`` [B, cond_dim]: a conditioning vector (a latent z, a one-hot label) added to every gate."""
        h, w = x_v.shape[-2:]
        v = self.v(x_v)[:, :, :h]  # [B, 2d, H, W]
        hz = self.h(x_h)[:, :, :, :w]
        c = 0 if self.cond is None else self.cond(c)[:, :, None, None]
        out_v = gate(v + c)
        out_h = self.h_out(gate(self.v_to_h(v) + hz + c))
        return out_v, (out_h if self.first else out_h + x_h)


class GatedPixelCNN(nn.Module):
    """p(c) = prod_i p(c_i | c_<i) over an H x W grid of codes in 0..K-1 (raster order)."""

    family = CODE_PRIOR
    conditional = False

    def __init__(self, num_codes: int, dim: int = 64, layers: int = 10, kernel: int = 7, cond_dim: int = 0,
                 head: int = 512):
        super().__init__()
        self.num_codes = num_codes
        self.embed = nn.Embedding(num_codes, dim)
        self.layers = nn.ModuleList(GatedLayer(dim, kernel if i == 0 else 3, i == 0, cond_dim)
                                    for i in range(layers))
        self.head = nn.Sequential(nn.ReLU(), nn.Conv2d(dim, head, 1), nn.ReLU(), nn.Conv2d(head, num_codes, 1))

    def forward(self, codes: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        """Logits [B, K, H, W] of each code given those before it (and the conditioning c), codes [B, H, W]."""
        x = self.embed(codes).movedim(-1, 1)  # [B, d, H, W]
        x_v = x_h = x
        for layer in self.layers:
            x_v, x_h = layer(x_v, x_h, c)
        return self.head(x_h)

    def nll(self, codes: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        """-log p(codes) per grid, in nats: [B]."""
        return code_nll(self(codes, c), codes)

    def bits_per_code(self, codes: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        return self.nll(codes, c).mean() / (codes[0].numel() * math.log(2))

    @torch.no_grad()
    def sample(self, n: int, shape: tuple[int, int], c: torch.Tensor | None = None, temperature: float = 1.0,
               generator: torch.Generator | None = None) -> torch.Tensor:
        """n grids of codes, drawn position by position in raster order (H*W network passes): [n, H, W]."""
        device = self.embed.weight.device
        codes = torch.zeros(n, *shape, dtype=torch.long, device=device)
        for i in range(shape[0]):
            for j in range(shape[1]):
                logits = self(codes[:, : i + 1], c)[:, :, i, j] / temperature  # rows below i are not needed
                codes[:, i, j] = torch.multinomial(logits.softmax(-1), 1, generator=generator)[:, 0]
        return codes


class PixelCNNLikelihood(nn.Module):
    """p(x|z) = prod_i p(x_i | x_<i, z): a gated PixelCNN over the binary pixels of one-channel images,
    conditioned on z in every gate (the PixelVAE decoder; Gulrajani et al. 2017, van den Oord et al. 2016).
    It takes the place of decoder and likelihood at once: the VAE's decoder passes z through unchanged."""

    eval_batch_size = 25  # examples per evaluation pass: its gated activations ran 2.7-2.9x slower at 1000
    bpd_convention = "binary"  # a pmf over binary pixels (vaelab.eval.bpd)
    binary = True  # grey images are binarized for it (data.binarize)

    def __init__(self, shape: tuple[int, int, int], latent_dim: int, dim: int = 32, layers: int = 5, kernel: int = 7):
        super().__init__()
        if shape[0] != 1:
            raise ValueError(f"the PixelCNN decoder models one-channel binary images, got shape {shape}")
        self.shape = shape
        self.net = GatedPixelCNN(2, dim, layers, kernel, cond_dim=latent_dim, head=4 * dim)

    def log_prob(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """log p(x|z) in nats for x [B, 1, H, W] in {0, 1} and z [..., B, D]: [..., B]."""
        lead = z.shape[:-1]
        pixels = x[:, 0].long().expand(*lead[:-1], *x[:, 0].shape).reshape(-1, *self.shape[1:])
        return -self.net.nll(pixels, z.reshape(-1, z.shape[-1])).view(lead)

    @torch.no_grad()
    def mean(self, z: torch.Tensor) -> torch.Tensor:
        """There is no closed-form mean: an image drawn pixel by pixel given z [B, D], [B, 1, H, W]."""
        return self.net.sample(len(z), self.shape[1:], z).unsqueeze(1).float()

    @torch.no_grad()
    def teacher_forced_mean(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """Each pixel's E[x_i | x_<i, z] = p(x_i = 1 | x_<i, z), teacher-forced on the image x [B, 1, H, W], in one
        pass: [B, 1, H, W]. It sees x's earlier pixels, so it is not an image the model would draw."""
        return self.net(x[:, 0].long(), z).softmax(1)[:, 1:]
