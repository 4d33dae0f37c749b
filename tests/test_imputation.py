"""Missing-data imputation: masks, Metropolis-within-Gibbs against the exact conditional of a linear-Gaussian VAE,
the likelihood over observed entries, MIWAE training, and imputation that beats mean imputation."""
import json

import numpy as np
import pytest
import torch
import torch.distributions as td

from vaelab.cli import main
from vaelab.config import ConfigError, RunConfig
from vaelab.data import DataError
from vaelab.data.masks import make_masks
from vaelab.eval.imputation import metropolis_within_gibbs, pseudo_gibbs
from vaelab.models.likelihood import Bernoulli, Gaussian, observed_only
from vaelab.studies.imputation import imputation_study


def test_masks_hide_what_their_spec_says(tmp_path):
    shape = (1, 28, 28)
    assert (~make_masks("half-top", 3, shape)).sum() == 3 * 14 * 28
    assert not make_masks("half-top", 1, shape)[0, 0, :14].any() and make_masks("half-top", 1, shape)[0, 0, 14:].all()
    assert not make_masks("half-left", 1, shape)[0, 0, :, :14].any()
    square = make_masks("square:14", 2, shape)
    assert (~square).sum() == 2 * 14 * 14 and not square[0, 0, 7:21, 7:21].any()
    rate = (~make_masks("random:0.5", 200, shape)).double().mean().item()
    assert rate == pytest.approx(0.5, abs=0.01)
    colour = make_masks("random:0.3", 4, (3, 8, 8))
    assert (colour == colour[:, :1]).all()  # a pixel's channels are hidden together
    one = np.ones((28, 28), dtype=np.uint8)
    one[:5] = 0
    np.save(tmp_path / "m.npy", one)
    assert (~make_masks(str(tmp_path / "m.npy"), 3, shape)).sum() == 3 * 5 * 28
    for bad in ("random:1.5", "square:40", "nonsense", "random:x"):
        with pytest.raises(ConfigError):
            make_masks(bad, 1, shape)
    np.save(tmp_path / "bad.npy", np.ones((5, 5)))
    with pytest.raises(DataError):
        make_masks(str(tmp_path / "bad.npy"), 1, shape)


def test_likelihood_over_observed_entries_matches_torch_distributions():
    """observed_only sums log p(x_i|z) over the observed entries: against torch.distributions in float64."""
    g = torch.Generator().manual_seed(0)
    out = torch.randn(2, 3, 1, 4, 4, generator=g, dtype=torch.float64)
    x = (torch.rand(3, 1, 4, 4, generator=g) < 0.5).double()
    m = torch.rand(3, 1, 4, 4, generator=g) < 0.6
    bern = Bernoulli()
    with observed_only(bern, m):
        got = bern.log_prob(x, out)
    want = (td.Bernoulli(logits=out).log_prob(x.expand_as(out)) * m).sum((-3, -2, -1))
    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)
    gauss = Gaussian((1, 4, 4), sigma=0.3).double()
    with observed_only(gauss, m):
        got = gauss.log_prob(x, out)
    sigma = gauss.log_scale().exp()  # 0.3 as the float32 parameter held it, in float64
    want = (td.Normal(out, sigma).log_prob(x.expand_as(out)) * m).sum((-3, -2, -1))
    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)
    assert bern.observed is None  # back to the whole image outside


def _exact_conditional(model, x, observed):
    """Mean and variances of x_m | x_o under the linear-Gaussian VAE's marginal N(b, W W^T + Psi), float64."""
    from vaelab.models.linear import linear_gaussian_parts

    W, b, psi = linear_gaussian_parts(model)
    C = W @ W.T + torch.diag(psi)
    o, mi = observed.flatten(), ~observed.flatten()
    gain = C[mi][:, o] @ torch.linalg.inv(C[o][:, o])
    mean = b[mi] + gain @ (x.flatten().double()[o] - b[o])
    cov = C[mi][:, mi] - gain @ C[o][:, mi]
    return mean, cov.diagonal()


