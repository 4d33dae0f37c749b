"""beta-TC-VAE, FactorVAE and DIP-VAE objectives."""
import math
import re

import pytest
import torch

from vaelab.config import ConfigError, RunConfig
from vaelab.data import DataFacts
from vaelab.models.posterior import DiagonalGaussian
from vaelab.models.prior import StandardNormal
from vaelab.noise import batch_noise
from vaelab.objectives import OBJECTIVES
from vaelab.objectives.disentangle import (dip_lambda_d, dip_penalty, log_importance_weights,
                                           permute_dims, tc_decomposition)
from vaelab.cli import main
from vaelab.train import Trainer, trainer as trainer_module


@pytest.mark.parametrize("estimator", ["mws", "mss"])
def test_tc_decomposition_sums_to_the_total_kl(estimator):
    torch.manual_seed(0)
    q = DiagonalGaussian(torch.randn(64, 5), torch.randn(64, 5) * 0.3 - 1)
    with batch_noise(12345):  # not the seed of the means above
        z, log_qz = q.rsample_and_log_prob()
    log_pz = StandardNormal(5).log_prob(z)
    d = tc_decomposition(z, q.mu, q.logvar, log_pz, dataset_size=10000, estimator=estimator)
    # a telescoping sum of the same float32 terms, and 5-dimensional sums: a few roundings of values ~10 (1e-6)
    torch.testing.assert_close(d["mi"] + d["tc"] + d["dw_kl"], d["kl"])
    torch.testing.assert_close(d["kl"], log_qz - log_pz, rtol=1e-5, atol=1e-4)
    # the single-sample KL averages to the closed form
    assert d["kl"].mean().item() == pytest.approx(q.kl_standard_normal().sum(-1).mean().item(), abs=1.0)


def test_mss_weights_sum_to_one_and_mws_to_one_over_n():
    # summed in float64: what is left is each float32 weight's rounding (3e-7 relative)
    assert torch.logsumexp(log_importance_weights(8, 100, "mss", "cpu").double(), 1).exp().sub(1).abs().max() < 1e-6
    assert torch.logsumexp(log_importance_weights(8, 100, "mws", "cpu").double(), 1).exp().sub(0.01).abs().max() < 1e-8


def test_mss_weights_are_those_of_the_appendix():
    n, m = 100, 5
    w = log_importance_weights(m, n, "mss", "cpu").exp()  # elementwise: float32 rounding (3e-8), no sum
    torch.testing.assert_close(w.diagonal(), torch.full((m,), 1 / n))  # each sample's own posterior: 1/N
    off = w[~torch.eye(m, dtype=torch.bool)].view(m, m - 1)
    strat = (n - m + 1) / (n * (m - 1))  # Chen et al. 2018, appendix C.2: one other per row, the rest 1/(M - 1)
    assert ((off - strat).abs() < 1e-7).sum(1).tolist() == [1] * m
    assert ((off - 1 / (m - 1)).abs() < 1e-7).sum(1).tolist() == [m - 2] * m


def test_total_correlation_is_larger_for_dependent_codes():
    torch.manual_seed(1)
    n, d = 256, 3
    small = torch.full((n, d), math.log(0.01))
    indep = torch.randn(n, d)
    dep = torch.randn(n, 1).expand(n, d).clone()  # all dimensions equal: strongly dependent
    tc = [tc_decomposition(m + 0.1 * torch.randn(n, d), m, small, StandardNormal(d).log_prob(m), n, "mss")["tc"].mean()
          for m in (indep, dep)]
    assert tc[1] > tc[0] + 1.5, tc  # the minibatch estimate is biased, but it orders these two clearly


def test_permuted_dimensions_keep_marginals_and_break_dependence():
    z = torch.randn(500, 1).expand(500, 4).clone()
    p = permute_dims(z, torch.Generator().manual_seed(0))
    assert torch.equal(p.sort(0).values, z.sort(0).values)  # each column is a permutation of itself
    assert torch.corrcoef(p.t())[0, 1].abs() < 0.2 and torch.corrcoef(z.t())[0, 1] > 0.99


