"""The ``vaelab`` command line: list, train, eval, sample, reconstruct, interpolate, traverse, codes, train-prior,
disentangle, score, anomaly, impute, arithmetic, check, fid, features, sweep, export, app.

Bad input ends in one line on stderr and exit code 2 (``--debug`` or ``VAELAB_DEBUG=1`` adds the traceback); a
stop by Ctrl-C or SIGTERM in one line and exit code 130.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import sys
import time
import traceback
import warnings
from pathlib import Path

import numpy as np
import torch

from . import interrupted
from .api import compare_images, evaluate_run, load_run, protocol_sizes, run_config, score_disentanglement
from .check import check_run
from .checkpoint import CheckpointError
from .config import ConfigError, RunConfig, read_patch
from .data import DATASETS, DataError, Split, load_dataset
from .durable import VaelabWarning, write_atomic
from .eval import evaluate
from .export import export_onnx
from .features import RECIPES, folder, network_name, save_network, train_classifier
from .lock import LockError
from .measures import MEASURES, SAMPLE_QUALITY
from .models import MODELS
from .objectives import OBJECTIVES
from .registry import UnknownName
from .studies.anomaly import DEFAULT_K, REGRET_STEPS, anomaly_study, score_run
from .studies.imputation import METHODS as IMPUTATION_METHODS
from .studies.imputation import imputation_study
from .rundir import RunDir, RunDirError
from .studies.arithmetic import Arithmetic, parse_strength
from .track import TRACKERS, TrackingError, attached
from .train import NonFiniteLoss, Stopped, Trainer, load_run_data
from .train.distributed import is_main_process, teardown
from .train.prior import code_grid, prior_dir, prior_trainer
from .viz import (code_maps_figure, code_usage_figure, dims_by_kl, interpolation, kl_per_dim_figure,
                  mi_matrix_figure, reconstructions, samples, save_figure, save_grid, traversal, vq_samples)


# ----------------------------------------------------------------------------------- commands
def cmd_list(args) -> None:
    print("models:")
    for name in MODELS:
        print(f"  {name:<14} {MODELS.get(name).about}")
    print("objectives (--objective), by the model family they train:")
    for name in OBJECTIVES:
        print(f"  {name:<14} {OBJECTIVES.get(name).family.about}: {OBJECTIVES.get(name).__doc__.strip().splitlines()[0]}")
    print("datasets:")
    for name in DATASETS:
        print(f"  {name:<16} {DATASETS.get(name).__doc__.strip().splitlines()[0]}")


def train_config(args) -> RunConfig:
    """The config of ``vaelab train`` (:func:`vaelab.api.run_config`): --config file <- command-line flags <- --set
    over the presets of the model name (--model's, else the --config file's model.name, else vae) and dataset."""
    patch = read_patch(args.config) if args.config else {}
    name = args.model or patch.get("model", {}).get("name", "vae")
    flags = {"model": {"name": name}, "data": {}, "train": {}}
    if args.dataset:
        flags["data"]["name"] = args.dataset
    if args.data_dir is not None:
        flags["data"]["data_dir"] = args.data_dir
    if args.epochs is not None:
        flags["train"].update(epochs=args.epochs, steps=None)
    if args.steps is not None:
        flags["train"]["steps"] = args.steps
    for key in ("seed", "device", "track"):
        if getattr(args, key) is not None:
            flags["train"][key] = getattr(args, key)
    if args.track_uri is not None:
        flags["train"]["tracking_uri"] = args.track_uri
    if getattr(args, "objective", None) is not None:  # train's flags (a sweep sets objective.* with --set)
        flags["objective"] = {"name": args.objective}
    if getattr(args, "k", None) is not None:
        flags.setdefault("objective", {})["k"] = args.k
    if args.labels is not None:
        flags["data"]["labels"] = args.labels
    return run_config(name, patches=(patch, flags), assignments=args.set)


def cmd_train(args) -> None:
    if args.resume:
        fixed = {"--out": args.out, "--config": args.config, "--set": args.set or None, "--model": args.model,
                 "--dataset": args.dataset, "--data-dir": args.data_dir, "--objective": args.objective,
                 "--k": args.k, "--labels": args.labels, "--seed": args.seed, "--overwrite": args.overwrite or None,
                 "--track": args.track, "--track-uri": args.track_uri}
        given = [flag for flag, value in fixed.items() if value is not None]
        if given:
            raise ConfigError(f"--resume DIR continues a run with its saved config, so {', '.join(given)} cannot "
                              f"change; only --epochs, --steps and --device may")
        run = RunDir(args.resume)
        args.resume_dir, args.resume_command = run.path, f"vaelab train --resume {run.path}"
        with run.writing(is_main_process()):
            cfg = run.load_config()
            if args.epochs is not None:
                cfg.train.epochs, cfg.train.steps = args.epochs, None
            if args.steps is not None:
                cfg.train.steps = args.steps
            if args.device is not None:
                cfg.train.device = args.device
            trainer = _continue(run, cfg.check())
        if trainer.dist.is_main:
            print(f"run saved in {run.path}")
    else:
        if not args.out:
            raise ConfigError("train needs --out DIR (or --resume DIR)")
        cfg = train_config(args)
        run = RunDir(args.out)
        args.resume_dir, args.resume_command = run.path, f"vaelab train --resume {run.path}"
        with run.writing(is_main_process()):
            if run.config.exists() and elastic_restart():
                trainer = _continue(run, cfg)  # torchrun relaunched this command after a failure: no --overwrite
            else:
                if run.config.exists() and not args.overwrite:
                    raise ConfigError(f"{args.out} already holds a run; continue it with --resume {args.out}, "
                                      f"choose another --out, or pass --overwrite")
                trainer = Trainer(cfg, run.path, replace=args.overwrite)
                _fit(trainer)
        if trainer.dist.is_main:
            print(f"run saved in {run.path}")


def elastic_restart() -> bool:
    """This process is torchrun's relaunch of a job that failed (``--max-restarts``): it continues the run it was
    training, from its last checkpoint, instead of starting it again."""
    return int(os.environ.get("TORCHELASTIC_RESTART_COUNT", "0")) > 0


def _continue(run: RunDir, cfg: RunConfig) -> Trainer:
    """Resume ``run`` from its last checkpoint with ``cfg`` and train it to the end (or say it is complete)."""
    trainer = Trainer(cfg, run.path)
    trainer.resume()  # else the run was stopped before its first checkpoint: it starts again at step 0
    if trainer.stopped_early or trainer.step >= trainer.total_steps:
        if trainer.dist.is_main:
            run.repair_metrics(trainer.step, trainer.last_record)
        if trainer.stopped_early:
            print(f"{run.path}: already complete, stopped early at step {trainer.step} (train.patience="
                  f"{cfg.train.patience} epochs without a better validation loss); a larger --epochs does "
                  f"not extend it")
        else:
            print(f"{run.path}: already complete at step {trainer.step}; pass a larger --epochs or --steps "
                  f"to extend")
        return trainer
    print(f"resuming {run.path} at step {trainer.step} of {trainer.total_steps}")
    _fit(trainer)
    return trainer


def _fit(trainer: Trainer) -> dict:
    """Train, draw the curves (also after a stop), print the last record and return it."""
    try:
        record = trainer.fit()
    except (Stopped, NonFiniteLoss):
        if trainer.dist.is_main:
            _plot(trainer.run)
        raise
    if trainer.dist.is_main:
        _plot(trainer.run)
    if trainer.dist.is_main:
        print(json.dumps(record))
    return record


def _plot(run: RunDir) -> None:
    try:
        run.plot()
    except OSError as e:  # a full disk: the error that stopped training (if any) says more
        warnings.warn(f"could not draw {run.curves}: {e.strerror}", VaelabWarning)


def _split(cfg: RunConfig, name: str) -> Split:
    """A split of the run's data as the model saw it in training (a dynamic run's train split: one fixed draw)."""
    return load_run_data(cfg, evaluation=True).split(name)


def cmd_eval(args) -> None:
    result = evaluate_run(args.run, args.split, args.checkpoint, args.device, batch_size=args.batch_size,
                          seed=args.seed, nll_samples=args.nll_samples, ais_steps=args.ais_steps,
                          ais_chains=args.ais_chains, progress=True, sample_quality=args.sample_quality,
                          n_samples=args.n, features=args.features)
    rows = [("split", args.split), ("binarization", result["binarization"])]
    if "likelihood" in result:
        rows.append(("likelihood", f"{result['likelihood']} (bpd convention: {result['bpd_convention'] or 'none'})"))
        if result["image_metrics_on"] != "the images":
            rows.append(("MSE/PSNR/SSIM against", result["image_metrics_on"]))
    rows += [(MEASURES[k].heading, result[k]) for k in EVAL_SHOWN if result.get(k) is not None]
    if "nll" in result:
        rows += [(f"NLL, IS k={result['nll_samples']} (nats)", f"{result['nll']:.4f} +- {result['nll_se']:.4f}"),
                 ("-ELBO - NLL (nats)", result["gap"])]
    if "ais" in result:
        ais = result["ais"]
        rows += [(f"NLL, AIS {args.ais_steps} steps (nats)", f"{ais['nll']:.4f} +- {ais['nll_se']:.4f}"),
                 ("AIS acceptance", ais["acceptance"])]
    if result.get("bpd") is not None:
        rows.append((f"bits per dim, IS ({result['bpd_convention']})", result["bpd"]))
    if "sample_quality" in result:
        rows += quality_rows(result, result["sample_quality"]["features"])
    _print_rows(rows)
    _explain_quality(result)
    print(f"wrote {RunDir(args.run).eval}")


def _print_rows(rows) -> None:
    for name, value in rows:
        print(f"{name:<32} {value:.4f}" if isinstance(value, float) else f"{name:<32} {value}")


def quality_rows(result: dict, features: dict) -> list[tuple[str, object]]:
    """The sample-quality lines of a table: FID, KID +- its std over subsets, IS +- its std, precision, recall,
    density, coverage, with MEASURES' arrows; then the feature network they were made with."""
    rows = []
    for key in SAMPLE_QUALITY:
        if key in result:
            spread = result.get(f"{key}_std")
            rows.append((MEASURES[key].heading, result[key] if spread is None else
                         f"{result[key]:.4g} +- {spread:.2g}"))
    accuracy = features.get("test_accuracy")
    rows.append(("features", f"{features['name']} (sha256 {features['sha256'][:16]}..., "
                             f"test accuracy {'n/a' if accuracy is None else f'{accuracy:.4f}'})"))
    return rows