def test_metropolis_within_gibbs_draws_the_exact_conditional(linear_gaussian):
    """Mattei & Frellsen 2018: MWG's acceptance ratio makes p(x_m|x_o) stationary for any proposal q(z|x). On the
    linear-Gaussian VAE (its encoder's variance e^2 times too wide) 4000 chains after 200 sweeps (after 60 the means
    were still 20 standard errors off) match the exact conditional's mean within 5 standard errors and its variances
    within 12% (5 standard errors of a variance from 4000 draws); pseudo-Gibbs, which trusts the wrong encoder, is
    over-dispersed by more than that."""
    model, x, _ = linear_gaussian
    x0 = x[:1]
    observed = torch.zeros_like(x0, dtype=torch.bool)
    observed[..., :8] = True
    mean, var = _exact_conditional(model, x0, observed[0])
    fill = torch.zeros_like(x0[0])
    draws, rate = metropolis_within_gibbs(model, x0, observed, fill, n=4000, steps=200, seed=1, draws=True)
    xm = draws[:, 0].flatten(1)[:, 8:].double()  # [4000, 8]
    se = (var / 4000).sqrt()
    assert ((xm.mean(0) - mean).abs() < 5 * se).all(), ((xm.mean(0) - mean) / se)
    assert ((xm.var(0) / var - 1).abs() < 0.12).all(), xm.var(0) / var
    assert 0.05 < rate < 0.95
    pg = pseudo_gibbs(model, x0, observed, fill, n=4000, steps=200, seed=1, draws=True)[:, 0].flatten(1)[:, 8:]
    assert (pg.double().var(0) / var).mean() > 1.2


def test_metropolis_within_gibbs_accepts_the_exact_posterior():
    """With the exact posterior as its proposal (orthogonal decoder columns: the diagonal posterior is exact),
    every MH ratio is 1: all proposals are accepted."""
    from vaelab.models.linear import linear_vae

    g = torch.Generator().manual_seed(2)
    W = torch.linalg.qr(torch.randn(10, 3, generator=g)).Q * torch.tensor([2.0, 1.5, 1.0])
    model = linear_vae(W, torch.zeros(10), 0.4)
    x = torch.randn(5, 1, 1, 10, generator=g)
    observed = torch.rand(5, 1, 1, 10, generator=g) < 0.5
    _, rate = metropolis_within_gibbs(model, x, observed, torch.zeros(1, 1, 10), n=20, steps=10)
    assert rate > 0.999


@pytest.fixture(scope="module")
def miwae_run(tmp_path_factory):
    """A small VAE trained by MIWAE on the 8x8 digits with half of each image's pixels missing."""
    run = tmp_path_factory.mktemp("impute") / "miwae"
    assert main(["train", "--model", "vae", "--dataset", "digits", "--objective", "miwae", "--k", "5", "--steps",
                 "600", "--set", "model.hidden=[128]", "--set", "model.latent_dim=8", "--set", "data.val_size=200",
                 "--set", "train.batch_size=64", "--set", "train.progress=false", "--set",
                 "objective.miwae.rate=0.5", "--out", str(run)]) == 0
    return run


@pytest.mark.parametrize("method", ["pseudo-gibbs", "mwg", "importance"])
def test_imputation_beats_mean_imputation(miwae_run, method):
    """On the hidden half of held-out digits, a MIWAE-trained model's imputation is right more often than each
    pixel's training mean (rounded), and has the lower squared error."""
    study = imputation_study(miwae_run, "random:0.5", method, limit=300, n=4, steps=20, k=50)
    model, mean = study.errors["model"], study.errors["mean"]
    assert model["impute_accuracy"] > mean["impute_accuracy"] + 0.02, study.errors
    assert model["impute_mse"] < mean["impute_mse"], study.errors
    images, nrow = study.picture(6)
    rows = 2 + (1 if method == "importance" else 4)  # masked, the completions (importance: one estimate), truth
    assert images.shape == (6 * rows, 1, 8, 8) and nrow == 6
    print(method, study.errors)


