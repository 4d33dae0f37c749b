"""Disentanglement metrics on datasets with known generative factors, as in Locatello et al. 2019.

Each metric is a plain function ``metric(dataset, represent, seed=0, **protocol) -> dict`` whose defaults are the
constants of disentanglement_lib's ``unsupervised_study_v1`` (Locatello et al. 2019):

- :func:`beta_vae_score` (Higgins et al. 2017): a linear classifier names the fixed factor from mean |z1 - z2|;
- :func:`factor_vae_score` (Kim & Mnih 2018): majority vote from the dimension of least normalized variance;
- :func:`mig` (Chen et al. 2018): mutual information gap, from 20-bin histogram-discretized codes;
- :func:`sap` (Kumar et al. 2018): separated attribute predictability, one single-dimension LinearSVC per pair;
- :func:`dci` (Eastwood & Williams 2018): disentanglement, completeness and informativeness from boosted trees;
- :func:`modularity_explicitness` (Ridgeway & Mozer 2018).

:func:`all_metrics` runs the suite and times each metric.

``dataset`` is any :class:`FactorDataset` (``vaelab.data.factors`` has real ones); ``represent`` maps a batch of
images float32 [n, C, H, W] to codes [n, D] (numpy or torch; a VAE's posterior mean, say) and is called under
``torch.no_grad`` on CPU images, so it moves them to its model's device itself. Every metric draws its factors
from ``np.random.default_rng([metric key, seed])``: the same seed gives the same result whether a metric runs
alone or in :func:`all_metrics`, and two metrics never share samples. Images are made and represented in batches
of ``eval_batch_size``; nothing loops per example. ``represent`` must be a function of the image: codes are
remembered by factor combination (:class:`CodeMemo`, one per metric call or one for the whole suite), so a
combination drawn again is not encoded again.

Each result holds ``metric``, ``seed``, ``protocol`` (every constant used), ``factor_names`` (the factors scored:
those with more than one value; a constant factor carries no information and would divide by a zero entropy) and
the scores, as plain Python numbers and lists so that it can be written as JSON.
"""
from __future__ import annotations

import math
import time
import zlib
from typing import Any, Callable, Iterable, Protocol, runtime_checkable

import numpy as np
import torch

EVAL_BATCH_SIZE = 1024  # images made and represented at once
POINT_CHUNK = 128  # beta-VAE / FactorVAE points whose factors are drawn together (fixed: results do not depend on
# eval_batch_size)