def _explain_quality(result: dict) -> None:
    """Under the table, one line for each sample-quality figure in it: what it is and which way is better."""
    for key in SAMPLE_QUALITY:
        if key in result:
            print(f"  {MEASURES[key].label}: {MEASURES[key].help}")


def cmd_fid(args) -> None:
    result = compare_images(args.a, args.b, args.features, args.n, args.seed)
    print(f"{args.b} ({result['n_b']} images) against {args.a} ({result['n_a']} images)")
    _print_rows(quality_rows(result, result["features"]))
    _explain_quality(result)


def cmd_features(args) -> None:
    if args.action == "list":
        found = sorted(folder().glob("*.json"))
        for meta in found:
            info = json.loads(meta.read_text())
            print(f"{info['name']:<20} test accuracy {info['test_accuracy']:.4f}  dim {info['dim']}  "
                  f"sha256 {info['sha256'][:16]}...")
        print(f"{len(found)} feature network(s) in {folder()}; vaelab trains them for: {', '.join(RECIPES)}")
        return
    if not args.dataset:
        raise ConfigError(f"features train needs --dataset: one of {', '.join(RECIPES)}")
    recipe = RECIPES.get(args.dataset)
    name = network_name(args.dataset)
    if (folder() / f"{name}.json").exists() and not args.overwrite:
        print(f"{name} is already in {folder()}; pass --overwrite to train it again")
        return
    if args.epochs:
        recipe = dataclasses.replace(recipe, epochs=args.epochs)
    data = load_dataset(args.dataset, args.data_dir)
    net, facts = train_classifier(data, recipe, args.seed)
    info = save_network(net, args.dataset, facts)
    print(f"{name}: test accuracy {info['test_accuracy']:.4f} after {info['epochs']} epochs ({info['seconds']} s); "
          f"{info['dim']} features ({info['layer']}); sha256 {info['sha256']}")
    print(f"saved in {folder()}")


