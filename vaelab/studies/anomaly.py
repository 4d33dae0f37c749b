"""Anomaly and out-of-distribution detection with a trained run: per-example scores, and how well each separates
normal from anomalous test examples.

Every score is higher for a more anomalous example:

- ``recon_error``: the mean squared error per pixel of the reconstruction E[x|z = E_q[z|x]] against the images
  (any model that reconstructs; An & Cho 2015);
- ``nelbo``: -ELBO, the mean over K draws z ~ q(z|x) of log q(z|x) - log p(x, z) (Kingma & Welling 2014, eq. 3);
- ``nll``: -log p(x) by the K-sample importance-sampling estimate from the same draws (Burda et al. 2016, eq. 8);
- ``serra``: the complexity-corrected score S(x) = -log2 p(x) - L(x), the NLL in bits minus the code length L(x) of
  x under a lossless compressor, PNG at its strongest level (Serrà et al. 2020, eq. 2): a likelihood ratio against
  a universal model of images, so simple images (large p(x) under every model) no longer look normal;
- ``llr``: -log p(x) + log p_B(x), the likelihood ratio against a background model B (Ren et al. 2019, eq. 5),
  a run trained on perturbed inputs (``--set data.perturb=0.2``), which learns the background statistics that
  dominate log p(x) and little of the semantics;
- ``regret``: Likelihood Regret (Xiao et al. 2020), the ELBO gained by fitting the posterior to one example
  (:func:`likelihood_regret`).

Detection metrics treat the anomalous examples as positives (scikit-learn's ``roc_auc_score``,
``average_precision_score``, ``roc_curve``).
"""
from __future__ import annotations

import io
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from matplotlib.figure import Figure
from PIL import Image
from sklearn.metrics import average_precision_score, roc_auc_score, roc_curve
from torch import nn

from .. import noise
from ..api import load_run
from ..config import ConfigError, RunConfig
from ..data import DataError, Split
from ..durable import write_atomic
from ..eval.common import DEFAULT_EVAL_BATCH, eval_batch_size, evaluating
from ..eval.likelihood import MAX_ELEMENTS, pass_sizes
from ..models.posterior import DiagonalGaussian
from ..models.vae import VAE
from ..train import load_run_data
from ..viz import roc_figure, score_histograms_figure

SCORES = ("recon_error", "nelbo", "nll", "serra", "llr", "regret")  # in the order tables show them
DEFAULT_K = 100  # importance samples per example: a few minutes for 20000 MNIST images on 2 cores
REGRET_STEPS = 50  # Adam steps of Likelihood Regret's per-example posterior
PNG_BATCH = 1000  # images converted to 8 bits at once for the compressor

Examples = torch.Tensor | Split  # images [N, C, H, W], or a split's, read a batch at a time (never converted whole)


def _rows(x: Examples, rows: slice, device: torch.device | str = "cpu") -> torch.Tensor:
    """The examples ``rows`` of ``x`` on ``device`` (a split's through :meth:`~vaelab.data.Split.batch`)."""
    return x.batch(rows, device) if isinstance(x, Split) else x[rows].to(device)


