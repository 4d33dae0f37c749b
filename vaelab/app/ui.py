"""What every page of the app shares: the runs directory, cached models and datasets, the run picker,
pictures (labelled grids, figures at a readable size, each with its download), metrics named and explained by
:mod:`vaelab.measures`, and errors shown in the page instead of a traceback."""
from __future__ import annotations

import copy
import dataclasses
import hashlib
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
from ..measures import measure
from ..viz import curves_figure, labelled_grid
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


WIDTH = 800  # CSS pixels: the main column of a wide page at 1280x800 holds a picture this wide unscaled
FIGURE_DPI = 100  # pixels per figure inch: a figure shown at its own width draws 10 pt text 13.9 px high
MIN_HEIGHT = 280  # pixels: a figure's least height in the app (room for a panel's title, ticks and labels)
MIN_PT = 8  # the smallest text of a figure in the app: 11 px at FIGURE_DPI (the issue asks >= 10 px)


def metric(where, key: str, value, fmt: str = "{:.4g}", note: str = "") -> None:
    """``st.metric`` of an eval.json number: its measure's label, unit and arrow (which way is better), and its
    explanation as the tooltip (``note`` added to it)."""
    m = measure(key)
    shown = fmt.format(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else str(value)
    where.metric(m.heading, shown, help=f"{m.help} {note}".strip())


def measure_columns(keys) -> dict:
    """``column_config`` for a table whose columns are measure keys: each headed by its label, unit and arrow,
    explained in its tooltip."""
    return {k: st.column_config.NumberColumn(measure(k).heading, help=measure(k).help) for k in keys}


def download(data: bytes, file_name: str, label: str | None = None, where=None) -> None:
    """A download button for ``data`` saved as ``file_name`` (clicking it does not rerun the page); its key holds
    the data's hash, so two pictures of one name on a page (a grid per run) each keep their own."""
    mime = {"png": "image/png", "json": "application/json"}[file_name.rsplit(".", 1)[-1]]
    key = f"download-{file_name}-{hashlib.sha1(data).hexdigest()[:12]}"
    (where or st).download_button(label or f"download {file_name}", data, file_name, mime, key=key, on_click="ignore")


def png(image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()


def figure_png(fig, width: int = WIDTH) -> bytes:
    """The figure as a PNG ``width`` pixels wide (its aspect kept, but at least :data:`MIN_HEIGHT` pixels high: a row
    of several panels narrowed to ``width`` keeps room for their titles and axis labels), no text under
    :data:`MIN_PT`: shown at that width, every label is at least 11 px high."""
    w, h = fig.get_size_inches()
    fig.set_size_inches(width / FIGURE_DPI, max(h * width / w, MIN_HEIGHT) / FIGURE_DPI)
    for text in fig.findobj(lambda a: hasattr(a, "get_fontsize") and hasattr(a, "set_fontsize")):
        if text.get_fontsize() < MIN_PT:
            text.set_fontsize(MIN_PT)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=FIGURE_DPI)
    return buf.getvalue()


def show_figure(fig, name: str, width: int = WIDTH, where=None) -> None:
    """A matplotlib figure at a readable size (:func:`figure_png`), with a button to download it as ``name``.png."""
    where = where or st
    data = figure_png(fig, width)
    where.image(data, output_format="PNG")
    download(data, f"{name}.png", "download the figure (PNG)", where)


def show_images(images: torch.Tensor, nrow: int, caption: str | None = None, rows: list[str] | None = None,
                columns: list[str] | None = None, name: str = "images", width: int = WIDTH, where=None) -> None:
    """An image grid, labelled in the picture (``rows``: a label left of each row, ``columns``: above each column),
    small images scaled up (nearest neighbour) to fill about ``width`` pixels, with a button to download it as a
    PNG."""
    where = where or st
    cell = images.shape[-1] + 2  # an image and its padding
    scale = max(1, (width - (100 if rows else 0)) // (min(nrow, len(images)) * cell + 2))  # + the last padding
    data = png(labelled_grid(images, nrow, scale, rows, columns))
    where.image(data, caption=caption, output_format="PNG")
    download(data, f"{name}.png", "download the grid (PNG)", where)


def eval_download(info: RunInfo, where=None) -> None:
    """A button to download the run's eval.json, when it has one."""
    if info.run.eval.exists():
        download(info.run.eval.read_bytes(), f"{info.name}-eval.json", "download eval.json", where)


@st.cache_data(max_entries=16, show_spinner=False)
def _curves_png(path: str, stamp: float, width: int) -> bytes | None:
    fig = curves_figure(RunDir(path).records(), max_panels=4)
    return None if fig is None else figure_png(fig, width)


def curves_png(info: RunInfo, width: int = WIDTH) -> bytes | None:
    """The run's loss / reconstruction / KL curves per epoch as a PNG ``width`` pixels wide, redrawn only when
    metrics.jsonl grows."""
    metrics = info.run.metrics
    return _curves_png(str(info.path), metrics.stat().st_mtime, width) if metrics.exists() else None


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
