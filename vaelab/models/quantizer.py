"""Vector quantization of encoder outputs (VQ-VAE, van den Oord et al. 2017).

Each D-dimensional vector z_e is replaced by its nearest code e_k of a K x D codebook; gradients pass
straight through to the encoder (eq. 3's sg terms). Codebook training options:

- ``ema``: codes are exponential moving averages of the vectors assigned to them, with Laplace-smoothed
  counts (appendix A.1 of the paper; Razavi et al. 2019), instead of the codebook loss. Each average starts
  as one vector at the code's initial value (count 1, sum = the code), so a code no batch picks keeps about
  its value instead of becoming sum / eps, far from every encoder output;
- ``kmeans_init``: the codebook starts as k-means centroids of the first ``kmeans_batches`` training batches;
- ``dead_after``: a code unused for that many steps restarts at a random recent encoder output;
- ``lookup_dim`` and ``cosine``: look codes up in a learned low-dimensional projection of z_e, by cosine
  similarity of l2-normalized vectors (the factorized, normalized codes of Yu et al. 2022, ViT-VQGAN §3.2).

Losses, returned (never added inside) for the objective to weigh (eq. 3):
``codebook`` = ||sg[z_e] - e||^2 moves the codes (weight 1; zero with EMA),
``commitment`` = ||z_e - sg[e]||^2 moves the encoder (weight beta = 0.25 in the paper).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn


@dataclass
class Quantized:
    z_q: torch.Tensor  # like z_e, with straight-through gradients to z_e
    indices: torch.Tensor  # z_e's shape without the code dimension
    codebook_loss: torch.Tensor  # scalar, mean over elements
    commitment_loss: torch.Tensor  # scalar, mean over elements
    perplexity: torch.Tensor  # exp(entropy of this batch's code usage)
    codes_used: torch.Tensor  # fraction of codes used in this batch
    dead_codes: torch.Tensor  # codes unused for dead_window steps (with dead_after: the ones this step restarts)


def _all_reduce(t: torch.Tensor) -> torch.Tensor:
    if dist.is_available() and dist.is_initialized():
        dist.all_reduce(t)
    return t


USAGE_WINDOW = 100  # steps without use after which a code counts as dead, when dead_after does not say


class VectorQuantizer(nn.Module):
    def __init__(self, num_codes: int = 512, dim: int = 64, *, ema: bool = True, decay: float = 0.99,
                 eps: float = 1e-5, kmeans_init: bool = False, kmeans_batches: int = 4, kmeans_iters: int = 10,
                 dead_after: int = 0, lookup_dim: int | None = None, cosine: bool = False, channel_dim: int = 1):
        super().__init__()
        self.in_dim, self.dim = dim, lookup_dim or dim  # codes live in the lookup space
        self.num_codes, self.ema, self.decay, self.eps, self.cosine = num_codes, ema, decay, eps, cosine
        self.kmeans_batches, self.kmeans_iters, self.channel_dim = kmeans_batches, kmeans_iters, channel_dim
        self.dead_after, self.dead_window = dead_after, dead_after or USAGE_WINDOW
        self.project_in = nn.Linear(dim, lookup_dim) if lookup_dim else nn.Identity()
        self.project_out = nn.Linear(lookup_dim, dim) if lookup_dim else nn.Identity()
        codebook = torch.empty(num_codes, self.dim).uniform_(-1 / num_codes, 1 / num_codes)
        if ema:
            self.register_buffer("codebook", codebook)
            self.register_buffer("cluster_size", torch.ones(num_codes))
            self.register_buffer("embed_sum", codebook.clone())
        else:
            self.codebook = nn.Parameter(codebook)
        self.register_buffer("initialized", torch.tensor(not kmeans_init))
        self.register_buffer("unused_steps", torch.zeros(num_codes, dtype=torch.long))
        self.register_buffer("kmeans_data", torch.empty(0, self.dim))  # training vectors buffered for k-means

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        """The k-means buffer's length varies: take the saved one's (runs saved before it existed hold none)."""
        saved = state_dict.setdefault(prefix + "kmeans_data", torch.empty(0, self.dim))
        self.kmeans_data = self.kmeans_data.new_empty(saved.shape)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def _scores(self, flat: torch.Tensor) -> torch.Tensor:
        """||e||^2 - 2 z.e, with one matmul: [N, K]; the squared distance less ||z||^2, which argmin needs not
        (with ``cosine``, both are unit vectors and this ranks codes by cosine similarity)."""
        e = self._norm(self.codebook)
        return torch.addmm((e**2).sum(1)[None], flat, e.t(), alpha=-2)

    def distances(self, flat: torch.Tensor) -> torch.Tensor:
        """Squared distances ||z - e||^2: [N, K]."""
        return self._scores(flat).add_((flat**2).sum(1, keepdim=True))

    def nearest(self, flat: torch.Tensor) -> torch.Tensor:
        """Index of the nearest code for each row of ``flat`` [N, d] (in the lookup space): [N]."""
        return self._scores(flat).argmin(1)

    @torch.no_grad()
    def codes(self, z_e: torch.Tensor) -> torch.Tensor:
        """The code index of every vector of z_e: z_e's shape without the channel dimension."""
        z = self._norm(self.project_in(z_e.movedim(self.channel_dim, -1)))
        return self.nearest(z.reshape(-1, self.dim)).view(z.shape[:-1])

    @torch.no_grad()
    def embed(self, indices: torch.Tensor) -> torch.Tensor:
        """The quantized vectors z_q for code indices, channels at ``channel_dim``."""
        z_q = self.project_out(self.codebook[indices])  # [..., d]
        return z_q.movedim(z_q.dim() - 1, self.channel_dim)  # a positive dim: ONNX's Transpose takes no -1

    def _norm(self, t: torch.Tensor) -> torch.Tensor:
        return F.normalize(t, dim=-1) if self.cosine else t

    def forward(self, z_e: torch.Tensor) -> Quantized:
        z = self._norm(self.project_in(z_e.movedim(self.channel_dim, -1)))  # [..., d] in the lookup space
        flat = z.reshape(-1, self.dim)
        if self.training and not bool(self.initialized):
            self._kmeans_init(flat.detach())
        indices = self.nearest(flat.detach())  # [N]
        e = self.codebook[indices].view_as(z)  # nearest codes, as they were before this step's updates move them
        counts = torch.bincount(indices, minlength=self.num_codes).to(flat.dtype)  # [K]
        if self.training:
            counts = _all_reduce(counts)
            self.unused_steps.add_(1).masked_fill_(counts > 0, 0)
        dead = self.unused_steps >= self.dead_window
        n_dead = dead.sum()
        if self.training and self.ema:
            self._ema_update(flat.detach(), indices, counts)
        if self.training and self.dead_after:
            self._restart_dead(dead, flat.detach())
        codebook_loss = F.mse_loss(e, z.detach()) if not self.ema else flat.new_zeros(())
        commitment_loss = F.mse_loss(z, e.detach())
        z_q = self.project_out(z + (e - z).detach())  # straight-through: forward e, backward identity to z
        p = counts / counts.sum().clamp(min=1)
        return Quantized(
            z_q=z_q.movedim(-1, self.channel_dim), indices=indices.view(z.shape[:-1]),
            codebook_loss=codebook_loss, commitment_loss=commitment_loss,
            perplexity=torch.exp(-(p * torch.log(p + 1e-10)).sum()).detach(),
            codes_used=(counts > 0).float().mean().detach(), dead_codes=n_dead)

    @torch.no_grad()
    def _ema_update(self, flat: torch.Tensor, indices: torch.Tensor, counts: torch.Tensor) -> None:
        d = self.decay
        sums = torch.zeros_like(self.embed_sum).index_add_(0, indices, flat)  # sum of the vectors given to each code
        self.cluster_size.mul_(d).add_(counts, alpha=1 - d)
        self.embed_sum.mul_(d).add_(_all_reduce(sums), alpha=1 - d)
        n = self.cluster_size.sum()
        smoothed = (self.cluster_size + self.eps) / (n + self.num_codes * self.eps) * n  # Laplace smoothing
        self.codebook.copy_(self._norm(self.embed_sum / smoothed[:, None]))

    @torch.no_grad()
    def _kmeans_init(self, flat: torch.Tensor) -> None:
        """Buffers training batches; at the ``kmeans_batches``-th, Lloyd's k-means on them, started at random
        buffered vectors. All ranks take rank 0's centroids (so rank 0's buffer, the one checkpointed, decides)."""
        self.kmeans_data = data = torch.cat([self.kmeans_data, flat])
        if len(data) < self.kmeans_batches * len(flat):
            return
        self.kmeans_data = flat.new_empty(0, self.dim)
        g = torch.Generator(device=flat.device).manual_seed(0)
        centroids = data[torch.randint(len(data), (self.num_codes,), generator=g, device=flat.device)].clone()
        for _ in range(self.kmeans_iters):
            self.codebook.data.copy_(centroids)
            assign = self.nearest(data)
            counts = torch.bincount(assign, minlength=self.num_codes).to(data.dtype)
            sums = torch.zeros_like(centroids).index_add_(0, assign, data)
            centroids = torch.where(counts[:, None] > 0, sums / counts.clamp(min=1)[:, None], centroids)
        if dist.is_available() and dist.is_initialized():
            dist.broadcast(centroids, 0)
        self._reset(torch.arange(self.num_codes, device=flat.device), self._norm(centroids))
        self.initialized.fill_(True)

    @torch.no_grad()
    def _restart_dead(self, dead: torch.Tensor, flat: torch.Tensor) -> None:
        """Dead codes (mask [K]) move to random encoder outputs of this batch (rank 0's under DDP)."""
        codes = dead.nonzero().squeeze(1)
        if len(codes) == 0:
            return
        new = flat[torch.randint(len(flat), (len(codes),), device=flat.device)]
        if dist.is_available() and dist.is_initialized():
            dist.broadcast(new, 0)
        self._reset(codes, new)

    @torch.no_grad()
    def _reset(self, codes: torch.Tensor, vectors: torch.Tensor) -> None:
        """``codes`` start afresh at ``vectors``: EMA statistics of one vector each, no unused steps."""
        self.codebook.data[codes] = vectors
        if self.ema:
            self.embed_sum[codes] = vectors
            self.cluster_size[codes] = 1.0
        self.unused_steps[codes] = 0

    def dead_codes(self, steps: int | None = None) -> int:
        """Codes no training batch has used in the last ``steps`` steps (default: ``dead_window``, which is
        ``dead_after`` when restarts are on, else USAGE_WINDOW)."""
        return int((self.unused_steps >= (steps or self.dead_window)).sum())