EVAL_SHOWN = ("n", "nelbo", "nelbo_bpd", "recon", "kl", "sse", "mse", "psnr", "ssim", "mmd", "active_units",
              "class_error", "nmi", "ari", "probe_accuracy", "perplexity", "codes_used", "dead_codes",
              "prior_bits_per_code", "nll_exact")


def _out(args, default: str) -> Path:
    return Path(args.output) if args.output else Path(args.run) / default


def _prior(run: str, device: str):
    """The PixelCNN prior trained for VQ-VAE run ``run``: (its config, the network)."""
    if not (prior_dir(run) / "config.yaml").exists():
        raise RunDirError(f"{run} has no code prior yet; train one with `vaelab train-prior {run}`")
    return load_run(prior_dir(run), "best", device)


def cmd_sample(args) -> None:
    _, model = load_run(args.run, args.checkpoint, args.device)
    model.family.require("samples", "`vaelab sample`")
    torch.manual_seed(args.seed)
    if model.family.can("code-prior"):  # samples come from the prior over its codes
        _, prior = _prior(args.run, args.device)
        g = torch.Generator(device=args.device).manual_seed(args.seed)
        images, nrow = vq_samples(model, prior, code_grid(args.run), args.n, args.temperature, g)
    else:
        images, nrow = samples(model, args.n, args.temperature)
    print(f"wrote {save_grid(images, _out(args, 'samples.png'), nrow)}")


def cmd_train_prior(args) -> None:
    out = RunDir(prior_dir(args.run))
    args.resume_dir, args.resume_command = out.path, f"vaelab train-prior {args.run} --resume"
    with out.writing():
        trainer = prior_trainer(args.run, args.set + ([f"train.epochs={args.epochs}"] if args.epochs else []),
                                resume=args.resume)
        if trainer.stopped_early or trainer.step >= trainer.total_steps:
            out.repair_metrics(trainer.step, trainer.last_record)
            print(f"{out.path}: already complete at step {trainer.step}; pass a larger --epochs to extend")
            return
        record = _fit(trainer)
    print(f"prior saved in {trainer.run.path}; bits per code (val) {record['val/bits_per_code']:.4f}")


def cmd_check(args) -> int:
    """Read everything in a run directory; print what is damaged and what to do. Exit code 1 when anything is."""
    findings = check_run(args.run)
    for f in findings:
        print(f"{f.level:<8} {f.where}: {f.what}" + (f"; {f.todo}" if f.todo else ""))
    damaged = [f for f in findings if f.level == "damaged"]
    notes = sum(f.level == "note" for f in findings)
    print(f"{args.run}: {len(damaged) or 'nothing'} damaged" + (f", {notes} note(s)" if notes else ""))
    return 1 if damaged else 0


def cmd_codes(args) -> None:
    cfg, model = load_run(args.run, args.checkpoint, args.device)
    model.family.require("codes", "`vaelab codes`")
    split = _split(cfg, args.split)
    usage = evaluate(model, split)["code_counts"]
    out = Path(args.output) if args.output else Path(args.run)
    out.mkdir(parents=True, exist_ok=True)
    save_figure(code_usage_figure(usage), out / "codebook_usage.png")
    x = split.x[: args.n].to(args.device)
    save_figure(code_maps_figure(split.images[: args.n], model.encode(x), model.quantizer.num_codes),
                out / "code_maps.png")
    print(f"wrote {out / 'codebook_usage.png'} and {out / 'code_maps.png'}")


def cmd_disentangle(args) -> None:
    from .data.factors import load_factor_dataset

    cfg, model = load_run(args.run, args.checkpoint, args.device)
    model.family.require("disentangle", "`vaelab disentangle`")
    name = args.dataset or cfg.data.name
    factors = load_factor_dataset(name, args.data_dir or (None if args.dataset else cfg.data.data_dir))
    device = torch.device(args.device)
    results = score_disentanglement(args.run, model, factors, name, args.seed,
                                    protocol_sizes(args.num_train, args.num_test), args.metrics)
    out = Path(args.run)
    rng = torch.Generator().manual_seed(args.seed)
    _, images = factors.sample(1000, np.random.default_rng(args.seed))
    evaluation = evaluate(model, Split(images, None))
    if evaluation["kl_per_dim"] is not None:  # None: a Monte Carlo KL, with no per-dimension split
        save_figure(kl_per_dim_figure(evaluation["kl_per_dim"]), out / "kl_per_dim.png")
    if "mig" in results:
        save_figure(mi_matrix_figure(results["mig"]["mutual_information"], results["mig"]["factor_names"]),
                    out / "mutual_information.png")
    dims = dims_by_kl(evaluation)
    pick = int(torch.randint(len(images), (1,), generator=rng))
    grid, nrow = traversal(model, images[pick:pick + 1].to(device), None, dims, 9, 2.0)
    save_grid(grid, out / "traversal_by_kl.png", nrow)
    for name_, r in results.items():
        score = {k: v for k, v in r.items() if isinstance(v, float) and k not in ("seconds",)}
        print(f"{name_:<24} " + "  ".join(f"{k} {v:.3f}" for k, v in score.items()) + f"  ({r['seconds']:.1f} s)")
    pictures = [name for name, made in (("kl_per_dim.png", evaluation["kl_per_dim"] is not None),
                                        ("mutual_information.png", "mig" in results)) if made]
    print(f"wrote {out / 'disentanglement.json'}, {', '.join(pictures + ['traversal_by_kl.png'])}")


