"""The ``vaelab`` command line: list, train, eval, sample, reconstruct, interpolate, traverse, codes, train-prior,
disentangle, fid, features, app."""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from pathlib import Path

import numpy as np
import torch

from .api import compare_images, evaluate_run, load_run
from .checkpoint import CheckpointError
from .config import ConfigError, RunConfig, read_patch
from .data import DATASETS, DataError, Split, load_dataset
from .eval import evaluate
from .features import RECIPES, folder, network_name, save_network, train_classifier
from .measures import MEASURES
from .models import MODELS
from .objectives import OBJECTIVES
from .registry import UnknownName
from .rundir import RunDir, RunDirError
from .train import NonFiniteLoss, Trainer, load_run_data
from .train.distributed import teardown
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
    """defaults <- the model name's presets <- --config file <- command-line flags <- --set.

    The model name is --model's, else the --config file's model.name, else vae."""
    patch = read_patch(args.config) if args.config else {}
    name = args.model or patch.get("model", {}).get("name", "vae")
    cfg = RunConfig().override(MODELS.get(name).presets).override(patch)
    flags = {"model": {"name": name}, "data": {}, "train": {}}
    if args.dataset:
        flags["data"]["name"] = args.dataset
    if args.data_dir:
        flags["data"]["data_dir"] = args.data_dir
    if args.epochs is not None:
        flags["train"].update(epochs=args.epochs, steps=None)
    if args.steps is not None:
        flags["train"]["steps"] = args.steps
    for key in ("seed", "device"):
        if getattr(args, key) is not None:
            flags["train"][key] = getattr(args, key)
    if args.objective is not None:
        flags["objective"] = {"name": args.objective}
    if args.k is not None:
        flags.setdefault("objective", {})["k"] = args.k
    return cfg.override(flags).set(args.set)


def cmd_train(args) -> None:
    if args.resume:
        fixed = {"--out": args.out, "--config": args.config, "--set": args.set or None, "--model": args.model,
                 "--dataset": args.dataset, "--data-dir": args.data_dir, "--objective": args.objective,
                 "--k": args.k, "--seed": args.seed}
        given = [flag for flag, value in fixed.items() if value is not None]
        if given:
            raise ConfigError(f"--resume DIR continues a run with its saved config, so {', '.join(given)} cannot "
                              f"change; only --epochs, --steps and --device may")
        run = RunDir(args.resume)
        cfg = run.load_config()
        if args.epochs is not None:
            cfg.train.epochs, cfg.train.steps = args.epochs, None
        if args.steps is not None:
            cfg.train.steps = args.steps
        if args.device is not None:
            cfg.train.device = args.device
        trainer = Trainer(cfg, run.path)
        if run.last.exists():  # else the run was stopped before its first checkpoint: it starts again at step 0
            trainer.load_state(run.last)
        if trainer.stopped_early:
            print(f"{run.path}: already complete, stopped early at step {trainer.step} (train.patience="
                  f"{cfg.train.patience} epochs without a better validation loss); a larger --epochs does not extend it")
            return
        if trainer.step >= trainer.total_steps:
            print(f"{run.path}: already complete at step {trainer.step}; pass a larger --epochs or --steps to extend")
            return
        print(f"resuming {run.path} at step {trainer.step} of {trainer.total_steps}")
    else:
        if not args.out:
            raise ConfigError("train needs --out DIR (or --resume DIR)")
        if RunDir(args.out).config.exists() and not args.overwrite:
            raise ConfigError(f"{args.out} already holds a run; continue it with --resume {args.out}, "
                              f"choose another --out, or pass --overwrite")
        trainer = Trainer(train_config(args), args.out)
    try:
        record = trainer.fit()
    finally:
        if trainer.dist.is_main:
            trainer.run.plot()
    if trainer.dist.is_main:
        print(json.dumps(record))
        print(f"run saved in {trainer.run.path}")


def _split(cfg: RunConfig, name: str) -> Split:
    return load_run_data(cfg).split(name)


