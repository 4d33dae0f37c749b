"""Log-likelihood estimators against an exact answer, and the ordering of the bounds."""
import math

import pytest
import torch
import torch.distributions as td

from vaelab.config import ConfigError, ModelConfig, RunConfig
from vaelab.data import DataFacts
from vaelab.eval import ais_log_likelihood, log_likelihood
from vaelab.eval.likelihood import pass_sizes
from vaelab.models import build_model
from vaelab.noise import batch_noise
from vaelab.objectives import iwae_bound
from vaelab.train import Trainer

SIGMA = 0.5


def linear_gaussian_vae(perturb: bool):
    """p(z) = N(0, I), p(x|z) = N(Wz + b, s^2 I) with orthogonal columns in W, so the true posterior is a
    diagonal Gaussian, which the encoder is set to (or set near, with ``perturb``). log p(x) is exact:
    x ~ N(b, W W^T + s^2 I)."""
    m = build_model(ModelConfig(hidden=[], latent_dim=2, likelihood="gaussian", sigma=SIGMA), DataFacts((1, 2, 2)))
    W = torch.tensor([[1.2, 0.0], [0.0, 0.7], [0.0, 0.0], [0.0, 0.0]])
    b = torch.tensor([0.3, -0.2, 0.1, 0.4])
    cov_post = torch.linalg.inv(torch.eye(2) + W.T @ W / SIGMA**2)  # diagonal
    A = cov_post @ W.T / SIGMA**2  # mean = A (x - b)
    with torch.no_grad():
        m.decoder.net[-1].weight.copy_(W)
        m.decoder.net[-1].bias.copy_(b)
        m.q.head.weight.zero_()
        m.q.head.weight[:2].copy_(A)
        m.q.head.bias[:2].copy_(-A @ b + (0.2 if perturb else 0.0))
        m.q.head.bias[2:].copy_(torch.log(torch.diagonal(cov_post)) + (0.3 if perturb else 0.0))
    exact = td.MultivariateNormal(b, W @ W.T + SIGMA**2 * torch.eye(4))
    g = torch.Generator().manual_seed(0)
    x = b + torch.randn(64, 2, generator=g) @ W.T + SIGMA * torch.randn(64, 4, generator=g)
    return m, x.view(64, 1, 2, 2), exact.log_prob(x).double()


def test_exact_posterior_makes_every_importance_weight_exact():
    m, x, log_px = linear_gaussian_vae(perturb=False)
    with batch_noise(0):
        log_w = m(x, k=3).log_w
    # 4 pixels, 2 latents: float32 rounding (1e-6 of values ~5), no sum long enough for its order to move 1e-4
    torch.testing.assert_close(log_w.double(), log_px.expand(3, -1), rtol=0, atol=1e-4)


def test_importance_sampling_converges_to_the_exact_log_likelihood():
    m, x, log_px = linear_gaussian_vae(perturb=True)
    est = log_likelihood(m, x, k=5000, batch_size=16)
    err = est["log_px"] - log_px
    assert abs(err.mean()) < 0.005 and err.abs().max() < 0.05, (err.mean(), err.abs().max())
    assert est["nll"] == pytest.approx(-log_px.mean().item(), abs=0.005)
    assert est["bpd"] is None  # a Gaussian density: no bits per dimension (tests/test_bpd.py)
    elbo = log_likelihood(m, x, k=1)["log_px"]
    assert (log_px - elbo).mean() > 0.05  # the perturbed posterior leaves a gap at k = 1


def test_passes_stay_within_the_element_budget_and_fill_it():
    assert pass_sizes(5000, 784) == (10, 409) and pass_sizes(50, 784) == (81, 50)
    assert pass_sizes(5000, 784, batch_size=10000) == (4096, 1)  # capped, not 10000 rows of one sample each
    assert pass_sizes(5000, 3 * 64 * 64) == (10, 26)  # 64x64 colour images: 260 rows of 12288 elements
    m, x, log_px = linear_gaussian_vae(perturb=False)  # every weight is exact, whatever the passes
    rows = []
    hook = m.register_forward_hook(lambda mod, args, out: rows.append(out.log_w.numel()))
    est = log_likelihood(m, x, k=30, batch_size=64, max_elements=4 * 40)  # 4 elements per example: 40 rows
    hook.remove()
    assert 20 < min(rows[:-1]) and max(rows) <= 40 and sum(rows) == 30 * 64, rows
    torch.testing.assert_close(est["log_px"], log_px, rtol=0, atol=1e-4)  # as above: 4 pixels, 2 latents


