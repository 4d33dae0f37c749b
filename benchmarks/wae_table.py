"""A table like the WAE paper's (Tolstikhin et al. 2018): VAE, beta-VAE, InfoVAE, WAE-MMD, WAE-GAN, AAE and VAE-GAN
with the same encoder and decoder on grey MNIST, at one CPU budget.

Every row: the MLP model.arch with ``--hidden`` units, d_z = 8 (the paper's MNIST), batches of 100, Adam lr 1e-3 with
beta1 0.5 (the paper's), ``--steps`` steps, data.binarize none (the VAEs' Bernoulli likelihood is then a
cross-entropy on grey pixels). Each row prints, on the first ``--test-size`` test images: the reconstruction's MSE
per pixel, PSNR and SSIM; ``mmd``, the MMD between codes z ~ q(z|x) and prior draws (vaelab.eval.CodeSample: how
close the aggregate posterior is to the prior); ``sample_mmd``, the same unbiased MMD between ``--test-size``
samples and as many test images in pixel space (IMQ kernels scaled by the median distance: a kernel two-sample
statistic, lower is closer to the data; not FID); and FID / KID / precision / recall / density / coverage of
``--quality-n`` samples against the whole test split on vaelab's MNIST feature network (`vaelab features train
--dataset mnist` first; its name and SHA-256 are printed with the table). Sample grids go to
``--out``/<row>/samples.png. One torch thread by default (``--threads``).

    python benchmarks/wae_table.py [--steps 1000] [--hidden 256] [--test-size 1000] [--quality-n 10000]
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from vaelab import noise
from vaelab.config import RunConfig
from vaelab.eval import evaluate, quality
from vaelab.features import FeatureNetwork, load_network
from vaelab.models import MODELS
from vaelab.objectives.mmd import WAE_SCALES, mmd_u, squared_distances
from vaelab.train import Trainer
from vaelab.viz import save_grid

from common import emit, machine

ROWS = {  # row: (model preset, config overrides)
    "VAE": ("vae", []),
    "beta-VAE (beta 4)": ("beta-vae", []),
    "InfoVAE (alpha 0, lambda 1000)": ("infovae", []),
    "WAE-MMD (lambda 10)": ("wae-mmd", ["objective.wae.lam=10"]),
    "WAE-GAN (lambda 10)": ("wae-gan", ["objective.wae_gan.lam=10"]),
    "AAE": ("aae", []),
    "VAE-GAN": ("vae-gan", []),
}


def row_config(model: str, sets: list[str], args) -> RunConfig:
    return RunConfig().override(MODELS.get(model).presets).set([
        f"model.name={model}", "data.name=mnist", "data.binarize=none", "data.val_size=1000", "model.arch=mlp",
        f"model.hidden=[{args.hidden}]", "model.latent_dim=8", "train.batch_size=100", "train.lr=1e-3",
        "train.adam_beta1=0.5", f"train.steps={args.steps}", "train.progress=false", *sets])


@torch.no_grad()
def sample_mmd(model, test: torch.Tensor, seed: int = 0) -> float:
    """Unbiased MMD^2 between len(test) samples and the test images, in float64, under IMQ kernels whose C is the
    median squared distance between test images times the WAE's scales 0.1 .. 10 (in 784 dimensions the prior's
    C = 2 d sigma^2 would dwarf the distances between digits)."""
    with noise.batch_noise(seed):
        x = model.sample(len(test)).flatten(1).double()
    y = test.flatten(1).double()
    median = squared_distances(y, y).median().item()
    return mmd_u(x, y, "imq", [median / (2 * y.shape[1]) * s for s in WAE_SCALES]).item()


def sample_quality(model, net: FeatureNetwork, test: torch.Tensor, n: int) -> dict:
    """FID, KID, precision/recall, density/coverage of ``n`` samples against the ``test`` images
    (:func:`vaelab.eval.quality.sample_quality`), on feature network ``net``."""
    q = quality.sample_quality(net, lambda k, y: model.sample(k), test, n)
    return {k: q[k] for k in ("fid", "kid", "precision", "recall", "density", "coverage")}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, default=1000)
    p.add_argument("--hidden", type=int, default=256)
    p.add_argument("--test-size", type=int, default=1000)
    p.add_argument("--threads", type=int, default=1, help="torch threads (tiny MLPs run fastest on one)")
    p.add_argument("--quality-n", type=int, default=10_000, help="samples scored by FID/KID/precision/recall")
    p.add_argument("--out", default="runs/wae-table")
    p.add_argument("--rows", nargs="+", default=list(ROWS), choices=list(ROWS))
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    net = load_network("mnist-cnn")
    rows = []
    for name in args.rows:
        model_name, sets = ROWS[name]
        out = Path(args.out) / model_name
        t0 = time.perf_counter()
        trainer = Trainer(row_config(model_name, sets, args), out, replace=True)
        trainer.fit()
        train_s = time.perf_counter() - t0
        model, test = trainer.model.eval(), trainer.data.test.take(torch.arange(args.test_size))
        ev = evaluate(model, test)
        save_grid(model.sample(64), out / "samples.png", 8)
        row = {"row": name, "model": model_name, "steps": args.steps, "train_s": round(train_s, 1),
               "mse": ev["mse"], "psnr": ev["psnr"], "ssim": ev["ssim"], "mmd": ev["mmd"],
               "sample_mmd": sample_mmd(model, test.x),
               **sample_quality(model, net, trainer.data.test.x, args.quality_n)}
        rows.append(row)
        emit(row)
    emit({"machine": machine(), "features": net.info, "rows": rows})


if __name__ == "__main__":
    main()
