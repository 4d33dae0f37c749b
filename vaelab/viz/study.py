"""Figures of a study over many runs (rows of figures, as :func:`vaelab.studies.sweep_table` gives them): a metric
against a varied config key with error bars over seeds, and one metric against another (reconstruction against a
disentanglement score), each value of a key one point."""
from __future__ import annotations

from collections import defaultdict

import numpy as np
from matplotlib.figure import Figure

from ..measures import measure


def _numeric(values) -> bool:
    return all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)


def _order(values) -> list:
    values = list(dict.fromkeys(values))
    return sorted(values) if _numeric(values) else values


def _log_axis(values) -> bool:
    """A log scale for positive numbers spanning a factor of 10 or more (betas, latent sizes, learning rates)."""
    return _numeric(values) and min(values) > 0 and max(values) >= 10 * min(values)


def mean_std(rows: list[dict], by: tuple[str, ...], metric: str) -> dict[tuple, tuple[float, float, int]]:
    """Mean, standard deviation (ddof 1; 0 for one run) and count of ``metric`` over the rows (the seeds) that share
    the values of the keys ``by``."""
    groups = defaultdict(list)
    for r in rows:
        if r.get(metric) is not None:
            groups[tuple(r.get(k) for k in by)].append(float(r[metric]))
    return {k: (float(np.mean(v)), float(np.std(v, ddof=1)) if len(v) > 1 else 0.0, len(v)) for k, v in groups.items()}


def metric_vs_key_figure(rows: list[dict], key: str, metrics: list[str], group: str | None = None) -> Figure:
    """One panel per metric: its mean over seeds against the values of ``key``, the bars one standard deviation,
    one line per value of ``group`` (another varied key)."""
    xs = _order(r[key] for r in rows)
    groups = _order(r[group] for r in rows) if group else [None]
    by = (key, group) if group else (key,)
    point = (lambda x, g: (x, g)) if group else (lambda x, g: (x,))
    fig = Figure(figsize=(4.2 * len(metrics), 3.6), layout="tight")
    for ax, metric in zip(fig.subplots(1, len(metrics), squeeze=False)[0], metrics):
        stats = mean_std(rows, by, metric)
        for g in groups:
            pts = [(i, *stats[point(x, g)]) for i, x in enumerate(xs) if point(x, g) in stats]
            if not pts:
                continue
            i, mean, std, _ = map(np.array, zip(*pts))
            at = np.array(xs, dtype=float)[i] if _numeric(xs) else i
            ax.errorbar(at, mean, yerr=std, marker="o", ms=4, capsize=3, label=None if g is None else f"{group}={g}")
        if _log_axis(xs):
            ax.set_xscale("log")
            ax.minorticks_off()
            ax.set_xticks(xs, [f"{x:g}" for x in xs])  # the swept values, not powers of 10
        if not _numeric(xs):
            ax.set_xticks(range(len(xs)), [str(x) for x in xs])
        ax.set_xlabel(key)
        ax.set_title(measure(metric).heading)
        ax.grid(alpha=0.3)
        if group:
            ax.legend(fontsize=7)
    seeds = max(n for m in metrics for *_, n in mean_std(rows, by, m).values())
    fig.suptitle(f"against {key}" + (f": mean +- std over {seeds} seeds" if seeds > 1 else ""))
    return fig


def tradeoff_figure(rows: list[dict], x: str, ys: list[str], key: str | None) -> Figure:
    """One panel per score in ``ys`` against metric ``x``, a point per value of ``key`` (mean +- std over seeds),
    labelled with it: reconstruction against MIG or DCI per beta."""
    fig = Figure(figsize=(4.4 * len(ys), 3.8), layout="tight")
    by = (key,) if key else ()
    for ax, y in zip(fig.subplots(1, len(ys), squeeze=False)[0], ys):
        mx, my = mean_std(rows, by, x), mean_std(rows, by, y)
        for k in _order(mx):
            if k in my:
                ax.errorbar(mx[k][0], my[k][0], xerr=mx[k][1], yerr=my[k][1], marker="o", ms=5, capsize=3)
                if key:
                    ax.annotate(f"{key}={k[0]}", (mx[k][0], my[k][0]), textcoords="offset points", xytext=(5, 5),
                                fontsize=8)
        ax.set_xlabel(measure(x).heading)
        ax.set_ylabel(y.upper())
        ax.set_title(f"{y.upper()} against {measure(x).label}")
        ax.grid(alpha=0.3)
    return fig
