"""Anomaly scores and detection metrics: against brute force and scikit-learn, on a one-class model that must
separate, through the score and anomaly commands."""
import csv
import json
import math

import numpy as np
import pytest
import torch
from sklearn.metrics import average_precision_score, roc_auc_score

from vaelab.cli import main
from vaelab.config import RunConfig
from vaelab.data.perturb import perturb
from vaelab.studies.anomaly import anomaly_study, detection, likelihood_regret, png_bits
from vaelab.train import load_run_data


def test_detection_metrics_against_brute_force():
    """ROC-AUC is the chance that an anomaly outscores a normal example (ties count half: Mann-Whitney); FPR at
    95% TPR the share of normal scores at or above the highest threshold that flags 95% of the anomalies."""
    g = np.random.default_rng(0)
    normal, anomalous = g.normal(0, 1, 300).round(1), g.normal(1, 1, 200).round(1)  # with ties
    m = detection(normal, anomalous)
    pairs = (anomalous[:, None] > normal[None]).mean() + 0.5 * (anomalous[:, None] == normal[None]).mean()
    assert m["roc_auc"] == pytest.approx(pairs, abs=1e-12)
    threshold = max(t for t in np.unique(anomalous) if (anomalous >= t).mean() >= 0.95)
    assert m["fpr95"] == pytest.approx((normal >= threshold).mean(), abs=1e-12)
    y = np.r_[np.zeros(300), np.ones(200)]
    assert m["pr_auc"] == pytest.approx(average_precision_score(y, np.r_[normal, anomalous]), abs=1e-12)