def png_bits(images: Examples, binary: bool) -> np.ndarray:
    """The code length in bits of each image [N, C, H, W] in [0, 1] as a PNG at compression level 9 (Serrà et al.
    2020's compressor): 1-bit pixels for binary data, else 8-bit grey or RGB. Headers included (a constant)."""
    bits = np.empty(len(images))
    for start in range(0, len(images), PNG_BATCH):
        x = _rows(images, slice(start, start + PNG_BATCH))
        x = (x.clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()  # [B, H, W, C]
        for i, img in enumerate(x):  # the compressor takes one image at a time
            pil = Image.fromarray(img[..., 0] if img.shape[-1] == 1 else img)
            buf = io.BytesIO()
            (pil.convert("1") if binary else pil).save(buf, format="PNG", compress_level=9)
            bits[start + i] = 8 * buf.tell()
    return bits


@torch.no_grad()
def likelihood_scores(model: nn.Module, x: Examples, k: int = DEFAULT_K, seed: int = 0
                      ) -> dict[str, np.ndarray]:
    """-ELBO (mean over the K draws) and the K-sample importance-sampled -log p(x), nats per example [N], from the
    same draws z ~ q(z|x), vectorized over examples and samples as :func:`vaelab.eval.log_likelihood` is."""
    device = next(model.parameters()).device
    max_elements = MAX_ELEMENTS * eval_batch_size(model) // DEFAULT_EVAL_BATCH  # as log_likelihood scales it
    batch, chunk = pass_sizes(k, math.prod((x.pixels if isinstance(x, Split) else x).shape[1:]), None, max_elements)
    n_chunks = -(-k // chunk)
    nelbo, nll = np.empty(len(x)), np.empty(len(x))
    with evaluating(model):
        for i, start in enumerate(range(0, len(x), batch)):
            xb = _rows(x, slice(start, start + batch), device)
            parts, elbo = [], torch.zeros(len(xb), dtype=torch.float64, device=device)
            for j, c0 in enumerate(range(0, k, chunk)):
                with noise.batch_noise(noise.mix_seed(seed, i * n_chunks + j), device=device):
                    t = model(xb, None, min(chunk, k - c0))
                log_w = t.log_w.double()  # [c, B]
                parts.append(torch.logsumexp(log_w, 0))
                elbo += (t.log_px_z - t.kl).double().sum(0)
            nll[start:start + len(xb)] = (-(torch.logsumexp(torch.stack(parts), 0) - math.log(k))).cpu().numpy()
            nelbo[start:start + len(xb)] = (-elbo / k).cpu().numpy()
    return {"nelbo": nelbo, "nll": nll}


def elbo_with(model: nn.Module, x: torch.Tensor, q: DiagonalGaussian, k: int) -> torch.Tensor:
    """The k-sample ELBO of x [B, ...] under posterior q, E_q[log p(x|z)] - KL(q || p(z)): [B]."""
    z, log_qz = q.rsample_and_log_prob(k)  # [k, B, D]
    log_pz = model.prior.log_prob(z)
    kl, _ = model.prior.kl(q, log_qz, log_pz)
    return (model.likelihood.log_prob(x, model.decoder_out(z)) - kl).mean(0)


def likelihood_regret(model: nn.Module, x: Examples, *, steps: int = REGRET_STEPS, lr: float = 0.1,
                      k: int = 10, seed: int = 0) -> np.ndarray:
    """Likelihood Regret (Xiao et al. 2020, eq. 6): how much the ELBO of each example rises when its posterior is
    fitted to it alone, ELBO(x; q*_x) - ELBO(x; q(z|x)) in nats [N], higher for inputs the amortized encoder (and so
    the model) has not learned. A variant: Xiao et al. fine-tune the encoder's weights per example; here the
    posterior's own parameters (mu, log sigma^2) are fitted, from the encoder's, by ``steps`` of Adam on the
    one-sample ELBO, every example of a batch at once (their gradients do not mix). Both ELBOs from the same ``k``
    draws of the noise."""
    device = next(model.parameters()).device
    out = np.empty(len(x))
    with evaluating(model):
        for i, start in enumerate(range(0, len(x), eval_batch_size(model))):
            xb = _rows(x, slice(start, start + eval_batch_size(model)), device)
            with torch.no_grad():
                q = model.posterior(xb)
            if type(q) is not DiagonalGaussian or not isinstance(model, VAE):
                raise ConfigError("Likelihood Regret fits a diagonal Gaussian posterior per example of a VAE with one "
                                  f"latent layer; this is a {type(model).__name__} with a {type(q).__name__} posterior")
            mu, logvar = q.mu.clone().requires_grad_(), q.logvar.clone().requires_grad_()
            opt = torch.optim.Adam([mu, logvar], lr=lr)
            with noise.batch_noise(noise.mix_seed(seed, i), device=device), torch.enable_grad():
                for _ in range(steps):
                    loss = -elbo_with(model, xb, DiagonalGaussian(mu, logvar), 1).sum()  # examples independent
                    mu.grad, logvar.grad = torch.autograd.grad(loss, [mu, logvar])
                    opt.step()
            with torch.no_grad():
                before = elbo_with_seed(model, xb, q, k, seed, i)
                after = elbo_with_seed(model, xb, DiagonalGaussian(mu, logvar), k, seed, i)
            out[start:start + len(xb)] = (after - before).double().cpu().numpy()
    return out


def elbo_with_seed(model: nn.Module, x: torch.Tensor, q: DiagonalGaussian, k: int, seed: int, batch: int
                   ) -> torch.Tensor:
    """:func:`elbo_with` under the noise of (seed, batch): the same draws for every q."""
    with noise.batch_noise(noise.mix_seed(seed, -1 - batch), device=x.device):
        return elbo_with(model, x, q, k)


@torch.no_grad()
def recon_error(model: nn.Module, x: Examples, images: Examples) -> np.ndarray:
    """Per-example mean squared error per pixel of the reconstruction of x against ``images`` (the grey images a
    binarized x was drawn from, else x): [N]."""
    device = next(model.parameters()).device
    out = []
    with evaluating(model):
        for start in range(0, len(x), eval_batch_size(model)):
            rows = slice(start, start + eval_batch_size(model))
            x_hat = model.reconstruct(_rows(x, rows, device))
            out.append(((x_hat - _rows(images, rows, device)) ** 2).flatten(1).mean(1).double().cpu())
    return torch.cat(out).numpy()


def scores(model: nn.Module, split: Split, *, k: int = DEFAULT_K, seed: int = 0, background: nn.Module | None = None,
           regret_steps: int = 0) -> dict[str, np.ndarray]:
    """Every score that applies to ``model`` (and ``background``; Likelihood Regret with ``regret_steps``) for each
    example of ``split``: {name: [N]}, plus ``png_bits``, the compressor's code length that ``serra`` subtracts."""
    if getattr(model, "conditional", False):
        raise ConfigError("anomaly scores need an unconditional model (a CVAE's likelihood needs the label of "
                          "the example it scores)")
    out = {"recon_error": recon_error(model, split, split if split.source is None else split.source)}
    if not model.family.density:
        return out
    out |= likelihood_scores(model, split, k, seed)
    out["png_bits"] = png_bits(split, binary=split.is_binary())
    out["serra"] = out["nll"] / math.log(2) - out["png_bits"]
    if background is not None:
        background.family.require("likelihood", "the likelihood ratio (--background)")
        out["llr"] = out["nll"] - likelihood_scores(background, split, k, seed)["nll"]
    if regret_steps:
        out["regret"] = likelihood_regret(model, split, steps=regret_steps, seed=seed)
    return out


def run_split(cfg: RunConfig, dataset: str | None, split: str, classes: list[int] | None = None) -> Split:
    """``split`` of ``dataset`` (default: the run's), binarized as the run's data were for evaluation; only
    ``classes`` (default: all). Its images must have the run's shape."""
    other = cfg.override({"data": {"name": dataset or cfg.data.name, "classes": classes}})
    data = load_run_data(other, evaluation=True)
    own = load_run_data(cfg.override({"data": {"classes": None}}), evaluation=True) if dataset else data
    if data.shape != own.shape:
        raise DataError(f"{dataset} images are {tuple(data.shape)}, and the run models {tuple(own.shape)} images")
    return data.split(split)


def score_run(path: str | Path, dataset: str | None = None, split: str = "test", *, k: int = DEFAULT_K,
              seed: int = 0, background: str | Path | None = None, regret_steps: int = 0, checkpoint: str = "best",
              out: str | Path | None = None) -> tuple[dict[str, np.ndarray], Path]:
    """``vaelab score``: the scores of every example of ``dataset``'s ``split`` under run ``path`` (and the
    ``background`` run), written as CSV (index, label, one column per score) to ``out`` (default:
    ``path/scores/<dataset>-<split>.csv``); returns (scores, the file)."""
    cfg, model = load_run(path, checkpoint)
    data = run_split(cfg, dataset, split)
    bg = load_run(background, "best")[1] if background else None
    s = scores(model, data, k=k, seed=seed, background=bg, regret_steps=regret_steps)
    labels = data.y.numpy() if data.y is not None else np.full(len(data), -1)
    out = Path(out) if out else Path(path) / "scores" / f"{dataset or cfg.data.name}-{split}.csv"
    out.parent.mkdir(parents=True, exist_ok=True)
    names = list(s)
    rows = [",".join(["index", "label", *names])]
    rows += [",".join([str(i), str(int(labels[i])), *(f"{s[n][i]:.6g}" for n in names)]) for i in range(len(data))]
    write_atomic(out, "\n".join(rows) + "\n")
    return s, out


def detection(normal: np.ndarray, anomalous: np.ndarray) -> dict[str, float]:
    """ROC-AUC, PR-AUC (average precision) and the false-positive rate at 95% true-positive rate of a score that is
    higher for anomalies, the anomalies being the positives."""
    y = np.r_[np.zeros(len(normal)), np.ones(len(anomalous))]
    s = np.r_[normal, anomalous]
    fpr, tpr, _ = roc_curve(y, s)
    return {"roc_auc": float(roc_auc_score(y, s)), "pr_auc": float(average_precision_score(y, s)),
            "fpr95": float(fpr[np.searchsorted(tpr, 0.95)])}


@dataclass
class AnomalyStudy:
    """What ``vaelab anomaly`` finds: per score, the detection metrics and the scores of both groups; the images."""

    normal: str  # what the normal examples are, in words
    anomalous: str
    metrics: dict[str, dict[str, float]]  # score -> {roc_auc, pr_auc, fpr95}
    scores_normal: dict[str, np.ndarray]
    scores_anomalous: dict[str, np.ndarray]
    examples: Split  # normal then anomalous examples [N + M, C, H, W]
    extra: dict = field(default_factory=dict)

    def extremes(self, score: str, n: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
        """The n most and the n least anomalous images by ``score`` over both groups: ([n, C, H, W], [n, ...])."""
        s = np.r_[self.scores_normal[score], self.scores_anomalous[score]]
        order = torch.from_numpy(np.argsort(-s, kind="stable").copy())
        return self.examples.images_at(order[:n]), self.examples.images_at(order.flip(0)[:n])

    def roc_curves(self) -> dict[str, tuple[np.ndarray, np.ndarray, float]]:
        """{score: (false-positive rates, true-positive rates, ROC-AUC)}."""
        y = np.r_[np.zeros(len(self.examples) - len(self.scores_anomalous["recon_error"])),
                  np.ones(len(self.scores_anomalous["recon_error"]))]
        return {key: (*roc_curve(y, np.r_[self.scores_normal[key], self.scores_anomalous[key]])[:2],
                      self.metrics[key]["roc_auc"]) for key in self.metrics}

    def figures(self) -> dict[str, Figure]:
        """{"histograms": the scores of both groups per score, "roc": the ROC curves}."""
        return {"histograms": score_histograms_figure(self.scores_normal, self.scores_anomalous, self.metrics),
                "roc": roc_figure(self.roc_curves())}

    def to_dict(self) -> dict:
        return {"normal": self.normal, "anomalous": self.anomalous, "metrics": self.metrics,
                "n_normal": len(next(iter(self.scores_normal.values()))),
                "n_anomalous": len(next(iter(self.scores_anomalous.values()))), **self.extra}


def anomaly_study(path: str | Path, *, normal: str | None = None, anomalous: str | None = None,
                  holdout: list[int] | None = None, split: str = "test", k: int = DEFAULT_K, seed: int = 0,
                  background: str | Path | None = None, regret_steps: int = 0, limit: int | None = None,
                  checkpoint: str = "best") -> AnomalyStudy:
    """Score the normal examples (``normal``'s split, default the run's dataset restricted to the classes the run
    trained on, or to all but the ``holdout`` classes) and the anomalous ones (``anomalous``'s split, else the
    ``holdout`` classes of the run's dataset, else, for a run trained on some classes, the others), the first
    ``limit`` of each; the detection metrics of every score."""
    cfg, model = load_run(path, checkpoint)
    trained = cfg.data.classes
    if anomalous is None and holdout is None and trained is None:
        raise ConfigError("name the anomalies: --anomalous DATASET or --holdout-class C (or train the run on some "
                          "classes, data.classes, to take the others as anomalies)")
    if anomalous is not None and holdout is not None:
        raise ConfigError("--anomalous and --holdout-class both name the anomalies; give one")
    labels = range(load_run_data(cfg.override({"data": {"classes": None}})).num_classes)
    if anomalous is None:
        holdout = sorted(set(holdout) if holdout is not None else set(labels) - set(trained))
        normal_classes = sorted(set(trained or labels) - set(holdout)) if normal is None else None
        if not holdout or (normal is None and not normal_classes):
            raise ConfigError("the held-out classes leave no normal or no anomalous class")
    else:
        normal_classes = trained if normal is None else None
    a = run_split(cfg, anomalous, split, None if anomalous is not None else holdout)
    nm = run_split(cfg, normal, split, normal_classes)
    a, nm = (s.take(torch.arange(min(limit or len(s), len(s)))) for s in (a, nm))
    bg = load_run(background, "best")[1] if background else None
    pixels = [nm.pixels, a.pixels] if nm.pixels.dtype == a.pixels.dtype else [nm.x, a.x]  # as stored when alike
    both = Split(torch.cat(pixels), None, None if nm.source is None else torch.cat([nm.images, a.images]))
    s = scores(model, both, k=k, seed=seed, background=bg, regret_steps=regret_steps)
    s.pop("png_bits", None)
    sn, sa = ({key: v[rows] for key, v in s.items()} for rows in (slice(0, len(nm)), slice(len(nm), None)))
    metrics = {key: detection(sn[key], sa[key]) for key in s}
    name = normal or cfg.data.name
    return AnomalyStudy(f"{name}:{split}" + (f" classes {normal_classes}" if normal_classes else ""),
                        f"{anomalous}:{split}" if anomalous else f"{cfg.data.name}:{split} classes {holdout}",
                        metrics, sn, sa, both, {"k": k, "seed": seed, "background": str(background or "")})