def cmd_reconstruct(args) -> None:
    cfg, model = load_run(args.run, args.checkpoint, args.device)
    model.family.require("reconstruct", "`vaelab reconstruct`")
    split = _split(cfg, args.split)
    images, nrow = reconstructions(model, split.x[:args.n], None if split.y is None else split.y[:args.n],
                                   images=split.images[:args.n])  # a binarized split's grey originals
    print(f"wrote {save_grid(images, _out(args, 'reconstructions.png'), nrow)}")


def cmd_interpolate(args) -> None:
    cfg, model = load_run(args.run, args.checkpoint, args.device)
    model.family.require("interpolate", "`vaelab interpolate`")
    split = _split(cfg, args.split)
    g = torch.Generator().manual_seed(args.seed)
    i, j = torch.randperm(len(split), generator=g)[: 2 * args.pairs].chunk(2)
    y = (None, None) if split.y is None else (split.y[i], split.y[j])
    images, nrow = interpolation(model, split.x[i], split.x[j], args.steps, *y)
    print(f"wrote {save_grid(images, _out(args, 'interpolation.png'), nrow)}")


def cmd_traverse(args) -> None:
    cfg, model = load_run(args.run, args.checkpoint, args.device)
    model.family.require("traverse", "`vaelab traverse`")
    split = _split(cfg, args.split)
    k = args.index
    if k >= len(split):
        raise ConfigError(f"--index {k} is out of range: the {args.split} split has {len(split)} images, "
                          f"so 0 to {len(split) - 1}")
    evaluation = evaluate(model, split.take(torch.arange(min(1000, len(split)))))
    dims = dims_by_kl(evaluation, args.dims)
    images, nrow = traversal(model, split.x[k:k + 1], None if split.y is None else split.y[k:k + 1],
                             dims, args.steps, args.span)
    by = "KL" if evaluation.get("kl_per_dim") is not None else "variance of the posterior mean (no per-dimension KL)"
    print(f"latent dimensions by {by} (rows): {dims}")
    print(f"wrote {save_grid(images, _out(args, 'traversal.png'), nrow)}")


def cmd_score(args) -> None:
    s, path = score_run(args.run, args.dataset, args.split, k=args.k, seed=args.seed, background=args.background,
                        regret_steps=args.regret_steps, checkpoint=args.checkpoint, out=args.output)
    print(f"{len(next(iter(s.values())))} examples of {args.dataset or 'the run dataset'}:{args.split}; mean score "
          "(higher: more anomalous)")
    _print_rows([(MEASURES[key].title, float(v.mean())) for key, v in s.items()])
    print(f"wrote {path}")


def cmd_anomaly(args) -> None:
    study = anomaly_study(args.run, normal=args.normal, anomalous=args.anomalous, holdout=args.holdout_class,
                          split=args.split, k=args.k, seed=args.seed, background=args.background,
                          regret_steps=args.regret_steps, limit=args.n, checkpoint=args.checkpoint)
    found = study.to_dict()
    print(f"normal: {study.normal} ({found['n_normal']}), anomalous: {study.anomalous} ({found['n_anomalous']})")
    metrics = ("roc_auc", "pr_auc", "fpr95")
    print(f"{'score':<34}" + "".join(f" {MEASURES[m].heading:>30}" for m in metrics))
    for key, row in study.metrics.items():
        print(f"{MEASURES[key].title:<34}" + "".join(f" {row[m]:>30.4f}" for m in metrics))
    out = Path(args.output or Path(args.run) / "anomaly")
    out.mkdir(parents=True, exist_ok=True)
    write_atomic(out / "anomaly.json", json.dumps(found, indent=2))
    for name, fig in study.figures().items():
        save_figure(fig, out / f"{name}.png")
    best = max(study.metrics, key=lambda key: study.metrics[key]["roc_auc"])
    most, least = study.extremes(best, 16)
    save_grid(torch.cat([most, least]), out / "extremes.png", nrow=16)
    print(f"wrote {out}/: anomaly.json, histograms.png, roc.png, extremes.png (by {MEASURES[best].label}: the 16 "
          "most anomalous images above the 16 least)")


def cmd_impute(args) -> None:
    study = imputation_study(args.run, args.mask, args.method, split=args.split, limit=args.n, n=args.completions,
                             steps=args.steps, k=args.k, baseline=args.baseline, seed=args.seed,
                             checkpoint=args.checkpoint)
    found = study.to_dict()
    print(f"{found['n_images']} {args.split} images, mask {args.mask}, {args.method}"
          + (f" (acceptance {found['acceptance']:.3f})" if "acceptance" in found else ""))
    keys = list(study.errors["model"])
    print(f"{'imputation':<24}" + "".join(f" {MEASURES[k].heading:>34}" for k in keys))
    for name, row in study.errors.items():
        print(f"{name:<24}" + "".join(f" {row[k]:>34.4f}" for k in keys))
    out = Path(args.output or Path(args.run) / "impute")
    out.mkdir(parents=True, exist_ok=True)
    name = f"impute-{args.method}-{Path(args.mask).stem if args.mask.endswith('.npy') else args.mask.replace(':', '')}"
    write_atomic(out / f"{name}.json", json.dumps(found, indent=2))
    images, nrow = study.picture()
    print(f"wrote {out}/{name}.json and {save_grid(images, out / f'{name}.png', nrow)} (rows: masked input, "
          "completions, truth)")
def cmd_arithmetic(args) -> None:
    """Attribute vectors (White 2016): list them, draw images moved along one (--add), or an analogy a - b + c."""
    study = Arithmetic(args.run, args.checkpoint, args.split, seed=args.seed, device=args.device)
    if not args.add and not args.analogy:
        print(f"attributes of {study.cfg.data.name} ({len(study.z)} examples), with the length of each vector:")
        for name, v in study.vectors.items():
            print(f"  {name:<24} {v.norm().item():.3f}")
        print("draw one with --add NAME, or an analogy with --analogy A B C (attribute names or img:N)")
        return
    if args.add:  # --add and --analogy exclude each other
        lo, hi = parse_strength(args.strength)
        index = torch.arange(min(args.n, len(study.z)))
        images, nrow = study.add(args.add, torch.linspace(lo, hi, args.steps), index)
        name = "".join(c if c.isalnum() else "_" for c in args.add)
        print(f"wrote {save_grid(images, _out(args, f'arithmetic_{name}.png'), nrow)} (rows: an image, then it "
              f"moved along {args.add!r} at strengths {lo:g} to {hi:g})")
    if args.analogy:
        images, nrow = study.analogy(*args.analogy)
        a, b, c = args.analogy
        print(f"wrote {save_grid(images, _out(args, 'analogy.png'), nrow)} ({a}, {b}, {c}, then {a} - {b} + {c})")