@runtime_checkable
class FactorDataset(Protocol):
    """What the metrics need of a dataset: discrete factors, uniform sampling over their grid, and images."""

    factor_names: list[str]
    factor_sizes: list[int]

    def sample_factors(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """``n`` combinations drawn uniformly over the grid: int64 [n, F], factor ``j`` in 0 .. size_j - 1."""
        ...

    def images(self, factors: np.ndarray) -> torch.Tensor:
        """The images of ``factors`` (int [n, F]): float32 [n, C, H, W] in [0, 1]."""
        ...


Represent = Callable[[torch.Tensor], "np.ndarray | torch.Tensor"]


# ----------------------------------------------------------------------------------------------- sampling


def metric_rng(seed: int, metric: str) -> np.random.Generator:
    """The generator of ``metric`` for ``seed``: seeded by (a stable key of the metric's name, seed)."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed={seed!r}: expected a non-negative integer")
    return np.random.default_rng([zlib.crc32(metric.encode()), int(seed)])


def _sk_seed(rng: np.random.Generator) -> int:
    """A seed for a scikit-learn estimator, drawn from ``rng``."""
    return int(rng.integers(2**31 - 1))


def _check_count(n: Any, name: str, minimum: int = 1) -> int:
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < minimum:
        raise ValueError(f"{name}={n!r}: expected an integer >= {minimum}")
    return int(n)


def _sample(dataset: FactorDataset, n: int, rng: np.random.Generator) -> np.ndarray:
    """``dataset.sample_factors(n, rng)``, checked: int64 [n, F] within the grid."""
    f = np.asarray(dataset.sample_factors(n, rng))
    num_factors = len(dataset.factor_sizes)
    if f.shape != (n, num_factors) or not np.issubdtype(f.dtype, np.integer):
        raise ValueError(f"dataset.sample_factors({n}) gave {f.dtype} {f.shape}; expected int [{n}, {num_factors}]")
    if n and ((f < 0) | (f >= np.asarray(dataset.factor_sizes))).any():
        raise ValueError(f"dataset.sample_factors gave values outside factor_sizes={list(dataset.factor_sizes)}")
    return f.astype(np.int64, copy=False)


def _varying(dataset: FactorDataset) -> np.ndarray:
    """Indices of the factors that take more than one value (the ones scored)."""
    sizes = np.asarray(dataset.factor_sizes)
    if len(dataset.factor_names) != len(sizes):
        raise ValueError(f"{len(dataset.factor_names)} factor_names but {len(sizes)} factor_sizes")
    used = np.flatnonzero(sizes > 1)
    if len(used) == 0:
        raise ValueError(f"no factor takes more than one value (factor_sizes={list(sizes)}): nothing to score")
    return used


def _check_factors(dataset: FactorDataset, factors: np.ndarray) -> np.ndarray:
    """``factors`` as an array [n, F] with n >= 1, F the dataset's number of factors."""
    f = np.asarray(factors)
    if f.ndim != 2 or f.shape[1] != len(dataset.factor_sizes):
        raise ValueError(f"factors have shape {f.shape}; expected [n, {len(dataset.factor_sizes)}]")
    if len(f) == 0:
        raise ValueError("no factors to represent")
    return f


def codes_of(dataset: FactorDataset, represent: Represent, factors: np.ndarray,
             batch_size: int = EVAL_BATCH_SIZE) -> np.ndarray:
    """Codes of the images of ``factors`` (int [n, F]): float64 numpy [n, D], ``represent`` run per batch."""
    f = _check_factors(dataset, factors)
    n = len(f)
    batch_size = _check_count(batch_size, "batch_size")
    out = None
    with torch.no_grad():
        for start in range(0, n, batch_size):
            rows = f[start:start + batch_size]
            z = represent(dataset.images(rows))
            z = z.detach().to("cpu", torch.float64).numpy() if torch.is_tensor(z) else np.asarray(z, np.float64)
            if z.ndim != 2 or len(z) != len(rows) or (out is not None and z.shape[1] != out.shape[1]):
                want = f"[{len(rows)}, D]" if out is None else f"[{len(rows)}, {out.shape[1]}]"
                raise ValueError(f"represent gave codes of shape {tuple(z.shape)} for {len(rows)} images; "
                                 f"expected {want}")
            if not np.isfinite(z).all():
                raise ValueError("represent gave non-finite codes (NaN or inf)")
            if out is None:
                out = np.empty((n, z.shape[1]), np.float64)
            out[start:start + len(rows)] = z
    return out


class CodeMemo:
    """``represent`` of one dataset with its codes remembered by factor combination, so that each combination's
    image is made and encoded at most once.

    The β-VAE metric alone asks for (10,000 + 5,000) x 64 x 2 = 1.92 M images, FactorVAE for 0.96 M more; dSprites
    has 737,280 combinations, so most of those are repeats. A representation is a function of the image (a VAE's
    posterior mean), hence of the combination: remembering codes leaves every result as it was (bit for bit when
    the code of an image does not depend on the batch it is encoded in; a float32 network's may move in its last
    bits). Keys are flat indices over ``factor_sizes`` (``np.ravel_multi_index``), kept sorted beside their codes
    float64 [m, D]: memory grows with the m combinations encoded (at most the requests, at most the grid; 59 MB for
    all of dSprites or 38 MB for all of 3dshapes at D = 10), never with a grid's size, and a lookup is a binary
    search. A grid too large for int64 flat indices is not remembered.

    A memo is itself a ``represent`` (it calls the wrapped one), so it can be handed to any metric or to
    :func:`all_metrics` in place of ``represent``: they then share its codes. ``remember=False`` encodes every
    request afresh (the codes a representation that is not a function of its image, such as noise, needs);
    ``requested`` and ``encoded`` count images asked for and images encoded.
    """

    def __init__(self, dataset: FactorDataset, represent: Represent, remember: bool = True):
        self.dataset, self.represent = dataset, represent
        self.sizes = tuple(int(s) for s in dataset.factor_sizes)
        self.remember = remember and math.prod(self.sizes) <= np.iinfo(np.int64).max  # flat indices fit int64
        self.keys = np.empty(0, np.int64)  # sorted flat indices [m]
        self.codes: np.ndarray | None = None  # float64 [m, D]
        self.requested = self.encoded = 0

    @classmethod
    def of(cls, dataset: FactorDataset, represent: Represent) -> "CodeMemo":
        """``represent`` itself when it is a memo of ``dataset``, else a new memo of it."""
        if not isinstance(represent, CodeMemo):
            return cls(dataset, represent)
        if represent.dataset is not dataset:
            raise ValueError("represent is a CodeMemo of another dataset; pass its .represent instead")
        return represent

    def __call__(self, images: torch.Tensor):
        """Codes of ``images`` by the wrapped representation (nothing remembered: images carry no factors)."""
        return self.represent(images)

    def lookup(self, factors: np.ndarray, batch_size: int = EVAL_BATCH_SIZE) -> np.ndarray:
        """Codes float64 [n, D] of the images of ``factors`` (int [n, F]), encoding (in batches of ``batch_size``)
        only the combinations not seen before, each once."""
        f = _check_factors(self.dataset, factors)
        self.requested += len(f)
        if not self.remember:
            self.encoded += len(f)
            return codes_of(self.dataset, self.represent, f, batch_size)
        flat = np.ravel_multi_index(tuple(f.T), self.sizes)  # [n]
        wanted, inverse = np.unique(flat, return_inverse=True)  # sorted distinct combinations [u], [n]
        new = wanted[~self._known(wanted)]
        if len(new):
            z = codes_of(self.dataset, self.represent, np.stack(np.unravel_index(new, self.sizes), axis=1),
                         batch_size)
            if self.codes is not None and z.shape[1] != self.codes.shape[1]:
                raise ValueError(f"represent gave {z.shape[1]} code dimensions, {self.codes.shape[1]} before")
            at = np.searchsorted(self.keys, new)
            self.keys = np.insert(self.keys, at, new)
            self.codes = z if self.codes is None else np.insert(self.codes, at, z, axis=0)
            self.encoded += len(new)
        return self.codes[np.searchsorted(self.keys, wanted)][inverse.reshape(-1)]

    def _known(self, keys: np.ndarray) -> np.ndarray:
        """Which of the sorted ``keys`` [u] are remembered: bool [u]."""
        at = np.minimum(np.searchsorted(self.keys, keys), max(len(self.keys) - 1, 0))
        return (self.keys[at] == keys) if len(self.keys) else np.zeros(len(keys), bool)


def _factor_codes(memo: CodeMemo, n, rng, batch_size) -> tuple[np.ndarray, np.ndarray]:
    """``n`` i.i.d. factor combinations and their codes: (codes [n, D], factors [n, F])."""
    factors = _sample(memo.dataset, n, rng)
    return memo.lookup(factors, batch_size), factors


def _fixed_factor_batches(dataset, n_points, batch_size, used, rng):
    """Per chunk of up to POINT_CHUNK points: (the factor each point fixes [p], i.i.d. factors [p, B, F]).

    The callers fix the factor: beta-VAE copies it into a second array, FactorVAE across the batch."""
    num_factors = len(dataset.factor_sizes)
    for start in range(0, n_points, POINT_CHUNK):
        p = min(POINT_CHUNK, n_points - start)
        index = used[rng.integers(len(used), size=p)]
        yield index, _sample(dataset, p * batch_size, rng).reshape(p, batch_size, num_factors)


def _common(metric: str, seed: int, protocol: dict, dataset: FactorDataset, used: np.ndarray) -> dict:
    return {"metric": metric, "seed": int(seed), "protocol": protocol,
            "factor_names": [str(dataset.factor_names[j]) for j in used]}


# ------------------------------------------------------------------------------------------------ beta-VAE


def _beta_vae_points(memo, used, batch_size, n_points, rng, eval_batch_size):
    """Features (mean |z1 - z2| over each point's batch of pairs) [n, D] and the fixed factor of each point [n]."""
    dataset = memo.dataset
    num_factors = len(dataset.factor_sizes)
    features, labels = [], []
    for index, f1 in _fixed_factor_batches(dataset, n_points, batch_size, used, rng):
        p = len(index)
        f2 = _sample(dataset, p * batch_size, rng).reshape(p, batch_size, num_factors)
        rows, cols = np.arange(p)[:, None], np.arange(batch_size)[None, :]
        f2[rows, cols, index[:, None]] = f1[rows, cols, index[:, None]]
        z = memo.lookup(np.concatenate([f1, f2]).reshape(-1, num_factors), eval_batch_size)
        z = z.reshape(2, p, batch_size, -1)
        features.append(np.abs(z[0] - z[1]).mean(axis=1))
        labels.append(index)
    return np.concatenate(features), np.concatenate(labels)


def beta_vae_score(dataset: FactorDataset, represent: Represent, seed: int = 0, *, batch_size: int = 64,
                   num_train: int = 10000, num_eval: int = 5000, eval_batch_size: int = EVAL_BATCH_SIZE) -> dict:
    """β-VAE metric (Higgins et al. 2017) as disentanglement_lib's ``beta_vae_sklearn``.

    Each point fixes one random factor (uniform over the scored factors), draws ``batch_size`` pairs of factor
    combinations that agree on it (each pair its own value of it) and takes the mean over pairs of
    |z(x1) - z(x2)|; scikit-learn's ``LogisticRegression`` (default parameters) learns the fixed factor from that.
    Scores: ``train_accuracy`` and ``eval_accuracy`` (chance is 1 / number of factors).
    """
    from sklearn.linear_model import LogisticRegression

    batch_size = _check_count(batch_size, "batch_size")
    num_train, num_eval = _check_count(num_train, "num_train", 2), _check_count(num_eval, "num_eval")
    rng = metric_rng(seed, "beta_vae")
    memo = CodeMemo.of(dataset, represent)
    used = _varying(dataset)
    x_train, y_train = _beta_vae_points(memo, used, batch_size, num_train, rng, eval_batch_size)
    x_eval, y_eval = _beta_vae_points(memo, used, batch_size, num_eval, rng, eval_batch_size)
    if len(used) == 1:  # one factor: always right; LogisticRegression refuses a single class
        train_accuracy = eval_accuracy = 1.0
    else:
        if len(np.unique(y_train)) < 2:
            raise ValueError(f"num_train={num_train} points all fixed the same factor; use more points")
        model = LogisticRegression(random_state=_sk_seed(rng)).fit(x_train, y_train)
        train_accuracy = float(np.mean(model.predict(x_train) == y_train))
        eval_accuracy = float(np.mean(model.predict(x_eval) == y_eval))
    protocol = {"batch_size": batch_size, "num_train": num_train, "num_eval": num_eval,
                "classifier": "sklearn LogisticRegression()"}
    return {**_common("beta_vae", seed, protocol, dataset, used),
            "train_accuracy": train_accuracy, "eval_accuracy": eval_accuracy}


# ----------------------------------------------------------------------------------------------- FactorVAE


def _factor_vae_votes(memo, used, batch_size, n_points, rng, eval_batch_size, scale, active):
    """Votes [F, A]: how often fixing factor f left active dimension a with the least normalized variance."""
    dataset = memo.dataset
    num_factors = len(dataset.factor_sizes)
    votes = np.zeros((num_factors, int(active.sum())), np.int64)
    for index, f in _fixed_factor_batches(dataset, n_points, batch_size, used, rng):
        p = len(index)
        rows, cols = np.arange(p)[:, None], np.arange(batch_size)[None, :]
        f[rows, cols, index[:, None]] = f[np.arange(p), 0, index][:, None]  # the value of the batch's first
        z = memo.lookup(f.reshape(-1, num_factors), eval_batch_size).reshape(p, batch_size, -1)
        local = np.var(z[..., active], axis=1, ddof=1)
        np.add.at(votes, (index, np.argmin(local / scale[active], axis=1)), 1)
    return votes[used]


def factor_vae_score(dataset: FactorDataset, represent: Represent, seed: int = 0, *, batch_size: int = 64,
                     num_train: int = 10000, num_eval: int = 5000, num_variance_estimate: int = 10000,
                     prune_threshold: float = 0.05, eval_batch_size: int = EVAL_BATCH_SIZE) -> dict:
    """FactorVAE metric (Kim & Mnih 2018) as disentanglement_lib's ``factor_vae_score``.

    The variance of each code dimension over ``num_variance_estimate`` images normalizes it; dimensions whose
    standard deviation is below ``prune_threshold`` are inactive (disentanglement_lib's ``prune_dims``, which the
    study sets to 0.05 and compares with the standard deviation, i.e. variance < 0.0025). Each point fixes one
    random factor over a batch of ``batch_size`` images and votes for the active dimension of least normalized
    variance; each dimension predicts the factor it got most training votes for. Scores: ``train_accuracy``,
    ``eval_accuracy`` (0 for both when no dimension is active, as disentanglement_lib) and ``num_active_dims``.
    """
    batch_size = _check_count(batch_size, "batch_size", 2)
    num_train, num_eval = _check_count(num_train, "num_train"), _check_count(num_eval, "num_eval")
    num_variance_estimate = _check_count(num_variance_estimate, "num_variance_estimate", 2)
    rng = metric_rng(seed, "factor_vae")
    memo = CodeMemo.of(dataset, represent)
    used = _varying(dataset)
    z, _ = _factor_codes(memo, num_variance_estimate, rng, eval_batch_size)
    global_variances = np.var(z, axis=0, ddof=1)
    active = np.sqrt(global_variances) >= prune_threshold
    protocol = {"batch_size": batch_size, "num_train": num_train, "num_eval": num_eval,
                "num_variance_estimate": num_variance_estimate, "prune_threshold": float(prune_threshold),
                "prune_on": "standard deviation"}
    result = {**_common("factor_vae", seed, protocol, dataset, used), "num_active_dims": int(active.sum()),
              "global_variances": global_variances.tolist()}
    if not active.any():
        return {**result, "train_accuracy": 0.0, "eval_accuracy": 0.0}
    train_votes = _factor_vae_votes(memo, used, batch_size, num_train, rng, eval_batch_size,
                                    global_variances, active)
    eval_votes = _factor_vae_votes(memo, used, batch_size, num_eval, rng, eval_batch_size,
                                   global_variances, active)
    classifier = np.argmax(train_votes, axis=0)  # factor (row of used) predicted by each active dimension
    dims = np.arange(train_votes.shape[1])
    return {**result, "train_accuracy": float(train_votes[classifier, dims].sum() / train_votes.sum()),
            "eval_accuracy": float(eval_votes[classifier, dims].sum() / eval_votes.sum())}


# ---------------------------------------------------------------------------------------- information-based


def histogram_discretize(codes: np.ndarray, num_bins: int = 20) -> np.ndarray:
    """Each column of ``codes`` [n, D] as its bin (1 .. num_bins) among ``num_bins`` equal-width bins over its range
    (disentanglement_lib's ``_histogram_discretize``)."""
    out = np.empty(codes.shape, np.int64)
    for i in range(codes.shape[1]):
        edges = np.histogram(codes[:, i], num_bins)[1]
        out[:, i] = np.digitize(codes[:, i], edges[:-1])
    return out


def discrete_mutual_info(discrete_codes: np.ndarray, factors: np.ndarray) -> np.ndarray:
    """Mutual information (nats) [D, F] between discretized codes [n, D] and factors [n, F]."""
    from sklearn.metrics import mutual_info_score

    return np.array([[mutual_info_score(factors[:, j], discrete_codes[:, i]) for j in range(factors.shape[1])]
                     for i in range(discrete_codes.shape[1])], np.float64).reshape(discrete_codes.shape[1], -1)


def discrete_entropy(factors: np.ndarray) -> np.ndarray:
    """Entropy (nats) of each column of ``factors`` [n, F]."""
    from sklearn.metrics import mutual_info_score

    return np.array([mutual_info_score(factors[:, j], factors[:, j]) for j in range(factors.shape[1])])


def mig(dataset: FactorDataset, represent: Represent, seed: int = 0, *, num_train: int = 10000,
        num_bins: int = 20, eval_batch_size: int = EVAL_BATCH_SIZE) -> dict:
    """Mutual information gap (Chen et al. 2018) as disentanglement_lib's ``mig`` ("discrete_mig").

    Codes of ``num_train`` images are discretized into ``num_bins`` histogram bins per dimension; for each factor,
    the gap between the two largest I(z_i; v_k) over dimensions, divided by H(v_k), is averaged over factors.
    Also returns ``mutual_information`` [D, F] (nats, list of lists), ``normalized_mutual_information`` (each
    column divided by its factor's entropy), ``factor_entropy`` and ``mig_per_factor``. With one code dimension
    the second largest is taken as 0.
    """
    num_train = _check_count(num_train, "num_train", 2)
    num_bins = _check_count(num_bins, "num_bins")
    rng = metric_rng(seed, "mig")
    memo = CodeMemo.of(dataset, represent)
    used = _varying(dataset)
    z, f = _factor_codes(memo, num_train, rng, eval_batch_size)
    ys = f[:, used]
    m = discrete_mutual_info(histogram_discretize(z, num_bins), ys)
    entropy = discrete_entropy(ys)
    top = np.sort(m, axis=0)[::-1]
    second = top[1] if len(top) > 1 else np.zeros(m.shape[1])
    with np.errstate(divide="ignore", invalid="ignore"):  # a factor constant in the sample: 0, not NaN
        per_factor = np.where(entropy > 0, (top[0] - second) / entropy, 0.0)
        normalized = np.where(entropy > 0, m / entropy, 0.0)
    protocol = {"num_train": num_train, "num_bins": num_bins, "discretizer": "histogram"}
    return {**_common("mig", seed, protocol, dataset, used), "mig": float(per_factor.mean()),
            "mig_per_factor": per_factor.tolist(), "mutual_information": m.tolist(),
            "normalized_mutual_information": normalized.tolist(), "factor_entropy": entropy.tolist()}


def modularity_of(mutual_information: np.ndarray) -> float:
    """Modularity (Ridgeway & Mozer 2018) of a mutual information matrix [D, F], as disentanglement_lib: per code,
    1 - (sum of squared MI but the largest) / (largest * (F - 1)); a code with no information scores 0."""
    sq = np.square(np.asarray(mutual_information, np.float64))
    if sq.shape[1] < 2:  # one factor: every informative code is modular
        return float(np.mean(sq[:, 0] > 0))
    top = sq.max(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        score = 1.0 - (sq.sum(axis=1) - top) / (top * (sq.shape[1] - 1.0))
    return float(np.mean(np.where(top == 0, 0.0, score)))


def modularity_explicitness(dataset: FactorDataset, represent: Represent, seed: int = 0, *, num_train: int = 10000,
                            num_test: int = 5000, num_bins: int = 20,
                            eval_batch_size: int = EVAL_BATCH_SIZE) -> dict:
    """Modularity and explicitness (Ridgeway & Mozer 2018) as disentanglement_lib's ``modularity_explicitness``.

    Modularity comes from the mutual information of ``num_bins``-bin discretized codes with the factors.
    Explicitness: per factor, ``LogisticRegression`` (default parameters) on the codes standardized with the
    training mean and deviation, scored by the one-vs-rest ROC-AUC of its probabilities averaged over classes
    (classes missing from a test sample are skipped); averaged over factors. Scores: ``modularity``,
    ``explicitness`` (test), ``explicitness_train``, ``explicitness_per_factor`` and ``mutual_information``.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score

    num_train, num_test = _check_count(num_train, "num_train", 2), _check_count(num_test, "num_test")
    num_bins = _check_count(num_bins, "num_bins")
    rng = metric_rng(seed, "modularity_explicitness")
    memo = CodeMemo.of(dataset, represent)
    used = _varying(dataset)
    z_train, f_train = _factor_codes(memo, num_train, rng, eval_batch_size)
    z_test, f_test = _factor_codes(memo, num_test, rng, eval_batch_size)
    y_train, y_test = f_train[:, used], f_test[:, used]
    m = discrete_mutual_info(histogram_discretize(z_train, num_bins), y_train)

    mean, std = z_train.mean(axis=0), z_train.std(axis=0)
    std = np.where(std > 0, std, 1.0)  # a constant code: 0 after centring (disentanglement_lib would give NaN)
    x_train, x_test = (z_train - mean) / std, (z_test - mean) / std

    def auc(model, x, y):
        proba = model.predict_proba(x)
        scores = [roc_auc_score(y == c, proba[:, k]) for k, c in enumerate(model.classes_)
                  if 0 < (y == c).sum() < len(y)]
        return float(np.mean(scores)) if scores else float("nan")

    train_auc, test_auc = [], []
    for j in range(len(used)):
        if len(np.unique(y_train[:, j])) < 2:
            raise ValueError(f"factor {dataset.factor_names[used[j]]!r} took one value in all {num_train} "
                             "training points; use more points")
        model = LogisticRegression(random_state=_sk_seed(rng)).fit(x_train, y_train[:, j])
        train_auc.append(auc(model, x_train, y_train[:, j]))
        test_auc.append(auc(model, x_test, y_test[:, j]))
    protocol = {"num_train": num_train, "num_test": num_test, "num_bins": num_bins, "discretizer": "histogram",
                "classifier": "sklearn LogisticRegression()"}
    return {**_common("modularity_explicitness", seed, protocol, dataset, used), "modularity": modularity_of(m),
            "explicitness": float(np.nanmean(test_auc)), "explicitness_train": float(np.nanmean(train_auc)),
            "explicitness_per_factor": test_auc, "mutual_information": m.tolist()}


# ------------------------------------------------------------------------------------------------------ SAP


def sap(dataset: FactorDataset, represent: Represent, seed: int = 0, *, num_train: int = 10000,
        num_test: int = 5000, continuous_factors: bool = False, eval_batch_size: int = EVAL_BATCH_SIZE) -> dict:
    """SAP score (Kumar et al. 2018) as disentanglement_lib's ``sap_score``.

    Score matrix [D, F]: with ``continuous_factors=False`` (the study's setting) the test accuracy of
    ``LinearSVC(C=0.01, class_weight="balanced")`` trained on that single code dimension; with True, the squared
    correlation of code and factor (on the training sample). SAP is the mean over factors of the gap between the
    two largest scores. Also returns ``score_matrix`` and ``sap_per_factor``; with one code dimension the second
    largest is taken as 0.
    """
    num_train, num_test = _check_count(num_train, "num_train", 2), _check_count(num_test, "num_test")
    rng = metric_rng(seed, "sap")
    memo = CodeMemo.of(dataset, represent)
    used = _varying(dataset)
    z_train, f_train = _factor_codes(memo, num_train, rng, eval_batch_size)
    y_train = f_train[:, used]
    if continuous_factors:
        zc, yc = z_train - z_train.mean(0), (y_train - y_train.mean(0)).astype(np.float64)
        cov = zc.T @ yc / (num_train - 1)
        var_z, var_y = zc.var(0, ddof=1), yc.var(0, ddof=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            scores = np.where(var_z[:, None] > 1e-12, cov**2 / (var_z[:, None] * var_y[None, :]), 0.0)
        scores = np.nan_to_num(scores)
        classifier = None
    else:
        from sklearn.svm import LinearSVC

        z_test, f_test = _factor_codes(memo, num_test, rng, eval_batch_size)
        y_test = f_test[:, used]
        scores = np.zeros((z_train.shape[1], len(used)))
        for j in range(len(used)):
            if len(np.unique(y_train[:, j])) < 2:
                raise ValueError(f"factor {dataset.factor_names[used[j]]!r} took one value in all {num_train} "
                                 "training points; use more points")
            for i in range(z_train.shape[1]):
                model = LinearSVC(C=0.01, class_weight="balanced", random_state=_sk_seed(rng))
                model.fit(z_train[:, i:i + 1], y_train[:, j])
                scores[i, j] = np.mean(model.predict(z_test[:, i:i + 1]) == y_test[:, j])
        classifier = 'sklearn LinearSVC(C=0.01, class_weight="balanced")'
    top = np.sort(scores, axis=0)[::-1]
    per_factor = top[0] - (top[1] if len(top) > 1 else 0.0)
    protocol = {"num_train": num_train, "num_test": None if continuous_factors else num_test,
                "continuous_factors": bool(continuous_factors), "classifier": classifier}
    return {**_common("sap", seed, protocol, dataset, used), "sap": float(per_factor.mean()),
            "sap_per_factor": per_factor.tolist(), "score_matrix": scores.tolist()}


# ------------------------------------------------------------------------------------------------------ DCI


def _entropy_rows(p: np.ndarray, base: int) -> np.ndarray:
    """Entropy in base ``base`` of each row of ``p`` (normalized first, as scipy.stats.entropy); 0 when base 1."""
    if base < 2:
        return np.zeros(len(p))
    q = p / p.sum(axis=1, keepdims=True)
    return -(q * np.log(q)).sum(axis=1) / np.log(base)


def dci_scores(importance: np.ndarray) -> dict:
    """Disentanglement and completeness (Eastwood & Williams 2018) of an importance matrix [D, F], as
    disentanglement_lib: per code 1 - H_F(row), weighted by the code's share of importance; per factor
    1 - H_D(column), weighted likewise (each column of boosted-tree importances sums to 1, so that is a mean)."""
    r = np.abs(np.asarray(importance, np.float64))
    num_codes, num_factors = r.shape
    per_code = 1.0 - _entropy_rows(r + 1e-11, num_factors)
    per_factor = 1.0 - _entropy_rows(r.T + 1e-11, num_codes)
    w = r if r.sum() > 0 else np.ones_like(r)
    return {"disentanglement": float(np.sum(per_code * w.sum(axis=1) / w.sum())),
            "completeness": float(np.sum(per_factor * w.sum(axis=0) / w.sum())),
            "disentanglement_per_code": per_code.tolist(), "completeness_per_factor": per_factor.tolist()}


def _fit_factor(model, z_train, y_train, z_test, y_test) -> tuple[np.ndarray, float, float]:
    """``model`` fitted to predict one factor from the codes: (|feature importances| [D], train accuracy,
    test accuracy)."""
    model.fit(z_train, y_train)
    return (np.abs(model.feature_importances_), float(np.mean(model.predict(z_train) == y_train)),
            float(np.mean(model.predict(z_test) == y_test)))


def dci(dataset: FactorDataset, represent: Represent, seed: int = 0, *, num_train: int = 10000,
        num_test: int = 5000, classifier: Callable[[int], Any] | None = None,
        eval_batch_size: int = EVAL_BATCH_SIZE, n_jobs: int | None = None) -> dict:
    """DCI (Eastwood & Williams 2018) as disentanglement_lib's ``dci``.

    Per factor, scikit-learn's ``GradientBoostingClassifier`` with default parameters (the protocol; slow: about
    100 x classes trees per factor) predicts the factor from all codes; its ``feature_importances_`` make column f
    of the importance matrix [D, F]. Scores: ``disentanglement``, ``completeness`` (see :func:`dci_scores`),
    ``informativeness`` (mean test accuracy over factors; disentanglement_lib's "informativeness_test"),
    ``informativeness_train``, ``accuracy_per_factor`` and ``importance_matrix``.

    ``classifier(seed)`` may give another estimator with ``feature_importances_`` (e.g. a smaller
    GradientBoostingClassifier); the result's protocol then names it, and the scores are not the protocol's.

    The factors' classifiers are fitted in parallel, ``n_jobs`` threads (default: one per core, at most one per
    factor); threads, as scikit-learn's random forests fit their trees, because its tree building runs without
    the GIL. Their seeds are drawn first, so the result is the same for any ``n_jobs``.
    """
    import joblib  # scikit-learn's
    from sklearn.ensemble import GradientBoostingClassifier

    num_train, num_test = _check_count(num_train, "num_train", 2), _check_count(num_test, "num_test")
    rng = metric_rng(seed, "dci")
    memo = CodeMemo.of(dataset, represent)
    used = _varying(dataset)
    z_train, f_train = _factor_codes(memo, num_train, rng, eval_batch_size)
    z_test, f_test = _factor_codes(memo, num_test, rng, eval_batch_size)
    make = classifier or (lambda s: GradientBoostingClassifier(random_state=s))
    for k in used:
        if len(np.unique(f_train[:, k])) < 2:
            raise ValueError(f"factor {dataset.factor_names[k]!r} took one value in all {num_train} training "
                             "points; use more points")
    models = [make(_sk_seed(rng)) for _ in used]  # every seed first, in factor order: n_jobs changes nothing
    # most classes (most trees) first, so that the workers finish together
    order = sorted(range(len(used)), key=lambda j: -len(np.unique(f_train[:, used[j]])))
    jobs = _check_count(n_jobs, "n_jobs") if n_jobs is not None else min(len(used), joblib.cpu_count())
    fits = dict(zip(order, joblib.Parallel(n_jobs=jobs, backend="threading")(
        joblib.delayed(_fit_factor)(models[j], z_train, f_train[:, used[j]], z_test, f_test[:, used[j]])
        for j in order)))
    importance, train_acc, test_acc = zip(*(fits[j] for j in range(len(used))))
    importance, train_acc, test_acc = np.stack(importance, axis=1), list(train_acc), list(test_acc)  # [D, F]
    name = "sklearn GradientBoostingClassifier()" if classifier is None else repr(models[-1])
    protocol = {"num_train": num_train, "num_test": num_test, "classifier": name,
                "standard_classifier": classifier is None}
    return {**_common("dci", seed, protocol, dataset, used), **dci_scores(importance),
            "informativeness": float(np.mean(test_acc)), "informativeness_train": float(np.mean(train_acc)),
            "accuracy_per_factor": test_acc, "importance_matrix": importance.tolist()}


# ------------------------------------------------------------------------------------------------ the suite


METRICS: dict[str, Callable[..., dict]] = {
    "beta_vae": beta_vae_score,
    "factor_vae": factor_vae_score,
    "mig": mig,
    "sap": sap,
    "dci": dci,
    "modularity_explicitness": modularity_explicitness,
}


def _parameters(fn: Callable) -> set[str]:
    import inspect

    return {p.name for p in inspect.signature(fn).parameters.values() if p.kind is p.KEYWORD_ONLY}


def all_metrics(dataset: FactorDataset, represent: Represent, seed: int = 0, sizes: dict | None = None, *,
                metrics: Iterable[str] | None = None, eval_batch_size: int = EVAL_BATCH_SIZE) -> dict[str, dict]:
    """Run the suite: {metric name: result}, each result with its wall time in ``seconds`` and the images it asked
    for (``images_requested``) and had encoded (``images_encoded``: the metrics share one :class:`CodeMemo`, so each
    factor combination is encoded once in the whole suite; pass a memo as ``represent`` to share it further).

    ``sizes`` overrides protocol constants. A key naming a metric maps to that metric's keyword arguments
    (``{"dci": {"num_train": 2000}}``); any other key applies to every metric that takes it
    (``{"num_train": 1000, "num_test": 500}``), a per-metric value winning; a key that no metric of the suite
    takes is an error (a typo), one that only metrics left out take is unused. ``metrics`` picks a subset of
    :data:`METRICS` (default: all, in that order).
    """
    names = list(METRICS) if metrics is None else list(metrics)
    unknown = [n for n in names if n not in METRICS]
    if unknown:
        raise ValueError(f"unknown metric(s) {unknown}; expected some of {list(METRICS)}")
    sizes = dict(sizes or {})
    shared = {k: v for k, v in sizes.items() if k not in METRICS}
    taken = set().union(*map(_parameters, METRICS.values()))
    if set(shared) - taken:
        raise ValueError(f"sizes {sorted(set(shared) - taken)} are not parameters of any metric")
    for n, kw in sizes.items():
        if n in METRICS:
            if n not in names:
                raise ValueError(f"sizes[{n!r}] given but {n!r} is not run")
            if not isinstance(kw, dict) or set(kw) - _parameters(METRICS[n]):
                raise ValueError(f"sizes[{n!r}] = {kw!r}: expected a dict of {sorted(_parameters(METRICS[n]))}")
    memo = CodeMemo.of(dataset, represent)  # one image per factor combination across the whole suite
    results = {}
    for n in names:
        fn = METRICS[n]
        kw = {"eval_batch_size": eval_batch_size, **{k: v for k, v in shared.items() if k in _parameters(fn)},
              **sizes.get(n, {})}
        start, requested, encoded = time.perf_counter(), memo.requested, memo.encoded
        result = fn(dataset, memo, seed, **kw)
        results[n] = {**result, "seconds": time.perf_counter() - start,
                      "images_requested": memo.requested - requested, "images_encoded": memo.encoded - encoded}
    return results