def cmd_eval(args) -> None:
    result = evaluate_run(args.run, args.split, args.checkpoint, args.device, batch_size=args.batch_size,
                          seed=args.seed, nll_samples=args.nll_samples, ais_steps=args.ais_steps,
                          ais_chains=args.ais_chains, progress=True, sample_quality=args.sample_quality,
                          n_samples=args.n, features=args.features)
    rows = [("split", args.split)] + [(MEASURES[k].heading, result[k]) for k in EVAL_SHOWN if k in result]
    if "nll" in result:
        rows += [(f"NLL, IS k={result['nll_samples']} (nats)", f"{result['nll']:.4f} +- {result['nll_se']:.4f}"),
                 ("bits per dim", result["bpd"]), ("-ELBO - NLL (nats)", result["gap"])]
    if "ais" in result:
        ais = result["ais"]
        rows += [(f"NLL, AIS {args.ais_steps} steps (nats)", f"{ais['nll']:.4f} +- {ais['nll_se']:.4f}"),
                 ("AIS acceptance", ais["acceptance"])]
    if "sample_quality" in result:
        rows += quality_rows(result, result["sample_quality"]["features"])
    _print_rows(rows)
    print(f"wrote {RunDir(args.run).eval}")


def _print_rows(rows) -> None:
    for name, value in rows:
        print(f"{name:<24} {value:.4f}" if isinstance(value, float) else f"{name:<24} {value}")


def quality_rows(result: dict, features: dict) -> list[tuple[str, object]]:
    """The sample-quality lines of a table: FID, KID +- its std over subsets, IS +- its std, precision, recall,
    density, coverage, with MEASURES' arrows; then the feature network they were made with."""
    rows = []
    for key in QUALITY_SHOWN:
        if key in result:
            spread = result.get(f"{key}_std")
            rows.append((MEASURES[key].heading, result[key] if spread is None else
                         f"{result[key]:.4g} +- {spread:.2g}"))
    accuracy = features.get("test_accuracy")
    rows.append(("features", f"{features['name']} (sha256 {features['sha256'][:16]}..., "
                             f"test accuracy {'n/a' if accuracy is None else f'{accuracy:.4f}'})"))
    return rows


QUALITY_SHOWN = ("fid", "kid", "inception_score", "precision", "recall", "density", "coverage")


def cmd_fid(args) -> None:
    result = compare_images(args.a, args.b, args.features, args.n, args.seed)
    print(f"{args.b} ({result['n_b']} images) against {args.a} ({result['n_a']} images)")
    _print_rows(quality_rows(result, result["features"]))


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


EVAL_SHOWN = ("n", "nelbo", "recon", "kl", "mse", "psnr", "ssim", "active_units", "perplexity", "codes_used",
              "dead_codes", "prior_bits_per_code")




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
    trainer = prior_trainer(args.run, args.set + ([f"train.epochs={args.epochs}"] if args.epochs else []),
                            resume=args.resume)
    try:
        record = trainer.fit()
    finally:
        trainer.run.plot()
    print(json.dumps(record))
    print(f"prior saved in {trainer.run.path}; bits per code (val) {record['val/bits_per_code']:.4f}")


def cmd_codes(args) -> None:
    cfg, model = load_run(args.run, args.checkpoint, args.device)
    model.family.require("codes", "`vaelab codes`")
    split = _split(cfg, args.split)
    usage = evaluate(model, split)["code_counts"]
    out = Path(args.output) if args.output else Path(args.run)
    out.mkdir(parents=True, exist_ok=True)
    save_figure(code_usage_figure(usage), out / "codebook_usage.png")
    x = split.x[: args.n].to(args.device)
    save_figure(code_maps_figure(x, model.encode(x), model.quantizer.num_codes), out / "code_maps.png")
    print(f"wrote {out / 'codebook_usage.png'} and {out / 'code_maps.png'}")


def cmd_disentangle(args) -> None:
    from .data.factors import load_factor_dataset
    from .disentangle import all_metrics
    from .disentangle.metrics import METRICS

    unknown = sorted(set(args.metrics or ()) - set(METRICS))
    if unknown:
        raise ConfigError(f"unknown metric(s) {', '.join(unknown)}; known: {', '.join(METRICS)}")

    cfg, model = load_run(args.run, args.checkpoint, args.device)
    model.family.require("disentangle", "`vaelab disentangle`")
    name = args.dataset or cfg.data.name
    factors = load_factor_dataset(name, args.data_dir or (None if args.dataset else cfg.data.data_dir))
    device = torch.device(args.device)
    represent = lambda images: model.encode(images.to(device)).cpu()  # noqa: E731 - the posterior mean
    sizes = None
    if args.num_train:
        n_test = args.num_test or args.num_train // 2
        sizes = {"num_train": args.num_train, "num_test": n_test, "num_eval": n_test,
                 "num_variance_estimate": args.num_train}
    results = all_metrics(factors, represent, args.seed, sizes, metrics=args.metrics)
    out = Path(args.run)
    (out / "disentanglement.json").write_text(json.dumps({"dataset": name, "seed": args.seed, **results}, indent=2))
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
    images, nrow = reconstructions(model, split.x[:args.n], None if split.y is None else split.y[:args.n])
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
    evaluation = evaluate(model, split.take(torch.arange(min(1000, len(split)))))
    dims = dims_by_kl(evaluation, args.dims)
    k = args.index
    images, nrow = traversal(model, split.x[k:k + 1], None if split.y is None else split.y[k:k + 1],
                             dims, args.steps, args.span)
    by = "KL" if evaluation["kl_per_dim"] is not None else "variance of the posterior mean (no per-dimension KL)"
    print(f"latent dimensions by {by} (rows): {dims}")
    print(f"wrote {save_grid(images, _out(args, 'traversal.png'), nrow)}")


