"""How much of the labels a representation holds: k-means clusters of the posterior means scored against the labels
(NMI, ARI) and a linear probe's accuracy, for models with a continuous latent space on labelled data.

The clustering is k-means with as many clusters as classes (the unsupervised use of a VAE's codes, e.g. Xie et al.
2016's comparison); NMI is the arithmetic-mean normalization (Vinh et al. 2010), ARI Hubert & Arabie 1985's. The
probe is multinomial logistic regression on the standardized codes (Alain & Bengio 2016), trained on the train
split's codes and tested on the evaluated split's.
"""
from __future__ import annotations

import numpy as np
import torch
from sklearn.cluster import KMeans
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score
from sklearn.preprocessing import StandardScaler
from torch import nn

from ..data import Split

REPRESENTATION_EXAMPLES = 5000  # the first examples of each split that are encoded (k-means, the probe)
KMEANS_RESTARTS = 10
PROBE_ITERATIONS = 1000


@torch.no_grad()
def posterior_means(model: nn.Module, x: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
    """E_q[z|x] for images x [N, C, H, W], in batches: [N, D] (float64, on the CPU)."""
    device = next(model.parameters()).device
    return torch.cat([model.encode(x[i:i + batch_size].to(device)).double().cpu()
                      for i in range(0, len(x), batch_size)])


def cluster_scores(z: np.ndarray, y: np.ndarray, k: int, seed: int = 0) -> dict[str, float]:
    """k-means with ``k`` clusters on codes z [N, D]: NMI and ARI of its clusters against labels y [N]."""
    clusters = KMeans(n_clusters=k, n_init=KMEANS_RESTARTS, random_state=seed).fit_predict(z)
    return {"nmi": float(normalized_mutual_info_score(y, clusters)),
            "ari": float(adjusted_rand_score(y, clusters))}


def probe_accuracy(z_train: np.ndarray, y_train: np.ndarray, z_test: np.ndarray, y_test: np.ndarray) -> float:
    """The test accuracy of a linear (multinomial logistic) classifier trained on (z_train, y_train), on codes
    standardized by the training codes' mean and standard deviation."""
    scale = StandardScaler().fit(z_train)
    probe = LogisticRegression(max_iter=PROBE_ITERATIONS).fit(scale.transform(z_train), y_train)
    return float(probe.score(scale.transform(z_test), y_test))


def representation_scores(model: nn.Module, train: Split, split: Split, num_classes: int, seed: int = 0,
                          n: int = REPRESENTATION_EXAMPLES) -> dict[str, float]:
    """``nmi``, ``ari`` (k-means on the posterior means of the first ``n`` examples of ``split``) and
    ``probe_accuracy`` (a linear probe trained on the first ``n`` examples of ``train``, tested on those of
    ``split``); the images as the model sees them (``x``)."""
    z_train, y_train = posterior_means(model, train.x[:n]).numpy(), train.y[:n].numpy()
    z, y = posterior_means(model, split.x[:n]).numpy(), split.y[:n].numpy()
    return cluster_scores(z, y, num_classes, seed) | {"probe_accuracy": probe_accuracy(z_train, y_train, z, y)}
