"""Matplotlib figures, built with the object-oriented API (no pyplot state, so the app's threads can draw
at once): each ``*_figure`` function returns a :class:`~matplotlib.figure.Figure`; :func:`save_figure`
writes one to a file."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from ..durable import replacing
from ..measures import measure

MARKERS = "osD^vP*X"  # a run's marker in a legend, with one of 10 colours: 80 runs told apart


def save_figure(fig: Figure, path: str | Path) -> Path:
    """Write the figure whole or not at all (a kill never leaves half a picture)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with replacing(path) as tmp:
        fig.savefig(tmp, dpi=100, format=path.suffix.lstrip(".") or "png")
    return path


def curves_figure(records: list[dict], max_panels: int = 6) -> Figure | None:
    """One panel per logged training quantity (loss, reconstruction, KL, ...) per epoch; validation dashed.
    None when there are no records yet."""
    if not records:
        return None
    keys = [k.removeprefix("train/") for k in records[-1] if k.startswith("train/")][:max_panels]
    epochs = [r["epoch"] for r in records]
    fig = Figure(figsize=(4.3 * len(keys), 3.6), layout="tight")
    for ax, key in zip(fig.subplots(1, len(keys), squeeze=False)[0], keys):
        for split, style in (("train", "-"), ("val", "--")):
            if f"{split}/{key}" in records[-1]:
                ax.plot(epochs, [r.get(f"{split}/{key}", float("nan")) for r in records], style, marker="o", ms=3,
                        label=split)
        ax.set_title(measure(key).title)
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
        ax.legend()
    return fig


def code_usage_figure(counts: list[int]) -> Figure:
    """How often each code is used, codes sorted by use, with the perplexity in the title."""
    c = np.sort(np.asarray(counts, dtype=float))[::-1]
    p = c / max(c.sum(), 1)
    perplexity = float(np.exp(-(p[p > 0] * np.log(p[p > 0])).sum()))
    fig = Figure(figsize=(8, 3.4), layout="tight")
    ax = fig.subplots()
    ax.bar(np.arange(len(c)), c, width=1.0)
    ax.set_yscale("log" if c.max() > 100 * max(c[c > 0].min(), 1) else "linear")
    ax.set_xlabel("code (sorted by use)")
    ax.set_ylabel("uses")
    ax.set_title(f"codebook usage: {int((c > 0).sum())} of {len(c)} codes used, perplexity {perplexity:.1f}")
    return fig


def code_maps_figure(images, codes, num_codes: int) -> Figure:
    """Images (top row) above the grids of code indices they are encoded to (bottom row)."""
    n = len(images)
    fig = Figure(figsize=(1.6 * n, 3.4), layout="tight")
    axes = fig.subplots(2, n, squeeze=False)
    for i in range(n):
        img = images[i].permute(1, 2, 0).squeeze(-1).cpu().numpy()
        axes[0, i].imshow(img, cmap="gray" if img.ndim == 2 else None, vmin=0, vmax=1)
        axes[1, i].imshow(codes[i].cpu().numpy(), cmap="nipy_spectral", vmin=0, vmax=num_codes - 1,
                          interpolation="nearest")
        for ax in axes[:, i]:
            ax.set_axis_off()
    fig.suptitle("images and their code indices")
    return fig


def kl_per_dim_figure(kl_per_dim: list[float]) -> Figure:
    """KL of each latent dimension (nats), largest first: which dimensions the model uses."""
    kl = np.asarray(kl_per_dim)
    order = np.argsort(-kl)
    fig = Figure(figsize=(max(4, 0.35 * len(kl) + 1), 3.2), layout="tight")
    ax = fig.subplots()
    ax.bar(range(len(kl)), kl[order])
    ax.set_xticks(range(len(kl)), [str(i) for i in order], fontsize=7)
    ax.set_xlabel("latent dimension (sorted by KL)")
    ax.set_ylabel("KL (nats)")
    ax.set_title("KL per latent dimension")
    return fig


def mi_matrix_figure(mi: list[list[float]], factor_names: list[str]) -> Figure:
    """Mutual information between each latent dimension (rows) and each ground-truth factor (columns)."""
    m = np.asarray(mi)
    fig = Figure(figsize=(1.2 * m.shape[1] + 2, 0.3 * m.shape[0] + 1.5), layout="tight")
    ax = fig.subplots()
    im = ax.imshow(m, cmap="viridis", aspect="auto")
    ax.set_xticks(range(m.shape[1]), factor_names, rotation=30, ha="right")
    ax.set_yticks(range(m.shape[0]), [f"z{i}" for i in range(m.shape[0])], fontsize=7)
    ax.set_title("mutual information (nats): latent x factor")
    fig.colorbar(im, ax=ax)
    return fig


