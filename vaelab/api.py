"""Loading and evaluating trained runs from Python; the sample quality of runs and of image sets."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Iterator, Sequence

import torch
from PIL import Image
from torch import nn

from .config import ConfigError, RunConfig
from .data import DATASET_PRESETS, DATASETS, Split, binarize, load_dataset
from .data.base import SPLITS
from .data.images import ImageOptions, find_images, read_images
from .eval import ais_log_likelihood, evaluate, log_likelihood, quality
from .eval.bpd import bits_per_dim, bpd_convention
from .eval.representation import representation_scores
from .eval.quality import FEATURE_BATCH, K_DENSITY_COVERAGE, K_PRECISION_RECALL, Sampler, extract, in_batches, scores
from .features import FeatureNetwork, load_network, network_name
from .measures import MEASURES
from .models import MODELS, load, load_run
from .models.linear import exact_log_px, linear_gaussian_parts
from .rundir import RunDir, RunDirError, write_atomic
from .train import load_run_data
from .train.prior import code_grid, encode_codes, prior_dir

__all__ = ["run_config", "load", "load_run", "evaluate_run", "run_sample_quality", "sampler", "compare_images",
           "disentangle_run"]


def run_config(model: str = "vae", dataset: str | None = None, assignments: Sequence[str] = (),
               patches: Sequence[dict] = ()) -> RunConfig:
    """The config that ``vaelab train --model MODEL --dataset DATASET --set A ...`` trains, from Python: defaults <-
    the dataset's presets (``DATASET_PRESETS``: grey and colour datasets take the discretized logistic likelihood)
    <- the model name's presets (``beta-vae``: ``kl.beta=4``) <- ``patches`` (nested dicts: a config file, flags)
    <- ``dataset`` <- ``assignments`` (``section.key=value`` strings). The dataset whose presets apply is the one
    the other layers name."""
    named = {"model": {"name": model}} | ({"data": {"name": dataset}} if dataset else {})

    def layered(cfg: RunConfig) -> RunConfig:
        cfg = cfg.override(MODELS.get(model).presets)
        for patch in (*patches, named):
            cfg = cfg.override(patch)
        return cfg.set(list(assignments))

    cfg = layered(RunConfig())
    presets = DATASET_PRESETS.get(cfg.data.name)
    return layered(RunConfig().override(presets)) if presets else cfg


def evaluate_run(path: str | Path, split: str = "test", checkpoint: str = "best", device: str = "cpu", *,
                 batch_size: int | None = None, seed: int = 0, nll_samples: int = 0, ais_steps: int = 0,
                 ais_chains: int = 16, progress: bool = False, sample_quality: bool = False, n_samples: int = 10_000,
                 features: str | None = None) -> dict:
    """Evaluate run ``path`` on a split of its dataset, write ``path/eval.json`` and return it (``vaelab eval``).

    Every model: its family's metrics (:func:`vaelab.eval.evaluate`) on the split binarized as the run was trained
    (``binarization`` says how); a model with a likelihood: which (``likelihood``), what it scores and what the image
    metrics compare with (``likelihood_on``, ``image_metrics_on``: binary draws, and the grey images they came
    from), the ``bpd_convention`` that applies to the split (None: no bits per dimension mean anything) and, under
    it, the negative ELBO in bits per dimension (``nelbo_bpd``, an upper bound on ``bpd``); a VQ-VAE with a code
    prior: the prior's bits per code; a VAE with ``nll_samples`` / ``ais_steps``: -log p(x) by importance sampling /
    AIS, the gap, and bits per dimension where a ``bpd_convention`` gives them meaning (:mod:`vaelab.eval.bpd`); a
    linear-Gaussian VAE: the exact ``nll_exact`` (:mod:`vaelab.models.linear`); an unconditional model with
    continuous latents on labelled data: k-means NMI/ARI of its posterior means against the labels and a linear
    probe's accuracy (:mod:`vaelab.eval.representation`); with ``sample_quality``:
    :func:`run_sample_quality` of ``n_samples`` samples on network ``features``."""
    cfg, model = load_run(path, checkpoint, device)
    if nll_samples or ais_steps:
        model.family.require("likelihood", "an NLL estimate (--nll-samples, --ais-steps)")
    dataset = load_run_data(cfg, evaluation=True)
    data = dataset.split(split)
    result = {"split": split, "checkpoint": checkpoint, "dataset": cfg.data.name, "model": cfg.model.name,
              "binarization": binarize.describe(dataset, cfg.data.binarize, cfg.data.seed, split),
              **({"limit": cfg.data.limit} if cfg.data.limit else {}),  # a quick look: not the dataset's numbers
              **evaluate(model, data, batch_size=batch_size, seed=seed)}
    if hasattr(model, "likelihood"):
        result |= likelihood_facts(cfg, model, data)
        if "nelbo" in result:
            result["nelbo_bpd"] = bits_per_dim(result["nelbo"], data.x[0].numel(), result["bpd_convention"])
    if model.family.can("code-prior") and (prior_dir(path) / "config.yaml").exists():
        _, prior = load_run(prior_dir(path), "best", device)
        result["prior_bits_per_code"] = evaluate(prior, encode_codes(model, data))["bits_per_code"]
    if model.family.latent == "continuous" and not model.conditional and dataset.num_classes >= 2:
        result |= representation_scores(model, dataset.train, data, dataset.num_classes, seed)
    if linear_gaussian_parts(model) is not None:
        result["nll_exact"] = -exact_log_px(model, data.x).mean().item()
    if nll_samples:
        ll = log_likelihood(model, data, k=nll_samples, seed=seed, progress=progress)
        result |= {"nll": ll["nll"], "nll_se": ll["nll_se"], "bpd": ll["bpd"], "bpd_convention": ll["bpd_convention"],
                   "nll_samples": ll["k"], "gap": result["nelbo"] - ll["nll"]}
    if ais_steps:
        ais = ais_log_likelihood(model, data, steps=ais_steps, chains=ais_chains, seed=seed, progress=progress)
        result["ais"] = {k: v for k, v in ais.items() if k != "log_px"}
    if sample_quality:
        result |= run_sample_quality(path, split, n_samples, features, checkpoint=checkpoint, seed=seed, device=device)
    result["metrics"] = [k for k in result if k in MEASURES and k != "n"]  # what applies to this model; the rest
    # (an ELBO, NLL, bits per dimension for a model without a likelihood; codebook use without codes) is left out
    write_atomic(RunDir(path).eval, json.dumps(result, indent=2))
    return result


def protocol_sizes(num_train: int | None, num_test: int | None = None) -> dict | None:
    """Smaller disentanglement protocol sizes for a quick look (None: Locatello et al.'s): ``num_train`` training
    points, ``num_test`` (default half as many) test and evaluation points."""
    if not num_train:
        return None
    n_test = num_test or num_train // 2
    return {"num_train": num_train, "num_test": n_test, "num_eval": n_test, "num_variance_estimate": num_train}


def score_disentanglement(path: str | Path, model: nn.Module, factors, dataset: str, seed: int = 0,
                          sizes: dict | None = None, metrics: list[str] | None = None) -> dict:
    """The disentanglement metrics of ``model``'s posterior means on factor dataset ``factors`` (named ``dataset``),
    written to ``path/disentanglement.json`` and returned: metric name -> its scores."""
    from .disentangle import all_metrics
    from .disentangle.metrics import METRICS

    unknown = sorted(set(metrics or ()) - set(METRICS))
    if unknown:
        raise ConfigError(f"unknown metric(s) {', '.join(unknown)}; known: {', '.join(METRICS)}")
    device = next(model.parameters()).device
    represent = lambda images: model.encode(images.to(device)).cpu()  # noqa: E731 - the posterior mean
    results = all_metrics(factors, represent, seed, sizes, metrics=metrics)
    write_atomic(Path(path) / "disentanglement.json", json.dumps({"dataset": dataset, "seed": seed, **results},
                                                                 indent=2))
    return results


def disentangle_run(path: str | Path, dataset: str | None = None, data_dir: str | None = None, seed: int = 0,
                    num_train: int | None = None, num_test: int | None = None, metrics: list[str] | None = None,
                    checkpoint: str = "best", device: str = "cpu") -> dict:
    """:func:`score_disentanglement` of run ``path`` on factor dataset ``dataset`` (default: the run's), with
    :func:`protocol_sizes` (``vaelab disentangle`` without its pictures)."""
    from .data.factors import load_factor_dataset

    cfg, model = load_run(path, checkpoint, device)
    model.family.require("disentangle", "disentanglement metrics")
    name = dataset or cfg.data.name
    factors = load_factor_dataset(name, data_dir or (None if dataset else cfg.data.data_dir))
    return score_disentanglement(path, model, factors, name, seed, protocol_sizes(num_train, num_test), metrics)


def likelihood_facts(cfg, model, data: Split) -> dict:
    """What eval.json says about the likelihood: its name, the data it scores, what the image metrics compare
    with, and the bits-per-dimension convention that applies to these data (or None)."""
    binarized = data.source is not None
    return {"likelihood": "pixelcnn" if cfg.model.decoder == "pixelcnn" else cfg.model.likelihood,
            "likelihood_on": "binary draws of the images (binarization)" if binarized else "the images",
            "image_metrics_on": "the grey images the draws came from" if binarized else "the images",
            "bpd_convention": bpd_convention(model, data.x)}


def sampler(path: str | Path, model: nn.Module, device: str = "cpu") -> Sampler:
    """What draws images from run ``path``'s ``model``: decoder means E[x|z] at z ~ p(z) (a CVAE's at the labels
    it is given), or a VQ-VAE's decoded code grids drawn from its code prior."""
    model.family.require("samples", "sample quality (--sample-quality)")
    if model.family.can("code-prior"):
        if not (prior_dir(path) / "config.yaml").exists():
            raise RunDirError(f"{path} has no code prior to draw samples from; train one with "
                              f"`vaelab train-prior {path}`")
        _, prior = load_run(prior_dir(path), "best", device)
        grid = code_grid(path)
        return lambda n, y: model.decode(prior.sample(n, grid))
    return lambda n, y: model.sample(n, y=None if y is None else y.to(device))


def run_sample_quality(path: str | Path, split: str = "test", n: int = 10_000, features: str | None = None, *,
                       checkpoint: str = "best", seed: int = 0, device: str = "cpu") -> dict:
    """FID, KID, Inception Score, precision/recall, density/coverage of ``n`` samples of run ``path`` against its
    dataset's ``split`` as the dataset holds it (grey images, never binarized draws), on the feature network named
    ``features`` (default: the run's dataset's, ``<dataset>-cnn``); a CVAE's also per class. The numbers come at the
    top level (as in eval.json); ``sample_quality`` says how they were made: the feature network's name, SHA-256 and
    accuracy, the sizes, the k of the nearest-neighbour balls."""
    cfg, model = load_run(path, checkpoint, device)
    draw = sampler(path, model, device)
    net = load_network(features or network_name(cfg.data.name))
    net.module.to(device)
    reference = load_run_data(cfg.override({"data": {"binarize": "none"}})).split(split)
    labels = reference.y if model.conditional else None
    q = quality.sample_quality(net, draw, reference.x, n, labels=labels, seed=seed)
    about = {"features": net.info, "reference": f"{cfg.data.name}:{split}", "n": q.pop("n"),
             "n_reference": q.pop("n_reference"), "k_precision_recall": K_PRECISION_RECALL,
             "k_density_coverage": K_DENSITY_COVERAGE, "seed": seed,
             "samples": "code grids from the code prior, decoded" if model.family.can("code-prior")
             else "decoder means E[x|z], z ~ p(z)"}
    if "per_class" in q:
        about["per_class"] = q.pop("per_class")
    return q | {"sample_quality": about}


def _dataset_spec(spec: str) -> tuple[str, str] | None:
    """("mnist", "test") for "mnist:test"; None for anything else (a folder)."""
    name, sep, split = spec.partition(":")
    if not sep or name not in DATASETS:
        return None
    if split not in SPLITS:
        raise ConfigError(f"{spec}: the split must be one of {', '.join(SPLITS)}")
    return name, split


def _image_batches(spec: str, net: FeatureNetwork, n: int | None) -> Iterator[torch.Tensor]:
    """The first ``n`` (default all) images of ``spec`` (DATASET:SPLIT, or a folder read in batches at the network's
    size; for the Inception network at the size of the folder's first image) in batches of [B, C, H, W]."""
    if (dataset := _dataset_spec(spec)) is not None:
        x = load_dataset(dataset[0]).split(dataset[1]).x[:n]
        net.check(tuple(x.shape[1:]), spec)
        return in_batches(x)
    if not Path(spec).is_dir():
        raise ConfigError(f"{spec}: neither a folder nor DATASET:SPLIT (such as mnist:test; datasets: "
                          f"{', '.join(DATASETS)})")
    paths = find_images(Path(spec))[0][:n]
    shape = net.info["shape"]
    if shape is None:
        with Image.open(paths[0]) as first:
            shape = (3, min(first.size), min(first.size))
    if shape[1] != shape[2]:
        raise ConfigError(f"{spec}: feature network {net.name} takes {shape[1]}x{shape[2]} images, and folders are "
                          "read as squares")
    opt = ImageOptions(size=shape[1], channels=shape[0])
    return (torch.from_numpy(read_images(paths[s:s + FEATURE_BATCH], opt)) for s in range(0, len(paths), FEATURE_BATCH))


def compare_images(a: str, b: str, features: str | None = None, n: int | None = None, seed: int = 0) -> dict:
    """FID, KID, precision/recall, density/coverage of images ``b`` against images ``a`` and the Inception Score of
    ``b`` (``vaelab fid``): each a folder of images or DATASET:SPLIT (``mnist:test``), its first ``n`` images. The
    feature network is ``features``, else that of the first dataset named."""
    datasets = [d for d in map(_dataset_spec, (a, b)) if d is not None]
    name = features or (network_name(datasets[0][0]) if datasets else None)
    if name is None:
        raise ConfigError("two folders: name the feature network with --features (such as mnist-cnn, or "
                          "inception:PATH)")
    net = load_network(name)
    real, _ = extract(net, _image_batches(a, net, n))
    fake, logits = extract(net, _image_batches(b, net, n))
    return {"a": a, "b": b, "n_a": len(real), "n_b": len(fake), **scores(real, fake, logits, seed),
            "features": net.info}
