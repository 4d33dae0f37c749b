"""What every page of the app shares: the runs directory, cached models and datasets, the run picker,
pictures, and errors shown in the page instead of a traceback."""
from __future__ import annotations

import copy
import dataclasses
import io
import json
from contextlib import contextmanager
from pathlib import Path

import streamlit as st
import torch

from ..checkpoint import CheckpointError
from ..models import load_run
from ..models.family import VIEWS
from ..config import ConfigError, RunConfig
from ..data import DataError, Split
from ..lock import LockError
from ..eval import evaluate
from ..registry import UnknownName
from ..rundir import RunDir, RunDirError
from ..train import load_run_data
from ..viz import curves_figure, grid_image
from . import jobs
from .gate import log, runs_root  # noqa: F401  (the pages call ui.runs_root())
from .paths import relative
from .runs import RunInfo, find_runs, run_info

ERRORS = (RunDirError, CheckpointError, ConfigError, DataError, UnknownName, LockError, jobs.JobLimit)


@contextmanager
def errors_shown(stop: bool = True):
    """Show a vaelab error (bad run directory, missing data, wrong upload, ...) as a message in the page;
    with ``stop``, the page ends there."""
    try:
        yield
    except ERRORS as e:
        st.error(str(e))
        if stop:
            st.stop()
    except Exception as e:  # a bug: one line for the visitor, the traceback in the server's log
        log.exception("in the app")
        st.error(f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else 'unexpected error'} (details in the "
                 f"server's log)")
        if stop:
            st.stop()


def start_job(directory: Path, kind: str, argv: list[str]) -> bool:
    """:func:`vaelab.app.jobs.start` within the runs directory and the app's job limit; a refusal is a message."""
    with errors_shown(stop=False):
        jobs.start(directory, kind, argv, root=runs_root())
        return True
    return False


def pick_run(view: str, label: str = "run", key: str = "run") -> RunInfo:
    """A trained run whose model family can ``view`` (a key of :data:`~vaelab.models.family.VIEWS`), chosen in a
    select box (remembered in the address as ``?run=NAME``), or a run directory typed by path; when there is none
    to show, a message and the page stops."""
    root = runs_root()
    runs = [r for r in find_runs(root) if r.trained and r.can(view)]
    names = [r.name for r in runs]
    typed = st.sidebar.text_input("or open a run directory", key=f"{key}-path",
                                  help="a run directory inside the runs folder (relative to it, or absolute)")
    if typed:
        with errors_shown():
            info = run_info(root, relative(root, typed))
        problem = info.error or (None if info.trained else f"{typed} has no checkpoint yet")
        if not problem and not info.can(view):
            problem = f"this page shows models that can {VIEWS[view]}; {typed} holds a {info.model!r} model"
        if problem:
            st.error(problem)
            st.stop()
        return info
    if not runs:
        st.info(f"No suitable run in {root} yet: train one on the Train page or with `vaelab train`.")
        st.stop()
    wanted = st.query_params.get("run")
    name = st.selectbox(label, names, index=names.index(wanted) if wanted in names else 0, key=key)
    st.query_params["run"] = name
    return runs[names.index(name)]


def open_run(view: str) -> tuple[RunInfo, RunConfig, torch.nn.Module]:
    """:func:`pick_run`, then its config and model (:func:`load`), a loading error shown in the page."""
    info = pick_run(view)
    with errors_shown():
        return (info, *load(info))


@st.cache_resource(max_entries=16, show_spinner="loading the model")
def _load(path: str, stamp: float) -> tuple[RunConfig, torch.nn.Module]:
    return load_run(path)


def load(info: RunInfo) -> tuple[RunConfig, torch.nn.Module]:
    """The run's config and model (best checkpoint), loaded once per checkpoint file version."""
    checkpoint = info.run.checkpoint("best")
    return _load(str(info.path), checkpoint.stat().st_mtime)


@st.cache_resource(max_entries=4, show_spinner="loading the dataset")
def _dataset(key: str, _cfg: RunConfig):
    return load_run_data(_cfg, evaluation=True)


def dataset(cfg: RunConfig):
    """The run's dataset as :func:`~vaelab.train.load_run_data` gives it for evaluation, loaded once per data
    config."""
    key = json.dumps(dataclasses.asdict(cfg.data), sort_keys=True) + str(cfg.model.conditional)
    return _dataset(key, copy.deepcopy(cfg))


def split(cfg: RunConfig, name: str = "test") -> Split:
    """A split of the run's dataset, loaded once per data config: ``x`` as the model scores it (binarized as in
    training), ``images`` as the dataset holds it (what pages show beside reconstructions)."""
    return dataset(cfg).split(name)


@st.cache_data(max_entries=32, show_spinner="evaluating")
def _evaluation(path: str, stamp: float, n: int) -> dict:
    cfg, model = _load(path, stamp)
    return evaluate(model, split(cfg).take(torch.arange(min(n, len(split(cfg))))))


def evaluation(info: RunInfo, n: int = 1000) -> dict:
    """:func:`vaelab.eval.evaluate` on the first ``n`` test images (KL per dimension, codebook usage, ...)."""
    return _evaluation(str(info.path), info.run.checkpoint("best").stat().st_mtime, n)


def show_images(images: torch.Tensor, nrow: int, caption: str | None = None) -> None:
    """An image grid, small images scaled up (nearest neighbour) to stay crisp."""
    scale = max(1, round(96 / images.shape[-1]))
    st.image(grid_image(images, nrow, scale), caption=caption, output_format="PNG")


@st.cache_data(max_entries=16, show_spinner=False)
def _curves_png(path: str, stamp: float) -> bytes | None:
    fig = curves_figure(RunDir(path).records(), max_panels=4)
    if fig is None:
        return None
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=80)
    return buf.getvalue()


def curves_png(info: RunInfo) -> bytes | None:
    """The run's loss / reconstruction / KL curves per epoch as a PNG, redrawn only when metrics.jsonl grows."""
    metrics = info.run.metrics
    return _curves_png(str(info.path), metrics.stat().st_mtime) if metrics.exists() else None


def open_compare(names: list[str]) -> None:
    """Go to the Compare page with the runs ``names`` chosen (``?runs=...``); where the page is not reachable (a
    page run on its own, as in tests), a link to it."""
    from urllib.parse import quote

    from streamlit.errors import StreamlitAPIException

    try:
        st.switch_page("views/compare.py", query_params={"runs": names})
    except StreamlitAPIException:
        st.markdown(f"[Open them on Compare](compare?{'&'.join('runs=' + quote(n, safe='') for n in names)})")


def compare_with_plain_vae(info: RunInfo, key: str = "plain-vae") -> None:
    """The "Compare with plain VAE" button of a β-VAE run (nothing for other runs): the run with its config but
    β = 1 and model vae, found or started (:func:`vaelab.app.plain.plain_run`), opened beside it on Compare."""
    from .plain import is_beta_vae, plain_run

    with errors_shown(stop=False):
        if not is_beta_vae(info.run.load_config()):
            return
        if st.button("Compare with plain VAE", key=key, help="the same config with β = 1 and model vae: found "
                     "among the runs, or trained now beside this one; Compare opens with both"):
            open_compare([info.name, plain_run(runs_root(), info)])
