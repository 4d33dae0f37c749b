"""Latent arithmetic (attribute vectors) and the representation measures (k-means NMI/ARI, linear probe)."""
import json
import math

import numpy as np
import pytest
import torch
from scipy.stats import norm

from vaelab.cli import main
from vaelab.eval.representation import cluster_scores, probe_accuracy
from vaelab.studies.arithmetic import attribute_vectors, factor_attributes

TINY = ["--dataset", "digits", "--set", "model.hidden=[64]", "--set", "model.latent_dim=4",
        "--set", "train.batch_size=32", "--set", "train.progress=false"]


def cosine(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(a.double() @ b.double() / (a.double().norm() * b.double().norm()))


def test_cluster_scores_equal_the_contingency_formulas():
    # three tight groups of two -> clusters a a b b c c; labels 0 0 | 0 1 | 1 2
    z = np.repeat([[0.0], [10.0], [20.0]], 2, axis=0) + np.array([[0.0], [0.1]] * 3)
    y = np.array([0, 0, 0, 1, 1, 2])
    got = cluster_scores(z, y, k=3)
    # ARI (Hubert & Arabie 1985): sum C(n_ij, 2) = 1, rows 3, columns 3 + 1 = 4, C(6, 2) = 15
    expected_index = 3 * 4 / 15
    assert got["ari"] == pytest.approx((1 - expected_index) / ((3 + 4) / 2 - expected_index), rel=1e-9)
    mi = math.log(2) / 3 + math.log(1.5) / 3 + math.log(3) / 6
    h_clusters = math.log(3)
    h_labels = math.log(2) / 2 + math.log(3) / 3 + math.log(6) / 6
    assert got["nmi"] == pytest.approx(mi / ((h_clusters + h_labels) / 2), rel=1e-9)
    perfect = cluster_scores(z, np.repeat([2, 0, 1], 2), k=3)  # label names do not matter
    assert perfect == {"nmi": pytest.approx(1.0), "ari": pytest.approx(1.0)}


def test_linear_probe_reaches_the_bayes_accuracy():
    # z = y + N(0, 0.5^2) in one dimension, balanced classes: the best classifier thresholds at 1/2, accuracy
    # Phi(0.5 / 0.5); a second dimension of pure noise must not hurt a linear probe
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 40_000)
    z = np.stack([y + 0.5 * rng.standard_normal(len(y)), rng.standard_normal(len(y))], 1)
    accuracy = probe_accuracy(z[:20_000], y[:20_000], z[20_000:], y[20_000:])
    assert accuracy == pytest.approx(norm.cdf(1.0), abs=0.01)  # 3.9 standard errors of 20000 test examples
    noise = rng.standard_normal((4000, 3))
    assert probe_accuracy(noise[:2000], y[:2000], noise[2000:], y[2000:4000]) == pytest.approx(0.5, abs=0.05)


def test_attribute_vector_is_the_difference_of_the_means():
    z = torch.tensor([[1.0, 0.0], [3.0, 2.0], [0.0, 4.0], [0.0, 0.0]])
    has = {"a": torch.tensor([True, True, False, False]), "all": torch.ones(4, dtype=torch.bool)}
    vectors = attribute_vectors(z, has)
    assert list(vectors) == ["a"]  # an attribute every example has gives no vector
    assert torch.equal(vectors["a"], torch.tensor([2.0, -1.0]))


