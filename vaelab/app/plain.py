""""Compare with plain VAE": for a β-VAE run (Higgins et al. 2017), the run with the same config but β = 1 and model
``vae`` (the plain VAE of Kingma & Welling 2014, whose loss is the negative ELBO), found among the runs, or started
as a training job beside it (no Streamlit here)."""
from __future__ import annotations

from pathlib import Path

from ..config import RunConfig
from ..durable import write_atomic
from . import jobs
from .paths import PathError, inside
from .runs import RunInfo, find_runs

NAMES = ("vae", "beta-vae")  # one model under two names: they differ only in the kl.beta preset
UNSCORED = ("progress", "device", "track", "tracking_uri")  # train keys that leave the trained model as it is
CONFIG_FILE = "plain-vae.yaml"  # in the new run's jobs/ folder: what its `vaelab train --config` reads


def plain_config(cfg: RunConfig) -> RunConfig:
    """``cfg`` as a plain VAE: model vae, KL weight 1 at every step (no warm-up, cycles or capacity)."""
    return cfg.set(["model.name=vae", "kl.beta=1.0", "kl.schedule=constant", "kl.capacity=null"]).check()


def _key(cfg: RunConfig) -> dict:
    """What two runs must share to be the same model trained the same way."""
    d = cfg.to_dict()
    d["model"]["name"] = "vae" if d["model"]["name"] in NAMES else d["model"]["name"]
    d["train"] = {k: v for k, v in d["train"].items() if k not in UNSCORED}
    return d


def is_beta_vae(cfg: RunConfig) -> bool:
    """A VAE whose KL is weighted other than a plain VAE's: it has a plain VAE to compare with."""
    return cfg.model.name in NAMES and _key(cfg) != _key(plain_config(cfg))


def find_plain(root: str | Path, cfg: RunConfig) -> RunInfo | None:
    """The run under ``root`` with ``cfg``'s plain-VAE config (a beta-vae run with β = 1 counts), trained ones
    first; None when there is none."""
    target = _key(plain_config(cfg))
    same = [r for r in find_runs(root) if r.error is None and r.model in NAMES
            and _key(r.run.load_config()) == target]
    return max(same, key=lambda r: r.trained, default=None)


def plain_run(root: str | Path, info: RunInfo) -> str:
    """The name (relative to ``root``) of the plain VAE for β-VAE run ``info``: one found (:func:`find_plain`), the
    one already started beside it, or a new training job ``plain-vae-for-NAME`` beside it."""
    cfg = info.run.load_config()
    found = find_plain(root, cfg)
    if found is not None:
        return found.name
    path = info.path.parent / f"plain-vae-for-{info.path.name}"
    if not inside(root, path):
        raise PathError(f"{path} would lie outside the runs directory {Path(root).resolve()}: refused")
    name = str(path.relative_to(Path(root).resolve()))
    if jobs.job_file(path, "train").exists():  # started before, still loading its data: it has no config.yaml yet
        return name
    config = jobs.job_file(path, "train").with_name(CONFIG_FILE)
    config.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(config, plain_config(cfg).to_yaml())
    jobs.start(path, "train", ["train", "--config", str(config), "--out", str(path)], root=root)
    return name