def rate_distortion_figure(points: dict[str, tuple[float, float]], colour: dict[str, float] | None = None,
                           colour_label: str | None = None, labels: bool = True, legend: bool = False) -> Figure:
    """Runs as points in the rate-distortion plane (rate R = KL, distortion D = -E_q[log p(x|z)], both nats per
    example), as in Alemi et al. 2018, Fig. 1: the negative ELBO is D + R, so the dashed diagonals D + R = const are
    lines of constant ELBO, and the best runs lie on the lowest. All points are one scatter, coloured by
    ``colour`` (a number per point, e.g. each run's beta, on a log scale when it spans a factor of 10) and labelled
    by name when ``labels``; with ``legend``, each point has a colour and marker of its own, named in a legend
    instead (no label on the plot can overprint another, however close the runs lie)."""
    fig = Figure(figsize=(6, 4.4), layout="tight")
    ax = fig.subplots()
    names = list(points)
    rate, distortion = (np.array([points[n][i] for n in names], dtype=float) for i in (0, 1))
    values = None if colour is None else [colour[n] for n in names]
    numeric = values is not None and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)
    norm = None
    if numeric and min(values) > 0 and max(values) >= 10 * min(values):
        from matplotlib.colors import LogNorm
        norm = LogNorm(min(values), max(values))
    if legend:
        for i, (n, r, d) in enumerate(zip(names, rate, distortion)):
            ax.scatter([r], [d], s=50, color=f"C{i % 10}", marker=MARKERS[i // 10 % len(MARKERS)], label=n, zorder=3)
        ax.legend(fontsize=9, loc="best", framealpha=0.9)
        numeric = labels = False
    else:
        dots = ax.scatter(rate, distortion, s=30, c=values if numeric else None, cmap="viridis" if numeric else None,
                          norm=norm, zorder=3)
    if numeric:
        bar = fig.colorbar(dots, ax=ax, label=colour_label, format="%g")
        if norm is not None:
            bar.ax.minorticks_off()
            bar.set_ticks(sorted(set(values)))  # the swept values, not powers of 10
    if labels:
        for n, r, d in zip(names, rate, distortion):
            ax.annotate(n, (r, d), textcoords="offset points", xytext=(5, 5), fontsize=8)
    nelbo = rate + distortion
    span = np.array([min(0.0, rate.min()), rate.max() * 1.25 + 1e-9])
    for level in np.unique(np.linspace(nelbo.min(), nelbo.max(), 4)):
        ax.plot(span, level - span, "--", color="grey", lw=0.8, zorder=1)
        ax.annotate(f"-ELBO {level:.1f}", (span[0], level - span[0]), fontsize=7, color="grey",
                    textcoords="offset points", xytext=(2, -10))
    ax.set_xlim(span)
    ax.set_ylim(distortion.min() - 0.05 * (np.ptp(distortion) + 1), distortion.max() + 0.05 * (np.ptp(distortion) + 1))
    ax.set_xlabel("rate R: KL (nats)")
    ax.set_ylabel("distortion D: -log p(x|z) (nats)")
    ax.set_title("rate-distortion (dashed: constant ELBO, D + R)")
    ax.grid(alpha=0.3)
    return fig


def score_histograms_figure(normal: dict[str, np.ndarray], anomalous: dict[str, np.ndarray],
                            metrics: dict[str, dict[str, float]]) -> Figure:
    """One panel per anomaly score, two abreast: histograms of the normal and the anomalous examples' scores, the
    ROC-AUC in the title."""
    keys = list(normal)
    columns = min(2, len(keys))
    rows = -(-len(keys) // columns)
    fig = Figure(figsize=(3.6 * columns, 3.0 * rows), layout="tight")
    panels = fig.subplots(rows, columns, squeeze=False).ravel()
    for ax in panels[len(keys):]:
        ax.set_axis_off()
    for ax, key in zip(panels, keys):
        both = np.r_[normal[key], anomalous[key]]
        bins = np.linspace(*np.percentile(both, [0.5, 99.5]), 50)
        ax.hist(normal[key], bins, alpha=0.6, density=True, label="normal")
        ax.hist(anomalous[key], bins, alpha=0.6, density=True, label="anomalous")
        ax.set_title(f"{measure(key).title}\nROC-AUC {metrics[key]['roc_auc']:.3f}", fontsize=9)
        ax.set_xlabel("score (higher: more anomalous)", fontsize=8)
        ax.legend(fontsize=7)
    return fig


def roc_figure(curves: dict[str, tuple[np.ndarray, np.ndarray, float]]) -> Figure:
    """ROC curves {score: (false-positive rates, true-positive rates, ROC-AUC)} on one plot, with chance."""
    fig = Figure(figsize=(4.6, 4.2), layout="tight")
    ax = fig.subplots()
    for key, (fpr, tpr, auc) in curves.items():
        ax.plot(fpr, tpr, label=f"{measure(key).label} ({auc:.3f})")
    ax.plot([0, 1], [0, 1], ":", color="grey", label="chance (0.5)")
    ax.set_xlabel("false-positive rate (normal flagged)")
    ax.set_ylabel("true-positive rate (anomalies flagged)")
    ax.set_title("ROC by score (ROC-AUC)")
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    return fig


def runs_curves_figure(records: dict[str, list[dict]], keys: tuple[str, ...] = ("loss", "recon", "kl")) -> Figure | None:
    """Several runs' training curves overlaid: one panel per quantity in ``keys`` that some run logs, against the
    training step; each run one colour (named in the legend), its training curve solid, its validation curve dashed.
    None when no run has records yet."""
    records = {name: r for name, r in records.items() if r}
    shown = [k for k in keys if any(f"{split}/{k}" in r[-1] for r in records.values() for split in ("train", "val"))]
    if not shown:
        return None
    fig = Figure(figsize=(4.6 * len(shown), 3.8), layout="tight")
    for ax, key in zip(fig.subplots(1, len(shown), squeeze=False)[0], shown):
        for i, (name, rs) in enumerate(records.items()):
            steps = [r.get("step", r["epoch"]) for r in rs]
            for split, style in (("train", "-"), ("val", "--")):
                if f"{split}/{key}" in rs[-1]:
                    ax.plot(steps, [r.get(f"{split}/{key}", float("nan")) for r in rs], style, color=f"C{i % 10}",
                            marker="o", ms=3, label=name if split == "train" or f"train/{key}" not in rs[-1] else None)
        ax.set_title(measure(key).heading, fontsize=11)
        ax.set_xlabel("training step", fontsize=10)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=9)
    fig.suptitle("solid: training batches, dashed: validation", fontsize=10)
    return fig