def test_png_bits_grow_with_complexity():
    flat = torch.zeros(2, 1, 28, 28)
    noisy = torch.rand(2, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    assert (png_bits(noisy, binary=False) > 4 * png_bits(flat, binary=False)).all()
    assert (png_bits((noisy > 0.5).float(), binary=True) < png_bits(noisy, binary=False)).all()


def test_perturb_replaces_the_given_share_of_pixels():
    x = torch.full((50, 1, 28, 28), 2.0)  # outside [0, 1]: every replaced pixel shows
    assert (perturb(x, 0.2, binary=False) != 2).double().mean().item() == pytest.approx(0.2, abs=0.01)
    assert set(perturb(x, 0.5, binary=True).unique().tolist()) == {0.0, 1.0, 2.0}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A VAE trained on the 8x8 digits' zeros only, and a background model trained on perturbed inputs."""
    root = tmp_path_factory.mktemp("anomaly")
    small = ["--dataset", "digits", "--set", "model.hidden=[64]", "--set", "model.latent_dim=4", "--set",
             "data.val_size=200", "--set", "train.batch_size=32", "--set", "train.progress=false"]
    assert main(["train", "--model", "vae", "--steps", "300", *small, "--set", "data.classes=[0]",
                 "--out", str(root / "zeros")]) == 0
    assert main(["train", "--model", "vae", "--steps", "100", *small, "--set", "data.classes=[0]",
                 "--set", "data.perturb=0.3", "--out", str(root / "background")]) == 0
    return root


def test_one_class_training_keeps_its_class():
    cfg = RunConfig().set(["data.name=digits", "data.val_size=200", "data.classes=[0, 3]"])
    data = load_run_data(cfg)
    for split in (data.train, data.val, data.test):
        assert set(split.y.unique().tolist()) == {0, 3}


def test_a_one_class_model_separates_another_class(runs):
    """Trained on zeros, every score ranks the ones as more anomalous than held-out zeros (ROC-AUC > 0.9)."""
    study = anomaly_study(runs / "zeros", holdout=[1], k=20, background=runs / "background")
    assert set(study.metrics) == {"recon_error", "nelbo", "nll", "serra", "llr"}
    for key in ("recon_error", "nelbo", "nll"):
        assert study.metrics[key]["roc_auc"] > 0.9, (key, study.metrics)
    most, least = study.extremes("nll", 5)
    assert most.shape == least.shape == (5, 1, 8, 8)
    assert set(study.figures()) == {"histograms", "roc"}


def test_likelihood_regret_is_what_fitting_the_posterior_gains(runs):
    """Likelihood Regret is the ELBO gained by fitting each example's posterior (the same draws before and after),
    so it is about 0 or more (the encoder is near its optimum on held-out zeros: a mean of -0.03 nats measured, the
    noise of the fit); trained on zeros, the ones gain more (0.75 nats measured)."""
    from vaelab.api import load_run
    from vaelab.studies.anomaly import run_split

    cfg, model = load_run(runs / "zeros")
    zeros, ones = run_split(cfg, None, "test", [0]), run_split(cfg, None, "test", [1])
    r0, r1 = (likelihood_regret(model, s.x, steps=30, k=5) for s in (zeros, ones))
    assert (r0 > -1).all() and (r1 > -1).all()  # fitting never loses more than the noise of a 5-sample ELBO
    assert abs(r0.mean()) < 0.2 and r1.mean() > r0.mean() + 0.4
    study = anomaly_study(runs / "zeros", holdout=[1], k=5, regret_steps=30)
    assert study.metrics["regret"]["roc_auc"] > 0.7


def test_anomaly_command_auroc_equals_scikit_learn_on_the_score_files(runs, tmp_path, capsys):
    """The ROC-AUC that `vaelab anomaly` reports is scikit-learn's on the scores `vaelab score` writes for the
    same examples (zeros normal, all other digits anomalous: the default for a run trained on one class)."""
    out = tmp_path / "an"
    assert main(["anomaly", str(runs / "zeros"), "--k", "10", "-o", str(out)]) == 0
    found = json.loads((out / "anomaly.json").read_text())
    assert "classes [1, 2, 3, 4, 5, 6, 7, 8, 9]" in found["anomalous"]
    for name in ("histograms.png", "roc.png", "extremes.png"):
        assert (out / name).stat().st_size > 0
    assert "ROC-AUC" in capsys.readouterr().out
    csv_path = tmp_path / "scores.csv"
    assert main(["score", str(runs / "zeros"), "--k", "10", "-o", str(csv_path)]) == 0
    rows = list(csv.DictReader(csv_path.open()))
    full = load_run_data(RunConfig().set(["data.name=digits", "data.val_size=200"]))
    assert len(rows) == len(full.test)  # the score command scores the whole split, every class
    y = np.array([int(r["label"]) for r in rows]) != 0
    s = np.array([float(r["recon_error"]) for r in rows])  # deterministic: the same in both commands
    assert found["metrics"]["recon_error"]["roc_auc"] == pytest.approx(roc_auc_score(y, s), abs=1e-4)
    s = np.array([float(r["nll"]) for r in rows])  # other draws of z in another batch: close, not equal
    assert found["metrics"]["nll"]["roc_auc"] == pytest.approx(roc_auc_score(y, s), abs=0.03)
    nll, bits, serra = (np.array([float(r[k]) for r in rows]) for k in ("nll", "png_bits", "serra"))
    np.testing.assert_allclose(serra, nll / math.log(2) - bits, rtol=1e-4, atol=1e-2)


def test_anomaly_refuses_unnamed_anomalies(tmp_path, capsys):
    run = tmp_path / "all"
    assert main(["train", "--model", "vae", "--dataset", "digits", "--steps", "5", "--set", "model.hidden=[16]",
                 "--set", "train.progress=false", "--out", str(run)]) == 0
    assert main(["anomaly", str(run)]) == 2
    assert "--holdout-class" in capsys.readouterr().err
    assert main(["score", str(run), "--dataset", "mnist"]) == 2  # 28x28 images for an 8x8 model


def test_bad_data_options_get_one_line_errors(tmp_path, capsys):
    from vaelab.config import ConfigError
    from vaelab.data import DataError

    with pytest.raises(ConfigError, match="data.perturb"):
        RunConfig().set(["data.perturb=1.5"]).check()
    with pytest.raises(ConfigError, match="data.classes"):
        RunConfig().set(["data.classes=[]"]).check()
    with pytest.raises(DataError, match="not labels"):
        load_run_data(RunConfig().set(["data.name=digits", "data.classes=[12]"]))
    assert main(["train", "--model", "vae", "--dataset", "digits", "--steps", "1", "--set", "data.classes=[12]",
                 "--out", str(tmp_path / "r")]) == 2
    assert "not labels of 'digits'" in capsys.readouterr().err


def test_scores_read_a_split_a_batch_at_a_time_with_the_values_of_its_float_view(runs, monkeypatch):
    """An 8-bit split is scored batch by batch (a CelebA-sized split is never converted to float whole), with the
    values the whole float view gives, bit for bit (the same batches, the same noise)."""
    from vaelab.api import load_run
    from vaelab.data import Split
    from vaelab.studies import anomaly

    _, model = load_run(runs / "zeros")
    model.eval_batch_size = 16  # several batches of the 40 examples (eval_batch_size takes the smallest declared)
    monkeypatch.setattr(anomaly, "PNG_BATCH", 16)
    pixels = torch.randint(0, 256, (40, 1, 8, 8), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    x = pixels / 255
    expected = {"recon_error": anomaly.recon_error(model, x, x), **anomaly.likelihood_scores(model, x, 5),
                "png_bits": png_bits(x, binary=False)}
    monkeypatch.setattr(Split, "x", property(lambda s: pytest.fail("the whole split was converted")))
    got = anomaly.scores(model, Split(pixels, None), k=5)
    for key, value in expected.items():
        np.testing.assert_array_equal(got[key], value, err_msg=key)
