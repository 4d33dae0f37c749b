"""The linear-Gaussian VAE, whose log p(x) is exact (vaelab.models.linear), and the estimators checked against it."""
import json
import math

import pytest
import torch
import torch.distributions as td

from vaelab.cli import main
from vaelab.config import ConfigError, ModelConfig, RunConfig
from vaelab.data import DataFacts, Dataset, Split
from vaelab.eval import ais, ais_log_likelihood, log_likelihood
from vaelab.models import MODELS, build_model
from vaelab.models.linear import (exact_log_px, exact_posterior, linear_gaussian_parts, linear_vae, ppca_fit,
                                  principal_angles)
from vaelab.train import Trainer


def ratio_stats(log_px_hat: torch.Tensor, log_px: torch.Tensor) -> tuple[float, float]:
    """(mean of r = p_hat(x) / p(x) over examples, its standard error): r has mean 1 for an unbiased p_hat."""
    r = (log_px_hat - log_px).exp()
    return r.mean().item(), (r.std() / math.sqrt(len(r))).item()


@pytest.mark.parametrize("isotropic", [True, False])
def test_exact_log_px_is_the_full_covariance_gaussian(isotropic):
    """log N(x; b, W W^T + Psi) by Woodbury against torch.distributions in float64 (PPCA, and factor analysis
    with a sigma per pixel)."""
    g = torch.Generator().manual_seed(0)
    m = build_model(ModelConfig(hidden=[], latent_dim=2, likelihood="gaussian", learn_sigma=True,
                                sigma_mode="isotropic" if isotropic else "per-pixel"), DataFacts((1, 2, 3)))
    with torch.no_grad():
        m.likelihood.log_sigma.copy_(0.3 * torch.randn(m.likelihood.log_sigma.shape, generator=g) - 1)
    W, b, psi = linear_gaussian_parts(m)
    assert W.shape == (6, 2) and W.dtype == torch.float64 and (psi.unique().numel() == 1) == isotropic
    x = torch.randn(50, 1, 2, 3, generator=g)
    exact = td.MultivariateNormal(b, W @ W.T + torch.diag(psi)).log_prob(x.flatten(1).double())
    torch.testing.assert_close(exact_log_px(m, x), exact, rtol=1e-12, atol=1e-12)  # float64 throughout