APP_SCRIPT = Path(__file__).with_name("app") / "main.py"


def sweep_spec(args):
    """The :class:`~vaelab.studies.SweepSpec` of ``vaelab sweep ARGS``, every value checked (a ConfigError names
    the bad one) before anything trains: the app checks a study with it before it starts the job."""
    from .studies import SweepSpec, parse_space

    cfg = train_config(args).set(["train.progress=false"]).check()
    space = parse_space(args.grid, args.range, cfg)
    if not space.keys:
        raise ConfigError("sweep needs at least one --grid KEY=V1,V2,... or --range KEY=LOW:HIGH[:log]")
    if args.search == "grid" and space.ranges:
        raise ConfigError("--range needs --search optuna (a grid takes --grid values only)")
    if args.search == "optuna" and not args.trials:
        raise ConfigError("--search optuna needs --trials N")
    if args.disentangle:
        from .data.factors import FACTOR_DATASETS
        if cfg.data.name not in FACTOR_DATASETS:
            raise ConfigError(f"--disentangle needs a factor dataset ({', '.join(FACTOR_DATASETS)}), not "
                              f"{cfg.data.name}")
    disentangle = {"num_train": args.disentangle_train, "metrics": ["mig", "dci"]} if args.disentangle else None
    spec = SweepSpec(cfg.to_dict(), space.to_dict(), args.search, args.trials, args.target, args.seeds, args.split,
                     disentangle)
    spec.direction()  # a bad --objective
    return spec


def cmd_sweep(args) -> None:
    """A grid or an Optuna search over config keys, each trial's seeds trained and evaluated as run directories in
    OUT/runs; the table and figures in OUT (:mod:`vaelab.studies`)."""
    from .studies import run_sweep

    report = run_sweep(sweep_spec(args), args.out, args.storage, args.jobs)
    rows = report["rows"]
    shown = [k for k in ("objective", "nelbo", "recon", "kl", "active_units", "mig", "dci") if rows and k in rows[0]]
    print("  ".join(f"{k:>12}" for k in ["trial", "seed", *report["keys"], *shown]))
    for r in rows:
        print("  ".join(f"{r[k]:>12.4g}" if isinstance(r[k], float) else f"{r[k]!s:>12}"
                        for k in ["trial", "seed", *report["keys"], *shown]))
    collapsed = [r["run"] for r in rows if r.get("collapse")]
    if collapsed:
        print(f"posterior collapse in {len(collapsed)} run(s): {', '.join(collapsed)}")
    if report["best"]:
        print(f"best ({args.target} on the {args.split} split): {report['best']}")
    print(f"wrote {Path(args.out) / 'sweep.csv'}, sweep.json, {', '.join(Path(f).name for f in report['figures'])}")


def cmd_export(args) -> None:
    written = export_onnx(args.run, args.output, args.checkpoint)
    print("wrote " + ", ".join(str(f) for f in written.values()))


def cmd_app(args) -> None:
    """Serve the app on http://HOST:PORT over the run directories in ``--runs`` (replaces this process).

    It answers only the Host names of :func:`vaelab.app.access.allowed_hosts` (DNS rebinding); served beyond this
    machine (a HOST other than loopback) it needs a token, which every visitor's first address carries."""
    try:
        import streamlit  # noqa: F401
    except ImportError:
        raise ConfigError("the app needs Streamlit: pip install 'vaelab[app]'") from None
    from . import access

    token = args.token or os.environ.get(access.TOKEN_ENV, "")
    if args.host not in access.LOOPBACK and not token:
        raise ConfigError(f"--host {args.host} serves the app beyond this machine: give it a --token (or set "
                          f"{access.TOKEN_ENV}); every visitor then opens the address printed here")
    hosts = access.allowed_hosts(args.host, args.allow_host)
    shown = "localhost" if args.host in ("0.0.0.0", "::") else args.host
    print(f"vaelab app: http://{shown}:{args.port}/{'?token=' + token if token else ''}  (runs in "
          f"{Path(args.runs).resolve()}; answers Host {', '.join(hosts)})", flush=True)
    os.environ[access.RUNS_ENV] = str(Path(args.runs).resolve())
    os.environ[access.HOSTS_ENV] = ",".join(hosts)
    os.environ[access.TOKEN_ENV] = token
    if args.max_jobs:
        os.environ[access.MAX_JOBS_ENV] = str(args.max_jobs)
    os.execv(sys.executable, [sys.executable, "-m", "vaelab.app.serve", "run", str(APP_SCRIPT), "--server.address",
                              args.host, "--server.port", str(args.port), "--server.headless", "true",
                              *[a for h in hosts for a in ("--server.allowedHosts", h)],
                              "--server.enableCORS", "true", "--server.enableXsrfProtection", "true",
                              "--server.maxUploadSize", str(args.max_upload_mb), "--client.showErrorDetails", "none",
                              "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none",
                              "--client.toolbarMode", "viewer"])