def test_impute_command_writes_errors_and_a_picture(miwae_run, tmp_path, capsys):
    out = tmp_path / "imp"
    assert main(["impute", str(miwae_run), "--mask", "half-top", "--method", "mwg", "--n", "50", "--steps", "5",
                 "--completions", "2", "-o", str(out)]) == 0
    found = json.loads((out / "impute-mwg-half-top.json").read_text())
    assert set(found["errors"]) == {"model", "mean"} and 0 <= found["acceptance"] <= 1
    assert (out / "impute-mwg-half-top.png").stat().st_size > 0
    assert "imputation accuracy" in capsys.readouterr().out
    assert main(["impute", str(miwae_run), "--mask", "square:99"]) == 2


def test_miwae_refuses_what_it_cannot_train():
    from vaelab.objectives import check_run

    base = RunConfig().set(["objective.name=miwae"])
    check_run(base)
    with pytest.raises(ConfigError, match="factorizes"):
        check_run(base.set(["model.likelihood=discretized-logistic"]))
    with pytest.raises(ConfigError, match="kl section"):
        check_run(base.set(["kl.beta=2"]))


def test_miwae_masks_come_from_a_file_or_a_rate(tmp_path):
    """A file's masks are drawn from for each example (here one half-top mask for all); a rate hides that share of
    pixels, the same ones in every channel, drawn from the step's noise (the same draws for the same seed)."""
    from vaelab import noise
    from vaelab.data import DataFacts
    from vaelab.objectives.miwae import MIWAEObjective

    half = np.ones((8, 8), dtype=np.uint8)
    half[:4] = 0
    np.save(tmp_path / "half.npy", half)
    facts = DataFacts((1, 8, 8))
    cfg = RunConfig().set(["objective.name=miwae", f"objective.miwae.mask={tmp_path / 'half.npy'}"])
    m = MIWAEObjective(cfg, facts, 10).observed(torch.zeros(5, 1, 8, 8))
    assert m.shape == (5, 1, 8, 8) and not m[:, :, :4].any() and m[:, :, 4:].all()
    rated = RunConfig().set(["objective.name=miwae", "objective.miwae.rate=0.3"])
    rated = MIWAEObjective(rated, DataFacts((3, 8, 8)), 10)
    with noise.batch_noise(7):
        a = rated.observed(torch.zeros(400, 3, 8, 8))
    with noise.batch_noise(7):
        b = rated.observed(torch.zeros(400, 3, 8, 8))
    assert torch.equal(a, b) and (a == a[:, :1]).all()
    assert (~a).double().mean().item() == pytest.approx(0.3, abs=0.01)
    with pytest.raises(DataError):
        MIWAEObjective(RunConfig().set(["objective.name=miwae", f"objective.miwae.mask={tmp_path / 'half.npy'}"]),
                       DataFacts((1, 28, 28)), 10)


def test_imputation_refuses_models_it_cannot_fill_with():
    """One line for a hierarchy, a likelihood that does not factorize over pixels, a model without a density."""
    from vaelab.data import DataFacts
    from vaelab.eval.imputation import require_imputation
    from vaelab.models import build_model

    facts = DataFacts((1, 8, 8))
    for sets, message in ((["model.name=hvae", "model.layers=[4, 2]"], "one latent layer"),
                          (["data.binarize=none", "model.likelihood=continuous-bernoulli"], "factorizes"),
                          (["model.name=wae-mmd", "model.posterior=deterministic"], "can estimate log p")):
        with pytest.raises(ConfigError, match=message):
            require_imputation(build_model(RunConfig().set(["model.hidden=[16]", *sets]), facts))