def test_exact_posterior_makes_the_elbo_equal_log_px():
    """With orthogonal columns in W the true posterior N(G x + c, S) is diagonal and the encoder linear_vae sets
    is exact: every importance weight log p(x, z) - log q(z|x) is log p(x)."""
    W = torch.tensor([[1.2, 0.0], [0.0, 0.7], [0.0, 0.0], [0.0, 0.0]])
    m = linear_vae(W, torch.tensor([0.3, -0.2, 0.1, 0.4]), 0.5)
    G, c, S = exact_posterior(m)
    torch.testing.assert_close(S, torch.diag(1 / (1 + (W**2).sum(0).double() / 0.25)), rtol=1e-6, atol=0)
    x = torch.randn(64, 1, 1, 4, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(m(x, k=3).log_w.double(), exact_log_px(m, x).expand(3, -1), rtol=0, atol=1e-4)


def test_exact_log_px_refuses_other_models():
    for cfg in (ModelConfig(hidden=[8], likelihood="gaussian"),  # a hidden layer
                ModelConfig(hidden=[]),  # Bernoulli
                ModelConfig(hidden=[], likelihood="gaussian", prior="mog",
                            prior_components=3)):
        m = build_model(cfg, DataFacts((1, 2, 2)))
        assert linear_gaussian_parts(m) is None
        with pytest.raises(ConfigError, match="an exact log p\\(x\\) needs a linear-Gaussian VAE"):
            exact_log_px(m, torch.zeros(1, 1, 2, 2))


def test_importance_sampling_converges_to_the_exact_log_px_within_its_standard_error(linear_gaussian):
    model, x, log_px = linear_gaussian
    x, log_px = x[:500], log_px[:500]
    est = log_likelihood(model, x, k=5000)
    err = est["log_px"] - log_px
    assert abs(est["nll"] + log_px.mean().item()) < est["nll_se"]  # within its reported standard error
    assert abs(err.mean()) < 3 * err.std() / math.sqrt(len(err)) + 0.005, err.mean()  # converged: no bias left
    mean, se = ratio_stats(est["log_px"], log_px)
    assert abs(mean - 1) < 3 * se + 1e-3, (mean, se)  # p_hat(x) is unbiased
    elbo = log_likelihood(model, x, k=1)["log_px"]
    assert (log_px - elbo).mean() > 0.5  # the wide proposal leaves a gap at k = 1 (1.4 nats)


def test_ais_converges_to_the_exact_log_px_within_its_standard_error(linear_gaussian):
    model, x, log_px = linear_gaussian
    x, log_px = x[:500], log_px[:500]
    est = ais_log_likelihood(model, x, steps=100, chains=16, leapfrog=5)
    err = est["log_px"] - log_px
    assert abs(est["nll"] + log_px.mean().item()) < est["nll_se"]
    # the log of an unbiased mean of 16 weights sits below log p(x) by about Var/32: allow 0.01 nats of it
    assert abs(err.mean()) < 3 * err.std() / math.sqrt(len(err)) + 0.01, (err.mean(), err.std())
    mean, se = ratio_stats(est["log_px"], log_px)
    assert abs(mean - 1) < 3 * se + 1e-3, (mean, se)
    assert 0.5 < est["acceptance"] < 0.9


def test_ais_is_unbiased_with_step_sizes_fixed_before_the_weighted_pass(linear_gaussian):
    """Bug 7 of issue 12: exp of the AIS estimate is unbiased for p(x) when each step's HMC step size is fixed
    before the weighted chains run. One chain per example, a wide proposal, and a step size that has to shrink
    from 0.3 over 100 steps make the old adaptation on the weighted chains themselves show: there the mean of
    p_hat(x) / p(x) was 0.850 +- 0.019, 8 standard errors below 1; now 1.024 +- 0.020."""
    model, x, log_px = linear_gaussian
    est = ais_log_likelihood(model, x, steps=100, chains=1, leapfrog=3, step_size=0.3, batch_size=500)
    mean, se = ratio_stats(est["log_px"], log_px)
    assert abs(mean - 1) < 3 * se, (mean, se)


def test_ais_weighted_pass_uses_the_step_sizes_of_the_warm_up(linear_gaussian, monkeypatch):
    """Bug 7 of issue 12, the mechanism: the weighted chains' step sizes come from the warm-up's separate chains,
    so they are the same whatever the weighted chains do (here: however many there are)."""
    model, x, _ = linear_gaussian
    calls, hmc = [], ais._hmc

    def recorded(z, beta, eps, *args):  # (chains, step size of each example)
        calls.append((len(z), eps.flatten()))
        return hmc(z, beta, eps, *args)

    monkeypatch.setattr(ais, "_hmc", recorded)
    schedules = {}
    for chains in (1, 8):
        calls.clear()
        ais_log_likelihood(model, x[:20], steps=20, chains=chains, leapfrog=2, step_size=0.3)
        schedules[chains] = torch.stack([eps for n, eps in calls if n == chains])  # [T, B]
    torch.testing.assert_close(schedules[1], schedules[8], rtol=0, atol=0)
    assert len(calls) == 40 and len(schedules[8]) == 20  # 20 warm-up steps on 4 chains, 20 weighted on 8
    assert (schedules[1][-1] != 0.3).all()  # adapted from the 0.3 it started at


@pytest.fixture
def low_rank():
    """2000 training examples of a 3-D subspace of R^16 (scales 3, 2, 1.5) plus noise of sigma 0.3."""
    g = torch.Generator().manual_seed(0)
    W = torch.linalg.qr(torch.randn(16, 3, generator=g)).Q * torch.tensor([3.0, 2.0, 1.5])
    draw = lambda n: Split((torch.randn(n, 3, generator=g) @ W.T + 0.3 * torch.randn(n, 16, generator=g)  # noqa: E731
                            ).view(n, 1, 4, 4), None)
    return Dataset("low-rank", draw(2000), draw(500), draw(500), num_classes=0, binary=False)


def test_trained_linear_vae_spans_the_principal_subspace(low_rank):
    """A linear VAE trained 800 steps recovers probabilistic PCA (Tipping & Bishop 1999; Lucas et al. 2019): its
    decoder's columns span the data's top 3 principal components within 2 degrees (every principal angle; 0.9
    measured), its sigma is PPCA's within 5% (1.5%), and its exact log-likelihood is at most PPCA's maximum and
    within 0.1 nats of it (0.035)."""
    cfg = RunConfig().override(MODELS.get("linear-vae").presets).override(
        {"model": {"name": "linear-vae", "latent_dim": 3}}).set(
        ["train.batch_size=100", "train.steps=800", "train.lr=0.01", "train.progress=false"])
    trainer = Trainer(cfg, data=low_rank)
    trainer.fit()
    W, _, psi = linear_gaussian_parts(trainer.model)
    W_ml, b_ml, sigma2_ml = ppca_fit(low_rank.train.x, 3)
    angles = principal_angles(W, W_ml)
    assert angles.max() < math.radians(2), torch.rad2deg(angles)
    assert psi.sqrt()[0] == pytest.approx(math.sqrt(sigma2_ml), rel=0.05)
    x = low_rank.train.x
    best = td.MultivariateNormal(b_ml, W_ml @ W_ml.T + sigma2_ml * torch.eye(16, dtype=torch.float64))
    best = best.log_prob(x.flatten(1).double()).mean().item()
    trained = exact_log_px(trainer.model, x).mean().item()
    assert best - 0.1 < trained <= best + 1e-9, (trained, best)


def test_linear_vae_from_the_cli_reports_the_exact_nll(tmp_path, capsys):
    run = tmp_path / "linear"
    assert main(["train", "--model", "linear-vae", "--dataset", "digits", "--steps", "40", "--set",
                 "model.latent_dim=4", "--set", "train.progress=false", "--out", str(run)]) == 0
    assert main(["eval", str(run), "--nll-samples", "500", "--ais-steps", "10", "--ais-chains", "4"]) == 0
    out = capsys.readouterr().out
    result = json.loads((run / "eval.json").read_text())
    assert result["binarization"] == "none" and result["bpd"] is None and result["bpd_convention"] is None
    assert "bits per dim" not in out and "NLL, exact (nats)" in out
    assert result["nll"] == pytest.approx(result["nll_exact"], abs=0.05)  # 0.006 apart
    assert result["ais"]["nll"] == pytest.approx(result["nll_exact"], abs=0.2)  # 0.09 apart, 10 steps
    assert result["nelbo"] > result["nll_exact"] - 1e-3  # the ELBO bounds log p(x)