def test_attribute_vector_points_along_the_known_factor(tmp_path):
    # a synthetic factor grid: a bright 2-pixel bar at one of 4 columns, in one of 3 brightnesses; a code that reads
    # the bar's column (centre of mass) and its brightness (total intensity): each factor's vector lies along its axis
    cols, levels = 4, 3
    images = np.zeros((cols, levels, 8, 8), dtype=np.uint8)
    for c in range(cols):
        for b in range(levels):
            images[c, b, 3:5, 2 * c:2 * c + 2] = 85 * (b + 1)
    path = tmp_path / "bars.npz"
    np.savez(path, images=images.reshape(-1, 8, 8), factor_sizes=np.array([cols, levels]),
             factor_names=np.array(["column", "brightness"]))
    data = factor_attributes("npz", path, 2000, seed=0)
    assert set(data.has) == {"column", "brightness"}
    x = data.x[:, 0].double()  # [N, 8, 8]
    mass = x.sum((1, 2))
    z = torch.stack([(x.sum(1) * torch.arange(8.0)).sum(1) / mass, mass], 1)  # [N, 2]
    vectors = attribute_vectors(z, data.has)
    assert cosine(vectors["column"], torch.tensor([1.0, 0.0])) > 0.99
    assert cosine(vectors["brightness"], torch.tensor([0.0, 1.0])) > 0.99
    # column >= 2 (upper half) against < 2: centres 5 and 7 against 1 and 3, a shift of 4 pixels (columns drawn
    # uniformly: each half's mean centre within 0.05 pixel, about 2 standard errors)
    assert vectors["column"][0].item() == pytest.approx(4.0, abs=0.1)


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("arith") / "vae"
    assert main(["train", "--model", "vae", *TINY, "--epochs", "8", "--out", str(run)]) == 0
    return run


def test_eval_json_holds_clustering_and_probe(digits_run):
    assert main(["eval", str(digits_run)]) == 0
    result = json.loads((digits_run / "eval.json").read_text())
    for key in ("nmi", "ari", "probe_accuracy"):
        assert key in result["metrics"]
    assert 0.4 < result["probe_accuracy"] <= 1  # chance is 0.1 over ten digits (0.55 measured after 8 epochs)
    assert 0.1 < result["nmi"] <= 1 and 0 < result["ari"] <= 1


def test_cli_arithmetic_draws_moved_images_and_analogies(digits_run, tmp_path, capsys):
    from PIL import Image

    assert main(["arithmetic", str(digits_run)]) == 0
    listed = capsys.readouterr().out
    assert all(f"\n  {c} " in listed for c in "0123456789")
    out = tmp_path / "add.png"
    assert main(["arithmetic", str(digits_run), "--add", "3", "--strength", "0..2", "--steps", "5", "--n", "4",
                 "-o", str(out)]) == 0
    with Image.open(out) as im:  # 4 rows of 1 + 5 images of 8x8, scale 2, pad 2
        assert im.size == (2 * (6 * 10 + 2), 2 * (4 * 10 + 2))
    assert main(["arithmetic", str(digits_run), "--analogy", "7", "img:0", "1", "-o", str(tmp_path / "a.png")]) == 0
    assert (tmp_path / "a.png").exists()
    assert main(["arithmetic", str(digits_run), "--add", "smiling"]) == 2
    assert "unknown attribute 'smiling'" in capsys.readouterr().err
    assert main(["arithmetic", str(digits_run), "--analogy", "7", "img:99999", "1"]) == 2


def test_arithmetic_refuses_a_conditional_model(tmp_path, capsys):
    run = tmp_path / "cvae"
    assert main(["train", "--model", "cvae", *TINY, "--steps", "2", "--out", str(run)]) == 0
    assert main(["arithmetic", str(run)]) == 2
    assert "conditional model" in capsys.readouterr().err


def test_run_attributes_reads_celeba_style_attribute_columns(monkeypatch):
    # a dataset whose splits carry binary attributes (CelebA's list_attr_celeba.txt): one attribute per column,
    # preferred over its labels
    from vaelab.config import RunConfig
    from vaelab.data import Dataset, Split
    from vaelab.studies import arithmetic

    x = torch.rand(6, 3, 4, 4)
    attributes = torch.tensor([[1, 0], [0, 0], [1, 1], [0, 1], [1, 0], [0, 0]])
    split = Split(x, torch.zeros(6, dtype=torch.long), attributes=attributes)
    data = Dataset("celeba", split, split, split, num_classes=2, binary=False, attribute_names=("Smiling", "Male"))
    monkeypatch.setattr(arithmetic, "load_run_data", lambda cfg, evaluation: data)
    got = arithmetic.run_attributes(RunConfig().set(["data.name=celeba"]), n=5)
    assert list(got.has) == ["Smiling", "Male"] and torch.equal(got.x, x[:5])
    assert got.has["Smiling"].tolist() == [True, False, True, False, True]
    assert got.has["Male"].tolist() == [False, False, True, True, False]