def test_ais_agrees_with_the_exact_log_likelihood():
    m, x, log_px = linear_gaussian_vae(perturb=True)
    est = ais_log_likelihood(m, x[:32], steps=100, chains=32, leapfrog=5)
    err = est["log_px"] - log_px[:32]
    assert abs(err.mean()) < 0.015 and err.abs().mean() < 0.04, (err.mean(), err.abs().mean())
    assert 0.3 < est["acceptance"] < 1


@pytest.fixture(scope="module")
def trained(request):
    from vaelab.config import RunConfig

    cfg = RunConfig().set(["data.name=digits", "data.val_size=200", "model.hidden=[64]", "model.latent_dim=4",
                           "train.batch_size=64", "train.epochs=5", "train.progress=false"])
    trainer = Trainer(cfg)
    trainer.fit()
    return trainer.model, trainer.data.test.take(torch.arange(128))


def test_elbo_below_iwae_k_below_iwae_K_on_a_trained_model(trained):
    model, test = trained
    with torch.no_grad(), batch_noise(1):
        elbo = model(test.x, None, 500).log_w.mean(0).double()  # E_q[log w], [B]
    with torch.no_grad(), batch_noise(2):
        iwae5 = iwae_bound(model(test.x, None, 500).log_w.view(100, 5, -1).transpose(0, 1)).mean(0).double()
    iwae_K = log_likelihood(model, test, k=2000, seed=3)["log_px"]
    for low, high in ((elbo, iwae5), (iwae5, iwae_K)):
        d = high - low
        assert d.mean() > 3 * d.std() / math.sqrt(len(d)), (d.mean(), d.std())


def test_ais_and_importance_sampling_agree_on_a_trained_model(trained):
    model, test = trained
    x = test.take(torch.arange(48))
    is_est = log_likelihood(model, x, k=2000)
    ais_est = ais_log_likelihood(model, x, steps=100, chains=16, leapfrog=5)
    assert abs(is_est["nll"] - ais_est["nll"]) < 0.15, (is_est["nll"], ais_est["nll"])


def test_iwae_objective_trains_and_refuses_kl_schedules(tiny_cfg):
    cfg = tiny_cfg.set(["objective.name=iwae", "objective.k=5", "train.epochs=4"])
    trainer = Trainer(cfg)
    record = trainer.fit()
    assert record["train/loss"] < record["train/nelbo"]  # -L_5 below the single-sample -ELBO
    first = trainer.run  # no run directory: nothing written
    assert first is None
    with pytest.raises(ConfigError, match="iwae objective has no KL term"):
        Trainer(cfg.set(["kl.beta=2"]))


def test_elbo_objective_averages_over_k_samples(tiny_cfg):
    from vaelab.objectives import ELBOObjective

    trainer = Trainer(tiny_cfg.set(["objective.k=50"]))
    x = trainer.data.train.x[:32]
    obj1 = ELBOObjective(tiny_cfg, trainer.facts, 10)
    obj50 = trainer.objective
    with torch.no_grad():
        single = torch.stack([obj1(trainer.model, x, None, 0)[0] for _ in range(50)])
        many = torch.stack([obj50(trainer.model, x, None, 0)[0] for _ in range(10)])
    assert abs(many.mean() - single.mean()) < 3 * single.std() / math.sqrt(50) + 0.5  # same expectation
    assert many.std() < single.std() / 3  # about sqrt(50) times less noise


def test_models_with_wide_activations_evaluate_in_smaller_passes():
    from vaelab.eval import eval_batch_size
    from vaelab.models import MODELS

    def model(name, *sets):
        cfg = RunConfig().override(MODELS.get(name).presets).set([f"model.name={name}", *sets])
        return build_model(cfg, DataFacts((1, 28, 28)))

    assert eval_batch_size(model("vae")) == 1000 and eval_batch_size(model("hvae")) == 1000
    assert eval_batch_size(model("vqvae")) == 50
    assert eval_batch_size(model("pixel-vae")) == eval_batch_size(model("pixel-vae", "model.prior=vampprior")) == 25
