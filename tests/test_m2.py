"""M2 (Kingma et al. 2014): its loss on labelled and unlabelled examples, the semi-supervised split, and a run that
learns to classify from a few labels."""
import json
import math

import pytest
import torch
import torch.nn.functional as F

from vaelab.cli import main
from vaelab.config import ConfigError, RunConfig
from vaelab.data import DataError, DataFacts, Split
from vaelab.data.semi import LABELLED_SHARE, semi_supervised
from vaelab.models import DiagonalGaussian, build_model
from vaelab.objectives import OBJECTIVES, check_run

K = 10
TINY = ["--dataset", "digits", "--set", "model.hidden=[64]", "--set", "model.latent_dim=4",
        "--set", "train.batch_size=32", "--set", "train.progress=false"]


@pytest.fixture
def m2(monkeypatch):
    """An M2 on 8x8 digits in float64, its posterior draws z at the mean (eps = 0), so that passes under different
    batch layouts draw the same z; (config, model, objective, x [6, 1, 8, 8])."""
    monkeypatch.setattr(DiagonalGaussian, "_eps", lambda self, k: torch.zeros_like(self.mu))
    cfg = RunConfig().override({"model": {"name": "m2", "conditional": True, "classifier": True, "hidden": [16],
                                          "latent_dim": 3}, "objective": {"name": "m2", "m2": {"alpha": 2.5}}})
    torch.manual_seed(0)
    model = build_model(cfg, DataFacts((1, 8, 8), K, 100)).double()
    objective = OBJECTIVES.get("m2")(cfg, DataFacts((1, 8, 8), K, 100), 10)
    x = torch.rand(6, 1, 8, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(1)).round()
    return cfg, model, objective, x


def cvae_nelbo(model, x, y):
    """The CVAE's negative ELBO per example, from its own labelled pass: -log p(x|y,z) + KL, [B] float64."""
    t = model(x, y)
    return -t.log_px_z + t.kl


def test_labelled_loss_is_the_cvae_bound_plus_alpha_times_the_classification_loss(m2):
    cfg, model, objective, x = m2
    y = torch.tensor([3, 1, 4, 1, 5, 9])
    loss, logs = objective(model, x, y, 0)
    ce = F.cross_entropy(model.classify(x), y, reduction="none")
    # -L(x, y) = CVAE negative ELBO - log p(y), p(y) = 1/K
    expected = (cvae_nelbo(model, x, y) + math.log(K) + 2.5 * ce).mean()
    assert loss.item() == pytest.approx(expected.item(), rel=1e-12)  # float64
    assert logs["nelbo"].item() == pytest.approx((cvae_nelbo(model, x, y) + math.log(K)).mean().item(), rel=1e-12)


def test_unlabelled_loss_is_the_enumeration_over_classes(m2):
    cfg, model, objective, x = m2
    loss, _ = objective(model, x, torch.full((6,), -1), 0)
    q = F.softmax(model.classify(x), -1)  # [B, K]
    bounds = torch.stack([cvae_nelbo(model, x, torch.full((6,), c)) + math.log(K) for c in range(K)], 1)  # [B, K]
    expected = (q * bounds).sum(1) + (q * q.log()).sum(1)  # E_q[-L(x, y)] - H(q(y|x)) (Kingma et al. eq. 7)
    assert loss.item() == pytest.approx(expected.mean().item(), rel=1e-12)
    # a mixed batch: each row by its own formula, summed, per example
    y = torch.tensor([3, -1, -1, 1, -1, 9])
    mixed, _ = objective(model, x, y, 0)
    has = y >= 0
    ce = F.cross_entropy(model.classify(x[has]), y[has], reduction="none")
    labelled = cvae_nelbo(model, x[has], y[has]) + math.log(K) + 2.5 * ce
    assert mixed.item() == pytest.approx((labelled.sum() + expected[~has].sum()).item() / 6, rel=1e-12)


def test_semi_supervised_split_keeps_balanced_seeded_labels():
    y = torch.arange(1000) % K
    split = Split(torch.arange(1000.0).view(1000, 1, 1, 1), y)
    semi = semi_supervised(split, 50, K, seed=3)
    first = semi.y[:1000]
    kept = first >= 0
    assert int(kept.sum()) == 50 and torch.equal(first[kept], y[kept])
    assert torch.bincount(first[kept], minlength=K).tolist() == [5] * K
    assert bool((first[~kept] == -1).all())
    # the labelled rows repeated after the others, about a tenth of the split, the same rows each time
    extra = semi.x[1000:].flatten().long()
    assert set(extra.tolist()) == set(kept.nonzero().flatten().tolist())
    assert torch.equal(semi.y[1000:], y[extra])
    copies = len(extra) // 50 + 1
    share = lambda c: 50 * c / (950 + 50 * c)  # noqa: E731 - the labelled share with c copies
    assert share(copies - 1) < LABELLED_SHARE <= share(copies) == (semi.y >= 0).double().mean().item()
    assert torch.equal(semi_supervised(split, 50, K, seed=3).y, semi.y)
    assert not torch.equal(semi_supervised(split, 50, K, seed=4).y, semi.y)
    with pytest.raises(DataError, match="multiple of 10"):
        semi_supervised(split, 55, K, seed=0)


def test_labels_need_a_semi_supervised_objective():
    with pytest.raises(ConfigError, match="semi-supervised objectives: m2"):
        check_run(RunConfig().set(["data.labels=100"]))
    with pytest.raises(ConfigError, match="--model m2"):
        check_run(RunConfig().set(["objective.name=m2"]))


def test_m2_learns_to_classify_from_50_labels(tmp_path, capsys):
    run = tmp_path / "m2"
    assert main(["train", "--model", "m2", *TINY, "--labels", "50", "--epochs", "3", "--out", str(run)]) == 0
    assert main(["eval", str(run)]) == 0
    assert "classification error" in capsys.readouterr().out
    result = json.loads((run / "eval.json").read_text())
    assert "class_error" in result["metrics"] and "nmi" not in result  # a conditional model: no clustering of z
    assert result["class_error"] < 0.6  # chance: 0.9 (0.42 measured after 3 epochs)
    assert main(["eval", str(run), "--split", "train"]) == 0  # evaluation sees every label (no y = -1)
    assert json.loads((run / "eval.json").read_text())["n"] == 1300  # the split, no labelled rows repeated
