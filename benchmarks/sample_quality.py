"""Seconds to featurize 10,000 28x28 images with vaelab's feature network, and to score 10,000 against 10,000.

- ``features_s``: :func:`vaelab.eval.quality.extract` over the MNIST test set in batches of ``--batch`` (best of
  ``--reps``), with the cached ``mnist-cnn`` when it is there (else the same architecture, freshly initialized: the
  same cost). Target: under 10 s on 2 CPU cores.
- ``scores_s``: FID, KID (100 subsets of 1,000), precision/recall/density/coverage of the train set's first 10,000
  images against the test set's, on those features (float64).
- ``peak_rss_mib``: the process's peak resident memory; the batches pass one at a time, so it grows with the
  features (10,000 x 128 float64 = 10 MiB a set), not with the images.

    python benchmarks/sample_quality.py [--threads 2] [--batch 500] [--reps 3]
"""
from __future__ import annotations

import argparse
import resource
import time

import torch

from common import emit, machine, matmul_peak_gflops
from vaelab.data import load_dataset
from vaelab.eval.quality import extract, in_batches, scores
from vaelab.features import ClassifierCNN, FeatureError, FeatureNetwork, load_network

TARGET_S = 10.0


def network() -> FeatureNetwork:
    try:
        return load_network("mnist-cnn")
    except FeatureError:
        return FeatureNetwork(ClassifierCNN((1, 28, 28), 10).eval(), {"name": "untrained ClassifierCNN"})


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--batch", type=int, default=500)
    p.add_argument("--reps", type=int, default=3)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    data = load_dataset("mnist")
    test, train = data.test.x[:10_000], data.train.x[:10_000]
    net = network()
    times = []
    for _ in range(args.reps):
        t = time.perf_counter()
        real, _ = extract(net, in_batches(test, args.batch))
        times.append(time.perf_counter() - t)
    fake, logits = extract(net, in_batches(train, args.batch))
    t = time.perf_counter()
    result = scores(real, fake, logits)
    scores_s = time.perf_counter() - t
    emit({"benchmark": "sample_quality", **machine(), "matmul_peak_gflops": round(matmul_peak_gflops(), 1),
          "network": net.info["name"], "images": len(test), "batch": args.batch,
          "features_s": round(min(times), 3), "features_s_all": [round(s, 3) for s in times],
          "target_s": TARGET_S, "target_met": min(times) < TARGET_S, "scores_s": round(scores_s, 3),
          "train_vs_test": {k: round(v, 4) for k, v in result.items()},
          "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)})


if __name__ == "__main__":
    main()
