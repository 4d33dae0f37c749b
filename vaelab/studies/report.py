"""What a sweep found: one row per run (the trial's values, the seed, the eval.json figures, disentanglement scores,
posterior collapse), written as ``sweep.csv`` and ``sweep.json``, and its figures: rate-distortion, each metric
against each varied key with error bars over seeds, and reconstruction against disentanglement."""
from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from matplotlib.figure import Figure

from ..durable import write_atomic
from ..rundir import RunDir
from ..viz import save_figure
from ..viz.plots import rate_distortion_figure
from ..viz.study import metric_vs_key_figure, tradeoff_figure
from .sweep import read_spec, sweep_values

SWEPT_METRICS = ("nelbo", "recon", "kl", "active_units")  # drawn against each varied key, where reported
DISENTANGLE_SCORES = {"mig": ("mig", "mig"), "dci": ("dci", "disentanglement")}  # column -> (metric, its score)


def run_row(path: Path) -> dict:
    """A run's scalar figures: eval.json's, its disentanglement scores, and what its last epoch said of posterior
    collapse (``collapse``: the warning, or empty)."""
    run = RunDir(path)
    evaluation = json.loads(run.eval.read_text())
    row = {k: v for k, v in evaluation.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
    scores = path / "disentanglement.json"
    if scores.exists():
        d = json.loads(scores.read_text())
        row |= {col: d[metric][score] for col, (metric, score) in DISENTANGLE_SCORES.items() if metric in d}
    records = run.records()
    row["collapse"] = records[-1].get("collapse", "") if records else ""
    return row


def sweep_table(out: str | Path, storage_url: str | None = None) -> list[dict]:
    """One row per run of each finished trial: trial, seed, run (relative to ``out``), the trial's values (config
    keys), the objective's value of the trial, and :func:`run_row`."""
    out = Path(out)
    spec = read_spec(out)
    rows = []
    for t in sweep_values(out, storage_url):
        for s, path in enumerate(t["runs"]):
            rows.append({"trial": t["trial"], "seed": spec.base().train.seed + s, "run": str(path.relative_to(out)),
                         **t["params"], "objective": t["value"], **run_row(path)})
    return rows


def to_csv(rows: list[dict]) -> str:
    columns = list(dict.fromkeys(k for r in rows for k in r))
    buf = io.StringIO()
    writer = csv.DictWriter(buf, columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()


def sweep_figures(rows: list[dict], keys: list[str]) -> dict[str, Figure]:
    """The sweep's figures by file name: ``rate_distortion.png`` (every run, coloured by the first varied key, with
    lines of constant ELBO), ``<metric>_vs_<key>.png`` for each varied key (mean and standard deviation over seeds,
    one line per value of the next key) and, with disentanglement scores, ``disentanglement.png``."""
    figs: dict[str, Figure] = {}
    if not rows:
        return figs
    colour = keys[0] if keys else None
    label = {r["run"]: " ".join([*(f"{k.split('.')[-1]}={r[k]}" for k in keys), f"s{r['seed']}"]) for r in rows}
    points = {label[r["run"]]: (r["kl"], r["recon"]) for r in rows if "kl" in r and "recon" in r}
    if points:
        figs["rate_distortion.png"] = rate_distortion_figure(
            points, colour={label[r["run"]]: r[colour] for r in rows} if colour else None, colour_label=colour,
            labels=len(points) <= 12)
    metrics = [m for m in SWEPT_METRICS if m in rows[0]]
    for key in keys if metrics else ():
        group = next((k for k in keys if k != key), None)
        figs[f"metrics_vs_{key}.png"] = metric_vs_key_figure(rows, key, metrics, group)
    scores = [c for c in DISENTANGLE_SCORES if c in rows[0]]
    if scores and "recon" in rows[0]:
        figs["disentanglement.png"] = tradeoff_figure(rows, "recon", scores, colour)
    return figs


def write_report(out: str | Path, storage_url: str | None = None) -> dict:
    """Write ``sweep.csv``, ``sweep.json`` and the figures of :func:`sweep_figures` into ``out``; return the report:
    rows, the best trial, the figures' paths."""
    out = Path(out)
    spec = read_spec(out)
    keys = spec.space_.keys
    rows = sweep_table(out, storage_url)
    write_atomic(out / "sweep.csv", to_csv(rows))
    better = min if spec.direction() == "minimize" else max
    best = better(rows, key=lambda r: r["objective"]) if rows else None
    figures = [str(save_figure(fig, out / name)) for name, fig in sweep_figures(rows, keys).items()]
    report = {"objective": spec.objective, "split": spec.split, "keys": keys, "seeds": spec.seeds,
              "best": best and {"trial": best["trial"], "objective": best["objective"],
                                **{k: best[k] for k in keys}},
              "figures": figures, "rows": rows}
    write_atomic(out / "sweep.json", json.dumps(report, indent=2))
    return report
