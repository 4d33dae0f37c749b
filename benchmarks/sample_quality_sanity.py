"""The sanity figures of sample quality for trained runs: against each run's test split (grey images), the FID,
precision, recall, density and coverage of

- ``train``: n training images (the floor: two draws of the data),
- ``reconstructions``: the model's reconstructions of those n training images,
- ``samples``: n samples of the model (:func:`vaelab.api.sampler`: a VAE's decoder means at z ~ p(z)),

which should come in that order; FID falls as a model trains (pass runs of the same model after more and more
training). Prints one JSON row per run.

    python benchmarks/sample_quality_sanity.py RUN [RUN ...] [--n 10000]
"""
from __future__ import annotations

import argparse

import torch

from common import emit, machine
from vaelab.api import load_run, sampler
from vaelab.eval.quality import extract, in_batches, sampled, scores
from vaelab.features import load_network, network_name
from vaelab.train import load_run_data

SHOWN = ("fid", "kid", "precision", "recall", "density", "coverage")


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("runs", nargs="+")
    p.add_argument("--n", type=int, default=10_000)
    args = p.parse_args()
    rows = []
    for run in args.runs:
        cfg, model = load_run(run)
        data = load_run_data(cfg.override({"data": {"binarize": "none"}}))
        net = load_network(network_name(cfg.data.name))
        real, _ = extract(net, in_batches(data.test.x))
        train = data.train.x[:args.n]
        torch.manual_seed(0)
        sets = {"train": extract(net, in_batches(train))[0],
                "reconstructions": extract(net, (model.reconstruct(x) for x in in_batches(train)))[0],
                "samples": extract(net, sampled(sampler(run, model), args.n))[0]}
        rows.append({"run": run, "model": cfg.model.name, "dataset": cfg.data.name, "features": net.info["name"],
                     "sha256": net.info["sha256"][:16],
                     **{name: {k: round(v, 4) for k, v in scores(real, f).items() if k in SHOWN}
                        for name, f in sets.items()}})
    emit({"benchmark": "sample_quality_sanity", **machine(), "n": args.n, "rows": rows})


if __name__ == "__main__":
    main()
