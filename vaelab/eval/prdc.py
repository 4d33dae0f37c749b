"""Precision and recall (Kynkäänniemi et al. 2019) and density and coverage (Naeem et al. 2020) of generated samples,
from k-nearest-neighbour balls in feature space, in float64 and in row chunks: memory O(chunk x N), never N x N.

Each real feature x_i has the ball B(x_i, NND_k(x_i)), whose radius is the distance to its k-th nearest other real
feature; likewise each fake feature y_j. With the strict inequalities of the authors' ``prdc`` package:

- precision = 1/M sum_j 1[exists i: ||y_j - x_i|| < NND_k(x_i)]    (Kynkäänniemi et al. 2019, eq. 1-2)
- recall    = 1/N sum_i 1[exists j: ||x_i - y_j|| < NND_k(y_j)]
- density   = 1/(k M) sum_j sum_i 1[||y_j - x_i|| < NND_k(x_i)]      (Naeem et al. 2020, eq. 3)
- coverage  = 1/N sum_i 1[exists j: ||x_i - y_j|| < NND_k(x_i)]     (Naeem et al. 2020, eq. 4)
"""
from __future__ import annotations

import torch

CHUNK = 1024  # rows of a distance block: CHUNK x N float64


def _distances(a: torch.Tensor, b: torch.Tensor, b_sq: torch.Tensor) -> torch.Tensor:
    """Euclidean distances [len(a), len(b)] in float64 from ||a||^2 + ||b||^2 - 2 a.b (``b_sq`` = ||b||^2)."""
    sq = (a * a).sum(1, keepdim=True) + b_sq - 2 * a @ b.T
    return sq.clamp_(min=0).sqrt_()


def nearest_neighbour_radii(x: torch.Tensor, ks: tuple[int, ...], chunk: int = CHUNK) -> dict[int, torch.Tensor]:
    """NND_k(x_i) for each k in ``ks``: the distance from x_i to its k-th nearest other point, [N] each.

    The k + 1 smallest distances of a row include the point's own (0); position k is then the k-th other point,
    also when the set holds duplicates (as ``prdc`` counts them)."""
    x = x.double()
    x_sq = (x * x).sum(1)
    top = max(ks) + 1
    if len(x) < top:
        raise ValueError(f"k-nearest-neighbour balls with k = {max(ks)} need more than {max(ks)} points; got {len(x)}")
    nearest = torch.cat([_distances(x[s:s + chunk], x, x_sq).topk(top, 1, largest=False).values  # [c, top], sorted
                         for s in range(0, len(x), chunk)])
    return {k: nearest[:, k] for k in ks}


def prdc(real: torch.Tensor, fake: torch.Tensor, k_pr: int = 3, k_dc: int = 5, chunk: int = CHUNK) -> dict:
    """precision and recall with k = ``k_pr`` balls, density and coverage with k = ``k_dc`` balls, of ``fake``
    features [M, D] against ``real`` features [N, D]; float64 throughout."""
    real, fake = real.double(), fake.double()
    r_real = nearest_neighbour_radii(real, (k_pr, k_dc), chunk)  # [N] each
    r_fake = nearest_neighbour_radii(fake, (k_pr,), chunk)[k_pr]  # [M]
    real_sq = (real * real).sum(1)
    in_real_ball = torch.zeros(len(fake), dtype=torch.bool)  # precision, per fake
    in_balls = torch.zeros(len(fake), dtype=torch.float64)  # density: real balls holding each fake
    in_fake_ball = torch.zeros(len(real), dtype=torch.bool)  # recall, per real
    nearest_fake = torch.full((len(real),), torch.inf, dtype=torch.float64)  # coverage, per real
    for s in range(0, len(fake), chunk):
        d = _distances(fake[s:s + chunk], real, real_sq)  # [c, N]
        in_real_ball[s:s + chunk] = (d < r_real[k_pr]).any(1)
        in_balls[s:s + chunk] = (d < r_real[k_dc]).sum(1).double()
        in_fake_ball |= (d < r_fake[s:s + chunk, None]).any(0)
        nearest_fake = torch.minimum(nearest_fake, d.min(0).values)
    return {"precision": in_real_ball.double().mean().item(), "recall": in_fake_ball.double().mean().item(),
            "density": in_balls.mean().item() / k_dc, "coverage": (nearest_fake < r_real[k_dc]).double().mean().item()}
