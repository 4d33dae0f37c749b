"""Forward + backward time of vaelab's VectorQuantizer against vector-quantize-pytorch's VectorQuantize,
same settings, same run: EMA codebook (decay 0.99, Laplace eps 1e-5), K=512 codes of D=64, input
128 x 49 x 64, straight-through gradients (no rotation trick), commitment weight 0.25.

Before timing, vaelab's quantizer takes vector-quantize-pytorch's initial state (its codebook, embed_avg as our
embed_sum and cluster_size, which both libraries start at 1 per code), both quantize the same batch once in
training mode, and the benchmark checks that they pick the same indices, return the same quantized output
z_q (straight-through, from the codebook as it was before the step's EMA update) and the same commitment loss,
and end with the same EMA codebook. ``target_met``: vaelab at least 2.5x as fast.

    pip install vector-quantize-pytorch   # only for this benchmark
    python benchmarks/vq_throughput.py
"""
from __future__ import annotations

import argparse
import time
from importlib.metadata import version

import torch

from common import emit, machine
from vaelab.models.quantizer import VectorQuantizer

K, D, SHAPE = 512, 64, (128, 49, 64)
TARGET_SPEEDUP = 2.5


def theirs_module():
    from vector_quantize_pytorch import VectorQuantize

    return VectorQuantize(dim=D, codebook_size=K, decay=0.99, eps=1e-5, commitment_weight=0.25,
                          rotation_trick=False, kmeans_init=False)


def ours_like(theirs) -> VectorQuantizer:
    ours = VectorQuantizer(K, D, ema=True, decay=0.99, eps=1e-5, channel_dim=-1)
    cb = theirs._codebook
    ours.codebook.copy_(cb.embed[0])
    ours.embed_sum.copy_(cb.embed_avg[0])
    ours.cluster_size.copy_(cb.cluster_size[0])
    return ours


def step_ours(vq, x):
    """One forward + backward: (z_q, indices, weighted commitment loss)."""
    out = vq(x)
    loss = 0.25 * out.commitment_loss
    ((out.z_q**2).sum() + loss).backward()
    return out.z_q, out.indices, loss


def step_theirs(vq, x):
    quantize, indices, loss = vq(x)
    ((quantize**2).sum() + loss).backward()
    return quantize, indices, loss


def time_ms(fn, vq, x, reps):
    for _ in range(3):
        fn(vq, x)
    t = time.perf_counter()
    for _ in range(reps):
        fn(vq, x)
    return (time.perf_counter() - t) / reps * 1e3


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--reps", type=int, default=50)
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args()
    torch.manual_seed(0)
    theirs = theirs_module().train()
    ours = ours_like(theirs).train()
    x = torch.randn(SHAPE)

    z_q, indices, commitment = step_ours(ours, x.clone().requires_grad_())
    their_z_q, their_indices, their_commitment = step_theirs(theirs, x.clone().requires_grad_())
    diffs = {"z_q_max_abs_diff": (z_q - their_z_q).abs().max().item(),
             "commitment_loss_abs_diff": (commitment - their_commitment).abs().max().item(),
             "ema_codebook_max_abs_diff": (ours.codebook - theirs._codebook.embed[0]).abs().max().item()}

    runs = {"vaelab_ms": [], "vector_quantize_pytorch_ms": []}
    xg = x.clone().requires_grad_()
    for _ in range(args.repeats):
        runs["vaelab_ms"].append(time_ms(step_ours, ours, xg, args.reps))
        runs["vector_quantize_pytorch_ms"].append(time_ms(step_theirs, theirs, xg, args.reps))
    best = {k: min(v) for k, v in runs.items()}
    speedup = best["vector_quantize_pytorch_ms"] / best["vaelab_ms"]
    emit({
        "benchmark": "vq_throughput", "input": list(SHAPE), "codes": K, "dim": D,
        "options": "EMA decay 0.99, Laplace eps 1e-5, straight-through, commitment 0.25, no rotation trick",
        "same_indices": torch.equal(indices, their_indices), "same_z_q": diffs["z_q_max_abs_diff"] < 1e-5,
        "same_commitment_loss": diffs["commitment_loss_abs_diff"] < 1e-6, **diffs,
        "ms": {k: round(v, 3) for k, v in best.items()},
        "all_runs_ms": {k: [round(x, 3) for x in v] for k, v in runs.items()},
        "speedup": round(speedup, 2), "target_speedup": TARGET_SPEEDUP, "target_met": speedup >= TARGET_SPEEDUP,
        "vector_quantize_pytorch": version("vector-quantize-pytorch"),
        "machine": machine(),
    })


if __name__ == "__main__":
    main()