def test_dip_penalty_vanishes_at_identity_covariance():
    torch.manual_seed(2)
    mu = torch.randn(20000, 3)
    assert dip_penalty(mu, torch.full((20000, 3), -30.0), "dip-i", 10, 100) < 0.5
    assert dip_penalty(mu * 2, torch.full((20000, 3), -30.0), "dip-i", 10, 100) > 100
    # Cov = E[diag s^2] = I, exactly in float32: a covariance of zeros plus a mean of ones
    assert dip_penalty(mu * 0, torch.zeros(20000, 3), "dip-ii", 10, 100) < 1e-6


def test_dip_lambda_d_defaults_by_variant():
    assert dip_lambda_d("dip-i", 10.0) == 100.0 and dip_lambda_d("dip-ii", 10.0) == 10.0  # Kumar et al. 2018
    assert dip_lambda_d("dip-ii", 10.0, 3.0) == 3.0
    with pytest.raises(ConfigError, match="unknown DIP-VAE variant 'dip-iii'"):
        dip_lambda_d("dip-iii", 10.0)
    cfg = RunConfig().set(["objective.name=dip-ii", "objective.dip.lambda_od=2"])  # lambda_d: the default, None
    facts = DataFacts((1, 8, 8))
    assert OBJECTIVES.get("dip-ii")(cfg, facts, 10).lambda_d == 2.0
    cfg = cfg.set(["objective.name=dip-i", "objective.dip.lambda_od=2"])
    assert OBJECTIVES.get("dip-i")(cfg, facts, 10).lambda_d == 20.0


@pytest.mark.parametrize("objective", ["beta-tc", "factor", "dip-i", "dip-ii"])
def test_each_disentangling_objective_trains(tiny_cfg, objective):
    small = ["objective.factor.disc_hidden=32"] if objective == "factor" else []
    cfg = tiny_cfg.set([f"objective.name={objective}", *small, "train.epochs=3"])
    trainer = Trainer(cfg)
    record = trainer.fit()
    assert math.isfinite(record["train/loss"]) and record["val/nelbo"] < 45


def test_factorvae_discriminator_is_saved_and_resumed(tiny_cfg, tmp_path):
    cfg = tiny_cfg.set(["objective.name=factor", "objective.factor.disc_hidden=16", "train.steps=30",
                        "train.checkpoint_every=10"])
    ref = Trainer(cfg, tmp_path / "ref")
    ref.fit()
    cut = Trainer(cfg.set(["train.steps=20"]), tmp_path / "cut")
    cut.fit()
    resumed = Trainer(cfg, tmp_path / "cut")
    resumed.load_state(tmp_path / "cut" / "checkpoints" / "last.safetensors")
    resumed.fit()
    for a, b in zip(ref.objective.disc.parameters(), resumed.objective.disc.parameters()):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    for a, b in zip(ref.model.parameters(), resumed.model.parameters()):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


@pytest.mark.parametrize("objective", ["beta-tc", "factor", "dip-i", "dip-ii"])
@pytest.mark.parametrize("sets, got", [(["model.layers=[8,4]"], "model.layers [8, 4]"),
                                       (["model.posterior=iaf"], "model.posterior iaf"),
                                       (["objective.k=2"], "objective.k 2")])
def test_disentangling_objectives_refuse_hierarchical_models_flows_and_k(tiny_cfg, monkeypatch, objective, sets, got):
    """Their penalties read one diagonal Gaussian q(z|x) of the whole code at one z: refused before any data loads."""
    monkeypatch.setattr(trainer_module, "load_run_data", lambda cfg: pytest.fail("data loaded before the check"))
    with pytest.raises(ConfigError, match=rf"^objective '{objective}' trains one-layer VAEs .*; got {re.escape(got)}$"):
        Trainer(tiny_cfg.set([f"objective.name={objective}", *sets]))


def test_cli_refuses_a_hierarchical_beta_tcvae_in_one_line(tmp_path, capsys):
    args = ["train", "--model", "beta-tcvae", "--dataset", "digits", "--set", "model.layers=[8,4]", "--steps", "1",
            "--out", str(tmp_path / "run")]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("vaelab: error: objective 'beta-tc' trains one-layer VAEs") and err.count("\n") == 1, err
    assert not (tmp_path / "run").exists()
