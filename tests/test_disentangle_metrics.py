"""Disentanglement metrics (vaelab.disentangle.metrics) on a synthetic factor dataset whose answers are known.

The "images" are the factors themselves, normalized to [0, 1] (1 x 1 x F); representations of them are the
factors (disentangled: every metric near its maximum), independent noise (near its minimum), and a random
rotation of the factors (all information kept, but spread over every dimension).
"""
import inspect
import json

import numpy as np
import pytest
import torch

from vaelab.disentangle import (METRICS, CodeMemo, FactorDataset, all_metrics, beta_vae_score, codes_of, dci,
                                factor_vae_score, mig, modularity_explicitness, sap)
from vaelab.disentangle.metrics import dci_scores, histogram_discretize, modularity_of

N = 1000  # points for training (half of it for evaluation/test): the protocol's 10,000 would take minutes
SIZES = {"num_train": N, "num_eval": N // 2, "num_test": N // 2, "num_variance_estimate": N}


class Toy:
    """Factors [3, 6, 8, 8]; the image of a combination holds its factor values divided by (size - 1)."""

    def __init__(self, sizes=(3, 6, 8, 8)):
        self.factor_sizes = list(sizes)
        self.factor_names = [f"f{j}" for j in range(len(sizes))]

    def sample_factors(self, n, rng):
        return rng.integers(0, self.factor_sizes, size=(n, len(self.factor_sizes)), dtype=np.int64)

    def images(self, factors):
        scale = np.maximum(np.asarray(self.factor_sizes) - 1.0, 1.0)
        return torch.as_tensor(factors / scale, dtype=torch.float32).reshape(len(factors), 1, 1, -1)


def identity(x):
    return x.flatten(1)


def noise_rep(seed=0, dim=4):
    g = torch.Generator().manual_seed(seed)
    return lambda x: torch.randn(len(x), dim, generator=g)


ROTATION = torch.linalg.qr(torch.randn(4, 4, generator=torch.Generator().manual_seed(1)))[0]


def rotated(x):
    return (x.flatten(1) - 0.5) @ ROTATION


def jitter(x):
    """Deterministic in the image, float64, and no two factor values coded alike: a seed changes results only
    through the samples drawn, and remembering codes changes nothing."""
    z = x.flatten(1).double()
    return z + 0.3 * torch.sin(1000 * z @ torch.arange(1.0, 5.0, dtype=torch.float64)[:, None])


@pytest.fixture(scope="module")
def suite():
    """The whole suite at small sizes, once per representation. Noise is not a function of the image, so its
    codes are drawn afresh for every image asked for (not remembered by combination)."""
    ds = Toy()
    return {name: all_metrics(ds, rep, 0, SIZES) for name, rep in
            [("identity", identity), ("noise", CodeMemo(ds, noise_rep(), remember=False)), ("rotated", rotated)]}


def test_the_toy_dataset_satisfies_the_protocol():
    assert isinstance(Toy(), FactorDataset)


def test_protocol_defaults_are_locatello_et_al():
    def defaults(fn):
        return {k: p.default for k, p in inspect.signature(fn).parameters.items() if p.default is not p.empty}

    assert {k: defaults(beta_vae_score)[k] for k in ("batch_size", "num_train", "num_eval")} == \
        {"batch_size": 64, "num_train": 10000, "num_eval": 5000}
    assert {k: defaults(factor_vae_score)[k] for k in ("batch_size", "num_train", "num_eval",
                                                       "num_variance_estimate", "prune_threshold")} == \
        {"batch_size": 64, "num_train": 10000, "num_eval": 5000, "num_variance_estimate": 10000,
         "prune_threshold": 0.05}
    assert defaults(mig)["num_train"] == 10000 and defaults(mig)["num_bins"] == 20
    for fn in (sap, dci, modularity_explicitness):
        assert (defaults(fn)["num_train"], defaults(fn)["num_test"]) == (10000, 5000)
    assert defaults(sap)["continuous_factors"] is False and defaults(dci)["classifier"] is None


def test_disentangled_codes_score_near_the_maximum(suite):
    r = suite["identity"]
    assert r["beta_vae"]["eval_accuracy"] >= 0.95 and r["beta_vae"]["train_accuracy"] >= 0.95
    assert r["factor_vae"]["eval_accuracy"] >= 0.95 and r["factor_vae"]["num_active_dims"] == 4
    assert r["mig"]["mig"] >= 0.9  # 0.99: the MI with the right code is the factor's entropy, the rest ~0
    assert r["dci"]["disentanglement"] >= 0.9 and r["dci"]["completeness"] >= 0.9
    assert r["dci"]["informativeness"] >= 0.95
    assert r["modularity_explicitness"]["modularity"] >= 0.95
    assert r["modularity_explicitness"]["explicitness"] >= 0.95
    # discrete SAP with a single-dimension linear SVM is far from 1 even here: one-vs-rest on one feature only
    # separates the extreme classes (3 classes: accuracy 2/3 against 1/3 by chance). Measured 0.16 to 0.20.
    assert r["sap"]["sap"] >= 0.12
    mi = np.array(r["mig"]["mutual_information"])
    assert mi.shape == (4, 4) and (np.argmax(mi, axis=0) == np.arange(4)).all()


def test_noise_codes_score_near_the_minimum(suite):
    r = suite["noise"]
    chance = 1 / 4
    assert r["beta_vae"]["eval_accuracy"] <= chance + 0.1
    assert r["factor_vae"]["eval_accuracy"] <= chance + 0.1
    assert r["mig"]["mig"] <= 0.03
    assert r["sap"]["sap"] <= 0.05
    assert r["dci"]["disentanglement"] <= 0.1 and r["dci"]["completeness"] <= 0.1
    chance_accuracy = np.mean([1 / s for s in Toy().factor_sizes])  # 0.19
    assert r["dci"]["informativeness"] <= chance_accuracy + 0.08
    assert abs(r["modularity_explicitness"]["explicitness"] - 0.5) <= 0.08  # ROC-AUC of a guess


def test_a_rotation_keeps_the_information_but_not_the_disentanglement(suite):
    r, ident = suite["rotated"], suite["identity"]
    assert r["mig"]["mig"] <= 0.6 <= ident["mig"]["mig"] - 0.3  # measured 0.36 against 0.99
    assert r["dci"]["disentanglement"] <= 0.6 and r["dci"]["completeness"] <= 0.6  # 0.32 / 0.34
    assert r["modularity_explicitness"]["modularity"] <= ident["modularity_explicitness"]["modularity"] - 0.1
    assert r["dci"]["informativeness"] >= 0.8  # 0.92 to 0.94
    assert r["modularity_explicitness"]["explicitness"] >= 0.95  # linear: a rotation changes nothing
    assert r["beta_vae"]["eval_accuracy"] >= 0.9


def test_results_carry_protocol_seed_and_time_and_are_json(suite):
    r = suite["identity"]
    assert list(r) == list(METRICS)
    for name, result in r.items():
        assert result["metric"] == name and result["seed"] == 0 and result["seconds"] > 0
        assert result["factor_names"] == ["f0", "f1", "f2", "f3"]
    assert r["dci"]["protocol"]["num_train"] == N and r["dci"]["protocol"]["num_test"] == N // 2
    assert r["dci"]["protocol"]["classifier"] == "sklearn GradientBoostingClassifier()"
    assert r["beta_vae"]["protocol"] == {"batch_size": 64, "num_train": N, "num_eval": N // 2,
                                         "classifier": "sklearn LogisticRegression()"}
    assert r["factor_vae"]["protocol"]["num_variance_estimate"] == N
    json.dumps(r)


def test_continuous_sap_is_the_squared_correlation_gap():
    ds = Toy()
    assert sap(ds, identity, 0, num_train=N, continuous_factors=True)["sap"] >= 0.95
    assert sap(ds, noise_rep(), 0, num_train=N, continuous_factors=True)["sap"] <= 0.02
    assert sap(ds, rotated, 0, num_train=N, continuous_factors=True)["sap"] <= 0.6


def test_mig_is_zero_for_a_factor_held_by_two_codes():
    def twice(x):
        z = x.flatten(1)
        return torch.cat([z, z[:, 2:3]], dim=1)

    r = mig(Toy(), twice, 0, num_train=N)
    assert r["mig_per_factor"][2] == pytest.approx(0.0, abs=1e-12)
    assert min(r["mig_per_factor"][j] for j in (0, 1, 3)) >= 0.9
    assert np.array(r["mutual_information"]).shape == (5, 4)


def test_factor_vae_prunes_collapsed_dimensions():
    g = torch.Generator().manual_seed(0)

    def with_collapsed(x):  # a fifth code with standard deviation 0.01, below the threshold 0.05
        return torch.cat([x.flatten(1), 0.01 * torch.randn(len(x), 1, generator=g)], dim=1)

    r = factor_vae_score(Toy(), with_collapsed, 0, num_train=200, num_eval=100, num_variance_estimate=500)
    assert r["num_active_dims"] == 4 and r["eval_accuracy"] >= 0.95
    r = factor_vae_score(Toy(), with_collapsed, 0, num_train=200, num_eval=100, num_variance_estimate=500,
                         prune_threshold=0.0)
    assert r["num_active_dims"] == 5
    r = factor_vae_score(Toy(), lambda x: torch.zeros(len(x), 3), 0, num_train=10, num_eval=10,
                         num_variance_estimate=100)
    assert r["num_active_dims"] == 0 and r["eval_accuracy"] == 0.0


def test_same_seed_same_result_other_seed_other_samples_alone_or_in_the_suite():
    ds = Toy()
    a = mig(ds, jitter, 3, num_train=300)
    assert a == mig(ds, jitter, 3, num_train=300)
    assert a["mutual_information"] != mig(ds, jitter, 4, num_train=300)["mutual_information"]
    b = beta_vae_score(ds, jitter, 3, num_train=50, num_eval=30)
    assert b == beta_vae_score(ds, jitter, 3, num_train=50, num_eval=30, eval_batch_size=77)
    suite = all_metrics(ds, jitter, 3, {"num_train": 300, "beta_vae": {"num_train": 50, "num_eval": 30}},
                        metrics=["mig", "beta_vae"])
    assert {k: v for k, v in suite["mig"].items() if not k.startswith(("seconds", "images_"))} == a
    assert {k: v for k, v in suite["beta_vae"].items() if not k.startswith(("seconds", "images_"))} == b


def test_beta_vae_represents_in_big_batches():
    calls = []

    def counting(x):
        calls.append(len(x))
        return x.flatten(1).numpy()  # numpy codes are accepted too

    ds = Toy()
    beta_vae_score(ds, CodeMemo(ds, counting, remember=False), 0, num_train=200, num_eval=100, eval_batch_size=4096)
    assert sum(calls) == (200 + 100) * 2 * 64  # two images per pair, 64 pairs per point
    assert len(calls) <= 12 and max(calls) == 4096


def test_the_memo_encodes_each_combination_once_and_changes_no_result():
    ds = Toy()
    seen = []

    def counting(x):  # jitter, remembering the images it was given
        seen.append(x.flatten(1).numpy())
        return jitter(x)

    sizes = {"num_train": 200, "num_eval": 100, "num_test": 100, "num_variance_estimate": 200,
             "dci": {"classifier": small_boosting}}
    fresh = CodeMemo(ds, jitter, remember=False)
    plain = all_metrics(ds, fresh, 0, sizes)
    memo = all_metrics(ds, counting, 0, sizes)
    for name in METRICS:  # bit-identical: every code is a float64 function of its combination
        assert {k: v for k, v in memo[name].items() if not k.startswith(("seconds", "images_"))} == \
            {k: v for k, v in plain[name].items() if not k.startswith(("seconds", "images_"))}, name
        assert memo[name]["images_requested"] == plain[name]["images_requested"] == \
            plain[name]["images_encoded"] > 0
    encoded = np.concatenate(seen)
    assert len(np.unique(encoded, axis=0)) == len(encoded) <= np.prod(ds.factor_sizes)  # each at most once
    assert len(encoded) == sum(r["images_encoded"] for r in memo.values())
    assert fresh.requested == fresh.encoded == sum(r["images_requested"] for r in memo.values()) > 20 * len(encoded)
    assert memo["mig"]["images_encoded"] == 0  # the β-VAE and FactorVAE metrics drew every combination before
    # a metric alone remembers its own codes
    seen.clear()
    alone = beta_vae_score(ds, counting, 0, num_train=200, num_eval=100)
    assert alone == {k: v for k, v in plain["beta_vae"].items() if not k.startswith(("seconds", "images_"))}
    assert len(np.concatenate(seen)) == len(np.unique(np.concatenate(seen), axis=0)) <= np.prod(ds.factor_sizes)


def test_the_memo_looks_codes_up_by_combination_and_checks():
    ds = Toy()
    memo = CodeMemo(ds, jitter)
    f = ds.sample_factors(500, np.random.default_rng(0))
    np.testing.assert_array_equal(memo.lookup(f[:300], batch_size=7), codes_of(ds, jitter, f[:300]))
    np.testing.assert_array_equal(memo.lookup(f[::-1]), codes_of(ds, jitter, f[::-1]))  # known and new, repeats
    assert memo.requested == 800 and memo.encoded == len(np.unique(f, axis=0)) < 500
    assert memo(ds.images(f[:2])).shape == (2, 4)  # still a representation of images
    assert CodeMemo.of(ds, memo) is memo and CodeMemo.of(ds, jitter) is not memo
    with pytest.raises(ValueError, match="another dataset"):
        CodeMemo.of(Toy(), memo)
    with pytest.raises(ValueError, match="shape"):
        memo.lookup(f[:, :3])
    other = CodeMemo(ds, jitter)
    other.lookup(np.zeros((1, 4), np.int64))
    other.represent = lambda x: torch.zeros(len(x), 5, dtype=torch.float64)
    with pytest.raises(ValueError, match="code dimensions"):
        other.lookup(np.ones((1, 4), np.int64))
    assert not CodeMemo(Toy((2**32,) * 3), identity).remember  # no int64 flat index: every request encoded


def small_boosting(seed):
    """Boosted trees small enough for a test, and random (subsampled): each factor's seed shows in its result."""
    from sklearn.ensemble import GradientBoostingClassifier

    return GradientBoostingClassifier(n_estimators=10, subsample=0.5, random_state=seed)


def test_dci_fits_the_factors_in_parallel_with_the_same_result():
    ds, kw = Toy(), {"num_train": 300, "num_test": 150, "classifier": small_boosting}
    one = dci(ds, jitter, 0, n_jobs=1, **kw)
    assert one == dci(ds, jitter, 0, n_jobs=3, **kw) == dci(ds, jitter, 0, **kw)


def test_codes_of_batches_and_checks():
    ds = Toy()
    f = ds.sample_factors(100, np.random.default_rng(0))
    z = codes_of(ds, identity, f, batch_size=7)
    assert z.dtype == np.float64 and z.shape == (100, 4)
    np.testing.assert_array_equal(z, codes_of(ds, identity, f, batch_size=1000))
    np.testing.assert_allclose(z, f / np.array([2, 5, 7, 7]), atol=1e-6)  # one float32 division each, no sum
    with pytest.raises(ValueError, match="shape"):
        codes_of(ds, lambda x: x.flatten(), f)
    with pytest.raises(ValueError, match="non-finite"):
        codes_of(ds, lambda x: x.flatten(1) / 0, f)
    with pytest.raises(ValueError, match="shape"):
        codes_of(ds, identity, f[:, :3])


def test_constant_factors_are_left_out():
    ds = Toy((3, 1, 8))
    r = mig(ds, identity, 0, num_train=300)
    assert r["factor_names"] == ["f0", "f2"] and np.array(r["mutual_information"]).shape == (3, 2)
    assert r["mig"] >= 0.9


def test_all_metrics_rejects_unknown_sizes_and_metrics():
    with pytest.raises(ValueError, match="num_trian"):
        all_metrics(Toy(), identity, 0, {"num_trian": 10})
    with pytest.raises(ValueError, match="unknown metric"):
        all_metrics(Toy(), identity, 0, metrics=["irs"])
    # a size only a left-out metric takes is unused: one sizes dict serves any subset of the suite
    result = all_metrics(Toy(), identity, 0, {"num_eval": 10, "num_train": 300}, metrics=["mig"])
    assert list(result) == ["mig"] and result["mig"]["protocol"]["num_train"] == 300
    with pytest.raises(ValueError, match="seed"):
        mig(Toy(), identity, -1)


def test_score_formulas_on_known_matrices():
    eye, flat = np.eye(4), np.ones((4, 4))
    assert dci_scores(eye)["disentanglement"] == pytest.approx(1.0, abs=1e-6)
    assert dci_scores(eye)["completeness"] == pytest.approx(1.0, abs=1e-6)
    assert dci_scores(flat)["disentanglement"] == pytest.approx(0.0, abs=1e-6)
    assert dci_scores(flat)["completeness"] == pytest.approx(0.0, abs=1e-6)
    # one code holds two factors equally: its disentanglement is 1 - log 2 / log 4 = 0.5
    two = np.array([[0.5, 0.5, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]])
    assert dci_scores(two)["disentanglement_per_code"][0] == pytest.approx(0.5, abs=1e-6)
    assert modularity_of(eye) == 1.0 and modularity_of(flat) == pytest.approx(0.0)
    assert modularity_of(np.zeros((2, 3))) == 0.0
    # 20 equal bins over [0, 1], numbered 1 to 20; 0.5 is the left edge of bin 11, the maximum falls in bin 20
    binned = histogram_discretize(np.array([[0.0, 3.0], [0.5, 3.0], [1.0, 3.0]]), 20)
    assert binned[:, 0].tolist() == [1, 11, 20] and len(set(binned[:, 1])) == 1