# ------------------------------------------------------------------------------------ parser
class _Parser(argparse.ArgumentParser):
    """argparse, with its errors in one line (no usage block): ``vaelab sample: error: argument --n: ...``."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


def count(least: int):
    """An argparse type: a whole number >= ``least``."""

    def parse(text: str) -> int:
        try:
            n = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number >= {least}, got {text!r}") from None
        if n < least:
            raise argparse.ArgumentTypeError(f"must be >= {least}, got {n}")
        return n

    return parse


def number(least: float, strict: bool = False):
    """An argparse type: a finite number >= ``least`` (> with ``strict``)."""

    def parse(text: str) -> float:
        try:
            x = float(text)
        except ValueError:
            x = math.nan
        if not math.isfinite(x) or x < least or (strict and x == least):
            raise argparse.ArgumentTypeError(f"must be a finite number {'>' if strict else '>='} {least:g}, got {text!r}")
        return x

    return parse


def parser() -> argparse.ArgumentParser:
    p = _Parser(prog="vaelab", description="Variational autoencoders: train, evaluate, explore.")
    debug = "on an error, also print the traceback (or set VAELAB_DEBUG=1)"
    p.add_argument("--debug", action="store_true", help=debug)
    sub = p.add_subparsers(dest="command", required=True)

    def command(name: str, fn, help: str) -> argparse.ArgumentParser:
        c = sub.add_parser(name, help=help)
        c.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=debug)
        c.set_defaults(fn=fn)
        return c

    command("list", cmd_list, "models and datasets")

    def config_flags(c: argparse.ArgumentParser, budget: str = "") -> None:
        """The flags that build a run's config (:func:`train_config`), the same for `vaelab train` and every run
        of `vaelab sweep`."""
        c.add_argument("--model", help="a name from `vaelab list` (default: the --config file's model.name, else vae)")
        c.add_argument("--dataset", help="a name from `vaelab list` (default fashion-mnist)")
        c.add_argument("--data-dir", help="the folder that holds the dataset's files (only it is searched)")
        steps = c.add_mutually_exclusive_group()
        steps.add_argument("--epochs", type=count(1), help=budget or None)
        steps.add_argument("--steps", type=count(1), help=budget or None)
        c.add_argument("--config", help="a YAML file with sections data, model, kl, train")
        c.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="e.g. kl.beta=4 (repeatable)")
        c.add_argument("--labels", type=count(1), help="semi-supervised (--model m2): keep the labels of N training "
                       "examples, balanced across classes (data.labels)")
        c.add_argument("--seed", type=int, help="train.seed")
        c.add_argument("--device", help="auto | cpu | cuda | cuda:N")
        c.add_argument("--track", choices=list(TRACKERS), help="tensorboard (default: when installed) | mlflow | none")
        c.add_argument("--track-uri", metavar="URI", help="MLflow's store or server (default: $MLFLOW_TRACKING_URI, "
                       "else mlflow.db beside the run directory)")

    t = command("train", cmd_train, "train a model (or --resume a run)")
    config_flags(t)
    t.add_argument("--out", help="run directory to create")
    t.add_argument("--resume", metavar="DIR", help="continue the run in DIR from its last checkpoint (--device may "
                   "change)")
    t.add_argument("--objective", help=f"{' | '.join(OBJECTIVES)} (default: the model's; `vaelab list` says which "
                   "trains which model)")
    t.add_argument("--k", type=count(1), help="samples of z per example for the objective (default 1)")
    t.add_argument("--overwrite", action="store_true", help="replace a run already in --out: nothing of it stays")

    def run_command(name: str, fn, help: str, split: bool = True) -> argparse.ArgumentParser:
        c = command(name, fn, help)
        c.add_argument("run", help="run directory")
        c.add_argument("--checkpoint", default="best", choices=("best", "last"))
        c.add_argument("--device", default="cpu")
        c.add_argument("--seed", type=int, default=0)
        if split:
            c.add_argument("--split", default="test", choices=("train", "val", "test"))
        if name != "eval":
            what = {"score": "CSV file", "anomaly": "folder", "impute": "folder", "codes": "folder"}.get(name, "PNG file")
            c.add_argument("-o", "--output", help=f"{what} (default: in the run directory)")
        return c

    e = run_command("eval", cmd_eval, "evaluate a run: writes DIR/eval.json")
    e.add_argument("--batch-size", type=count(1), help="examples per pass (default: the model's; 1000, fewer for "
                   "VQ-VAEs and PixelCNN decoders)")
    e.add_argument("--nll-samples", type=count(0), default=0,
                   help="importance samples per example for the NLL (e.g. 5000)")
    e.add_argument("--ais-steps", type=count(0), default=0, help="also estimate the NLL by AIS with this many steps")
    e.add_argument("--ais-chains", type=count(1), default=16)
    e.add_argument("--sample-quality", action="store_true", help="also FID, KID, IS, precision/recall, "
                   "density/coverage of samples against the split (needs a feature network: `vaelab features`)")
    e.add_argument("--n", type=count(2), default=10_000, help="samples for --sample-quality (default 10000)")
    e.add_argument("--features", help="the feature network: NAME (default: the run's dataset's, such as "
                   "mnist-cnn) or inception:PATH (the FID Inception weights file)")
    s = run_command("sample", cmd_sample, "a grid of samples (one row per class for a CVAE)", split=False)
    s.add_argument("--n", type=count(1), default=64, help="samples (per class for a CVAE)")
    s.add_argument("--temperature", type=number(0), default=1.0)
    r = run_command("reconstruct", cmd_reconstruct, "originals above their reconstructions")
    r.add_argument("--n", type=count(1), default=32)
    i = run_command("interpolate", cmd_interpolate, "decoded latent interpolations between test images")
    i.add_argument("--pairs", type=count(1), default=6)
    i.add_argument("--steps", type=count(2), default=10)
    c = run_command("codes", cmd_codes, "VQ-VAE: codebook usage histogram and code-index maps (-o: a folder)")
    c.add_argument("--n", type=count(1), default=8, help="images whose code maps are drawn")
    tp = command("train-prior", cmd_train_prior, "train a PixelCNN prior over a VQ-VAE run's codes (into DIR/prior)")
    tp.add_argument("run", help="a VQ-VAE run directory")
    tp.add_argument("--epochs", type=count(1))
    tp.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="e.g. code_prior.layers=12")
    tp.add_argument("--resume", action="store_true", help="continue DIR/prior from its last checkpoint")
    dg = run_command("disentangle", cmd_disentangle, "disentanglement metrics on a factor dataset "
                     "(writes DIR/disentanglement.json and pictures)", split=False)
    dg.add_argument("--dataset", help="factor dataset (default: the run's): dsprites, dsprites-procedural, 3dshapes")
    dg.add_argument("--data-dir")
    dg.add_argument("--num-train", type=count(1), help="smaller protocol sizes for a quick look (default: Locatello "
                    "et al.)")
    dg.add_argument("--num-test", type=count(1), default=None)
    dg.add_argument("--metrics", nargs="+", metavar="NAME", help="only these: beta_vae factor_vae mig sap dci "
                    "modularity_explicitness (default: all)")
    v = run_command("traverse", cmd_traverse, "vary one latent at a time around an encoded image")
    v.add_argument("--index", type=count(0), default=0, help="which image of the split")
    v.add_argument("--dims", type=count(1), default=10, help="how many latent dimensions (those with most KL)")
    v.add_argument("--steps", type=count(2), default=9)
    v.add_argument("--span", type=number(0, strict=True), default=3.0)
    ar = run_command("arithmetic", cmd_arithmetic, "attribute vectors (White 2016): list them, move images along "
                     "one (--add), draw an analogy (--analogy)")
    what = ar.add_mutually_exclusive_group()
    what.add_argument("--add", metavar="ATTR", help="an attribute: a class (3), a CelebA attribute (Smiling), a factor "
                    "(scale); without --add and --analogy the attributes are listed")
    ar.add_argument("--strength", default="0..2", help="A..B: the strengths drawn (default 0..2)")
    ar.add_argument("--steps", type=count(2), default=6, help="strengths between A and B (default 6)")
    ar.add_argument("--n", type=count(1), default=8, help="images moved, the first of the split (default 8)")
    what.add_argument("--analogy", nargs=3, metavar=("A", "B", "C"), help="draw A - B + C: attribute names (their "
                    "examples' mean code) or img:N (the split's N-th image)")
    k = command("check", cmd_check, "read everything in a run directory: what is damaged, and what to do "
                "(exit code 1 when anything is)")
    k.add_argument("run", help="run directory")
    f = command("fid", cmd_fid, "FID, KID, IS, precision/recall, density/coverage of images B against images A")
    f.add_argument("a", help="the reference: a folder of images or DATASET:SPLIT (such as mnist:test)")
    f.add_argument("b", help="the images judged: a folder of images or DATASET:SPLIT (such as mnist:train)")
    f.add_argument("--features", help="NAME or inception:PATH (default: the first dataset's network)")
    f.add_argument("--n", type=count(2), help="the first N images of each (default: all)")
    f.add_argument("--seed", type=int, default=0, help="KID's subsets and IS's splits")
    ft = command("features", cmd_features, "feature networks for sample quality: train one, or list those cached")
    ft.add_argument("action", choices=("train", "list"))
    ft.add_argument("--dataset", help=f"train: the labelled dataset ({', '.join(RECIPES)})")
    ft.add_argument("--data-dir", help="the folder that holds the dataset's files (only it is searched)")
    ft.add_argument("--epochs", type=count(1), help="train: epochs (default: the dataset's recipe)")
    ft.add_argument("--seed", type=int, default=0)
    ft.add_argument("--overwrite", action="store_true", help="train: replace the cached network")
    sc = run_command("score", cmd_score, "per-example anomaly scores of a dataset's split (a CSV)")
    sc.add_argument("--dataset", help="the dataset to score (default: the run's); its images must have the run's "
                    "shape")
    sc.add_argument("--k", type=count(1), default=DEFAULT_K, help="importance samples per example (default 100)")
    sc.add_argument("--background", metavar="RUN", help="a background run (trained with --set data.perturb=0.2) "
                    "for the likelihood ratio of Ren et al. 2019")
    sc.add_argument("--regret-steps", type=count(0), default=0, help="also Likelihood Regret (Xiao et al. 2020) "
                    f"with this many Adam steps per example (such as {REGRET_STEPS}; default 0: not computed)")
    an = run_command("anomaly", cmd_anomaly, "how well each anomaly score separates normal from anomalous test "
                     "examples: ROC-AUC, PR-AUC, FPR at 95%% TPR, pictures (-o: a folder)")
    an.add_argument("--normal", help="the normal examples' dataset (default: the run's, its trained classes)")
    an.add_argument("--anomalous", help="the anomalies' dataset, such as mnist for a fashion-mnist run")
    an.add_argument("--holdout-class", type=count(0), nargs="+", metavar="C", help="the anomalies are these classes "
                    "of the run's dataset (default for a run trained on data.classes: the other classes)")
    an.add_argument("--k", type=count(1), default=DEFAULT_K, help="importance samples per example (default 100)")
    an.add_argument("--background", metavar="RUN", help="a background run for the likelihood ratio")
    an.add_argument("--regret-steps", type=count(0), default=0, help="also Likelihood Regret with this many Adam "
                    f"steps per example (such as {REGRET_STEPS}; default 0: not computed)")
    an.add_argument("--n", type=count(1), help="at most this many examples of each group (default: all)")
    im = run_command("impute", cmd_impute, "fill the hidden pixels of test images; error on them against mean "
                     "imputation (-o: a folder)")
    im.add_argument("--mask", default="random:0.5", help="random:P | half-top | half-left | square:S | FILE.npy "
                    "(default random:0.5)")
    im.add_argument("--method", default="pseudo-gibbs", choices=IMPUTATION_METHODS)
    im.add_argument("--n", type=count(1), default=500, help="test images (default 500)")
    im.add_argument("--completions", type=count(1), default=5, help="chains per image (default 5)")
    im.add_argument("--steps", type=count(1), default=50, help="sweeps of each chain (default 50)")
    im.add_argument("--k", type=count(1), default=100, help="importance: draws of z per image (default 100)")
    im.add_argument("--baseline", metavar="RUN", help="a plain autoencoder run to compare with (such as "
                    "wae-mmd with --set objective.wae.lam=0)")
    sw = command("sweep", cmd_sweep, "a study: a grid or an Optuna search over config keys, one run directory per "
                 "trial and seed, with its table and rate-distortion figures")
    config_flags(sw, budget="per run")
    sw.add_argument("--objective", dest="target", default="nelbo", metavar="METRIC",
                    help="the eval.json figure a search optimizes (default nelbo); the training objective is "
                    "--set objective.name=NAME")
    sw.add_argument("--grid", action="append", default=[], metavar="KEY=V1,V2,...",
                    help="values of a config key (repeatable: every combination runs)")
    sw.add_argument("--range", action="append", default=[], metavar="KEY=LOW:HIGH[:log]",
                    help="a range of a config key, for --search optuna (whole numbers: an integer range)")
    sw.add_argument("--search", choices=("grid", "optuna"), default="grid",
                    help="grid: every combination (Optuna's GridSampler); optuna: --trials trials of TPE")
    sw.add_argument("--trials", type=count(1), help="--search optuna: trials to finish")
    sw.add_argument("--seeds", type=count(1), default=1, help="runs per trial, seeds train.seed, +1, ... (default 1)")
    sw.add_argument("--split", choices=("val", "test"), default="val",
                    help="where each run is evaluated (default val: a search must not see the test split)")
    sw.add_argument("--jobs", type=count(1), default=1, help="worker processes on this machine (default 1)")
    sw.add_argument("--storage", help="the Optuna storage: an RDB URL (sqlite:///sweep.db, postgresql://...) that "
                    "several machines share, or a journal file (default OUT/optuna.journal)")
    sw.add_argument("--disentangle", action="store_true", help="factor datasets: MIG and DCI of each run")
    sw.add_argument("--disentangle-train", type=count(1), help="with --disentangle: smaller protocol sizes "
                    "(training points; default Locatello et al.'s)")
    sw.add_argument("--out", required=True, help="the sweep's folder (run again to continue it)")
    x = command("export", cmd_export, "write a run's encoder and decoder (a VQ-VAE's quantizer too) as ONNX")
    x.add_argument("run", help="run directory")
    x.add_argument("--format", default="onnx", choices=("onnx",))
    x.add_argument("--checkpoint", default="best", choices=("best", "last"))
    x.add_argument("-o", "--output", help="folder for encoder.onnx, decoder.onnx, ... (default: DIR/onnx)")
    a = command("app", cmd_app, "the explorer: a Streamlit app to train, explore and compare runs")
    a.add_argument("--runs", default="runs", help="the folder of run directories (default ./runs)")
    a.add_argument("--host", default="127.0.0.1", help="the address to serve on (default 127.0.0.1: this machine "
                   "only; 0.0.0.0 or another needs --token)")
    a.add_argument("--port", type=int, default=8501)
    a.add_argument("--token", help="a secret every visitor's address must carry (?token=...); default "
                   "$VAELAB_APP_TOKEN")
    a.add_argument("--allow-host", action="append", default=[], metavar="NAME",
                   help="also answer this Host name (repeatable; default: localhost, 127.0.0.1, ::1, the --host)")
    a.add_argument("--max-jobs", type=count(1), help="jobs (training, ...) running at once (default: half the cores)")
    a.add_argument("--max-upload-mb", type=count(1), default=16, help="the largest upload, in MB (default 16)")
    return p


ERRORS = (ConfigError, DataError, RunDirError, CheckpointError, UnknownName, NonFiniteLoss, LockError, TrackingError)
ARTIFACTS = ("*.png", "eval.json", "disentanglement.json")  # what a command wrote into a run directory, for its tracker


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    debug = args.debug or os.environ.get("VAELAB_DEBUG", "") not in ("", "0")
    finished = False
    with warnings.catch_warnings():
        warnings.simplefilter("always", VaelabWarning)
        warnings.showwarning = _one_line_warnings(warnings.showwarning)
        try:
            started = time.time()
            code = args.fn(args) or 0
            finished = True
            _track_artifacts(args, started)
            return code
        except ERRORS as e:
            return _fail(str(e), debug, 3 if isinstance(e, NonFiniteLoss) else 2)
        except Stopped as e:
            return _fail(f"stopped at step {e.step}: the last checkpoint is kept (continue with "
                         f"`{args.resume_command}`)", debug, 130, "")
        except KeyboardInterrupt:
            return _interrupted(args, debug)
        except OSError as e:  # the disk, outside the run directory's own checks (a read-only output folder)
            where = f"{e.filename}: " if e.filename else ""
            return _fail(f"{where}{e.strerror or e}", debug, 2)
        except Exception as e:  # noqa: BLE001 - a bug: one line, the traceback with --debug
            if interrupted():
                return _interrupted(args, debug)
            return _fail(f"unexpected {type(e).__name__}: {e} (this is a bug in vaelab; `--debug` shows where)", debug,
                         1, "internal ")
        finally:
            teardown(finished)


def _track_artifacts(args, since: float) -> None:
    """Pictures and results the command wrote into its run directory since ``since``, to the run's tracker (its
    MLflow run, when it has one)."""
    run = getattr(args, "resume_dir", None) or getattr(args, "run", None)
    if run is None or not is_main_process() or not Path(run).is_dir():
        return
    tracker = attached(run)
    for pattern in ARTIFACTS:
        for file in sorted(Path(run).glob(pattern)):
            if file.stat().st_mtime >= since:
                tracker.artifact(file)


def _interrupted(args, debug: bool) -> int:
    hint = getattr(args, "resume_command", None)
    resumable = hint and (Path(args.resume_dir) / "config.yaml").exists()
    return _fail("interrupted" + (f"; continue with `{hint}`" if resumable else ""), debug, 130, "")


def _fail(message: str, debug: bool, code: int, kind: str = "") -> int:
    if debug:
        traceback.print_exc()
    what = "error: " if code != 130 else ""
    print(f"vaelab: {kind}{what}{' '.join(message.split())}", file=sys.stderr)
    return code


def _one_line_warnings(show):
    """warnings.showwarning that prints vaelab's warnings as ``vaelab: warning: ...`` and others with ``show``."""

    def show_warning(message, category, filename, lineno, file=None, line=None) -> None:
        if issubclass(category, VaelabWarning):
            print(f"vaelab: warning: {' '.join(str(message).split())}", file=sys.stderr)
        else:
            show(message, category, filename, lineno, file, line)

    return show_warning


if __name__ == "__main__":
    sys.exit(main())
