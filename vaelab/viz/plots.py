"""Matplotlib figures (Agg backend: no display needed)."""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def plot_curves(records: list[dict], path: str | Path, max_panels: int = 6) -> None:
    """One panel per logged training quantity (loss, reconstruction, KL, ...) per epoch; validation dashed."""
    if not records:
        return
    keys = [k.removeprefix("train/") for k in records[-1] if k.startswith("train/")][:max_panels]
    epochs = [r["epoch"] for r in records]
    fig, axes = plt.subplots(1, len(keys), figsize=(4.3 * len(keys), 3.6), squeeze=False)
    for ax, key in zip(axes[0], keys):
        for split, style in (("train", "-"), ("val", "--")):
            if f"{split}/{key}" in records[-1]:
                ax.plot(epochs, [r.get(f"{split}/{key}", float("nan")) for r in records], style, marker="o", ms=3,
                        label=split)
        ax.set_title(TITLES.get(key, key))
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


TITLES = {"loss": "training loss", "nelbo": "negative ELBO (nats)", "recon": "reconstruction -log p(x|z) (nats)",
          "kl": "KL (nats)", "perplexity": "codebook perplexity", "codes_used": "fraction of codes used"}


def plot_code_usage(counts: list[int], path: str | Path) -> None:
    """How often each code is used, codes sorted by use, with the perplexity in the title."""
    import numpy as np

    c = np.sort(np.asarray(counts, dtype=float))[::-1]
    p = c / max(c.sum(), 1)
    perplexity = float(np.exp(-(p[p > 0] * np.log(p[p > 0])).sum()))
    fig, ax = plt.subplots(figsize=(8, 3.4))
    ax.bar(np.arange(len(c)), c, width=1.0)
    ax.set_yscale("log" if c.max() > 100 * max(c[c > 0].min(), 1) else "linear")
    ax.set_xlabel("code (sorted by use)")
    ax.set_ylabel("uses")
    ax.set_title(f"codebook usage: {int((c > 0).sum())} of {len(c)} codes used, perplexity {perplexity:.1f}")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_code_maps(images, codes, num_codes: int, path: str | Path) -> None:
    """Images (top row) above the grids of code indices they are encoded to (bottom row)."""
    n = len(images)
    fig, axes = plt.subplots(2, n, figsize=(1.6 * n, 3.4), squeeze=False)
    for i in range(n):
        img = images[i].permute(1, 2, 0).squeeze(-1).cpu().numpy()
        axes[0, i].imshow(img, cmap="gray" if img.ndim == 2 else None, vmin=0, vmax=1)
        axes[1, i].imshow(codes[i].cpu().numpy(), cmap="nipy_spectral", vmin=0, vmax=num_codes - 1,
                          interpolation="nearest")
        for ax in axes[:, i]:
            ax.set_axis_off()
    fig.suptitle("images and their code indices")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_kl_per_dim(kl_per_dim: list[float], path: str | Path) -> None:
    """KL of each latent dimension (nats), largest first: which dimensions the model uses."""
    import numpy as np

    kl = np.asarray(kl_per_dim)
    order = np.argsort(-kl)
    fig, ax = plt.subplots(figsize=(max(4, 0.35 * len(kl) + 1), 3.2))
    ax.bar(range(len(kl)), kl[order])
    ax.set_xticks(range(len(kl)), [str(i) for i in order], fontsize=7)
    ax.set_xlabel("latent dimension (sorted by KL)")
    ax.set_ylabel("KL (nats)")
    ax.set_title("KL per latent dimension")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_mi_matrix(mi: list[list[float]], factor_names: list[str], path: str | Path) -> None:
    """Mutual information between each latent dimension (rows) and each ground-truth factor (columns)."""
    import numpy as np

    m = np.asarray(mi)
    fig, ax = plt.subplots(figsize=(1.2 * m.shape[1] + 2, 0.3 * m.shape[0] + 1.5))
    im = ax.imshow(m, cmap="viridis", aspect="auto")
    ax.set_xticks(range(m.shape[1]), factor_names, rotation=30, ha="right")
    ax.set_yticks(range(m.shape[0]), [f"z{i}" for i in range(m.shape[0])], fontsize=7)
    ax.set_title("mutual information (nats): latent x factor")
    fig.colorbar(im, ax=ax)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