APP_RUNS_ENV = "VAELAB_APP_RUNS"  # the runs directory, handed from `vaelab app` to the app's pages
APP_SCRIPT = Path(__file__).with_name("app") / "main.py"


def cmd_app(args) -> None:
    """Serve the app on http://HOST:PORT over the run directories in ``--runs`` (replaces this process)."""
    try:
        import streamlit  # noqa: F401
    except ImportError:
        raise ConfigError("the app needs Streamlit: pip install 'vaelab[app]'") from None
    print(f"vaelab app: http://{args.host}:{args.port}  (runs in {Path(args.runs).resolve()})", flush=True)
    os.environ[APP_RUNS_ENV] = str(Path(args.runs).resolve())
    os.execv(sys.executable, [sys.executable, "-m", "streamlit", "run", str(APP_SCRIPT), "--server.address",
                              args.host, "--server.port", str(args.port), "--server.headless", "true",
                              "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none",
                              "--client.toolbarMode", "viewer"])


# ------------------------------------------------------------------------------------ parser
def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="vaelab", description="Variational autoencoders: train, evaluate, explore.")
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="models and datasets").set_defaults(fn=cmd_list)

    t = sub.add_parser("train", help="train a model (or --resume a run)")
    t.add_argument("--model", help="a name from `vaelab list` (default: the --config file's model.name, else vae)")
    t.add_argument("--dataset", help="a name from `vaelab list` (default fashion-mnist)")
    t.add_argument("--data-dir", help="the folder that holds the dataset's files")
    steps = t.add_mutually_exclusive_group()
    steps.add_argument("--epochs", type=int)
    steps.add_argument("--steps", type=int)
    t.add_argument("--out", help="run directory to create")
    t.add_argument("--resume", metavar="DIR", help="continue the run in DIR from its last checkpoint")
    t.add_argument("--config", help="a YAML file with sections data, model, kl, train")
    t.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="e.g. kl.beta=4 (repeatable)")
    t.add_argument("--objective", help=f"{' | '.join(OBJECTIVES)} (default: the model's; `vaelab list` says which "
                   "trains which model)")
    t.add_argument("--k", type=int, help="samples of z per example for the objective (default 1)")
    t.add_argument("--seed", type=int)
    t.add_argument("--device", help="cpu | cuda (may change on --resume)")
    t.add_argument("--overwrite", action="store_true", help="replace a run already in --out")
    t.set_defaults(fn=cmd_train)

    def run_command(name: str, fn, help: str, split: bool = True) -> argparse.ArgumentParser:
        c = sub.add_parser(name, help=help)
        c.add_argument("run", help="run directory")
        c.add_argument("--checkpoint", default="best", choices=("best", "last"))
        c.add_argument("--device", default="cpu")
        c.add_argument("--seed", type=int, default=0)
        if split:
            c.add_argument("--split", default="test", choices=("train", "val", "test"))
        if name != "eval":
            c.add_argument("-o", "--output", help="PNG file (default: in the run directory)")
        c.set_defaults(fn=fn)
        return c

    e = run_command("eval", cmd_eval, "evaluate a run: writes DIR/eval.json")
    e.add_argument("--batch-size", type=int, help="examples per pass (default: the model's; 1000, fewer for "
                   "VQ-VAEs and PixelCNN decoders)")
    e.add_argument("--nll-samples", type=int, default=0, help="importance samples per example for the NLL (e.g. 5000)")
    e.add_argument("--ais-steps", type=int, default=0, help="also estimate the NLL by AIS with this many steps")
    e.add_argument("--ais-chains", type=int, default=16)
    e.add_argument("--sample-quality", action="store_true", help="also FID, KID, IS, precision/recall, "
                   "density/coverage of samples against the split (needs a feature network: `vaelab features`)")
    e.add_argument("--n", type=int, default=10_000, help="samples for --sample-quality (default 10000)")
    e.add_argument("--features", help="the feature network: NAME (default: the run's dataset's, such as "
                   "mnist-cnn) or inception:PATH (the FID Inception weights file)")
    s = run_command("sample", cmd_sample, "a grid of samples (one row per class for a CVAE)", split=False)
    s.add_argument("--n", type=int, default=64, help="samples (per class for a CVAE)")
    s.add_argument("--temperature", type=float, default=1.0)
    r = run_command("reconstruct", cmd_reconstruct, "originals above their reconstructions")
    r.add_argument("--n", type=int, default=32)
    i = run_command("interpolate", cmd_interpolate, "decoded latent interpolations between test images")
    i.add_argument("--pairs", type=int, default=6)
    i.add_argument("--steps", type=int, default=10)
    c = run_command("codes", cmd_codes, "VQ-VAE: codebook usage histogram and code-index maps (-o: a folder)")
    c.add_argument("--n", type=int, default=8, help="images whose code maps are drawn")
    tp = sub.add_parser("train-prior", help="train a PixelCNN prior over a VQ-VAE run's codes (into DIR/prior)")
    tp.add_argument("run", help="a VQ-VAE run directory")
    tp.add_argument("--epochs", type=int)
    tp.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="e.g. code_prior.layers=12")
    tp.add_argument("--resume", action="store_true", help="continue DIR/prior from its last checkpoint")
    tp.set_defaults(fn=cmd_train_prior)
    dg = run_command("disentangle", cmd_disentangle, "disentanglement metrics on a factor dataset "
                     "(writes DIR/disentanglement.json and pictures)", split=False)
    dg.add_argument("--dataset", help="factor dataset (default: the run's): dsprites, dsprites-procedural, 3dshapes")
    dg.add_argument("--data-dir")
    dg.add_argument("--num-train", type=int, help="smaller protocol sizes for a quick look (default: Locatello et al.)")
    dg.add_argument("--num-test", type=int, default=None)
    dg.add_argument("--metrics", nargs="+", metavar="NAME", help="only these: beta_vae factor_vae mig sap dci "
                    "modularity_explicitness (default: all)")
    v = run_command("traverse", cmd_traverse, "vary one latent at a time around an encoded image")
    v.add_argument("--index", type=int, default=0, help="which image of the split")
    v.add_argument("--dims", type=int, default=10, help="how many latent dimensions (those with most KL)")
    v.add_argument("--steps", type=int, default=9)
    v.add_argument("--span", type=float, default=3.0)
    f = sub.add_parser("fid", help="FID, KID, IS, precision/recall, density/coverage of images B against images A")
    f.add_argument("a", help="the reference: a folder of images or DATASET:SPLIT (such as mnist:test)")
    f.add_argument("b", help="the images judged: a folder of images or DATASET:SPLIT (such as mnist:train)")
    f.add_argument("--features", help="NAME or inception:PATH (default: the first dataset's network)")
    f.add_argument("--n", type=int, help="the first N images of each (default: all)")
    f.add_argument("--seed", type=int, default=0, help="KID's subsets and IS's splits")
    f.set_defaults(fn=cmd_fid)
    ft = sub.add_parser("features", help="feature networks for sample quality: train one, or list those cached")
    ft.add_argument("action", choices=("train", "list"))
    ft.add_argument("--dataset", help=f"train: the labelled dataset ({', '.join(RECIPES)})")
    ft.add_argument("--data-dir")
    ft.add_argument("--epochs", type=int, help="train: epochs (default: the dataset's recipe)")
    ft.add_argument("--seed", type=int, default=0)
    ft.add_argument("--overwrite", action="store_true", help="train: replace the cached network")
    ft.set_defaults(fn=cmd_features)
    a = sub.add_parser("app", help="the explorer: a Streamlit app to train, explore and compare runs")
    a.add_argument("--runs", default="runs", help="the folder of run directories (default ./runs)")
    a.add_argument("--host", default="localhost")
    a.add_argument("--port", type=int, default=8501)
    a.set_defaults(fn=cmd_app)
    return p


ERRORS = (ConfigError, DataError, RunDirError, CheckpointError, UnknownName, NonFiniteLoss)


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    finished = False
    try:
        args.fn(args)
        finished = True
    except ERRORS as e:
        print(f"vaelab: error: {e}", file=sys.stderr)
        return 3 if isinstance(e, NonFiniteLoss) else 2
    except KeyboardInterrupt:
        print("vaelab: interrupted; the last checkpoint is kept (continue with `vaelab train --resume DIR`)",
              file=sys.stderr)
        return 130
    finally:
        teardown(finished)
    return 0


if __name__ == "__main__":
    sys.exit(main())
