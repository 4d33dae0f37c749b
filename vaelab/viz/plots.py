"""Matplotlib figures (Agg backend: no display needed)."""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def plot_curves(records: list[dict], path: str | Path) -> None:
    """Negative ELBO, reconstruction and KL per epoch, train and validation (nats per example)."""
    if not records:
        return
    epochs = [r["epoch"] for r in records]
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    for ax, key, title in zip(axes, ("nelbo", "recon", "kl"), ("negative ELBO", "reconstruction  -log p(x|z)", "KL")):
        for split, style in (("train", "-"), ("val", "--")):
            ax.plot(epochs, [r[f"{split}/{key}"] for r in records], style, marker="o", ms=3, label=split)
        ax.set_title(title)
        ax.set_xlabel("epoch")
        ax.set_ylabel("nats / example")
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
