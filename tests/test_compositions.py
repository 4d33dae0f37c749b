"""Priors, flow posteriors and their compositions (issue: expressive VAEs as parts)."""
import json
import math

import pytest
import torch
from torch.autograd.functional import jacobian

from vaelab.cli import main
from vaelab.config import RunConfig
from vaelab.data import DataFacts, Split
from vaelab.eval import evaluate
from vaelab.models import build_model
from vaelab.models.flows import MADE, IAFPosterior, planar, planar_constrained_u
from vaelab.models.posterior import DiagonalGaussian
from vaelab.models.prior import MixtureOfGaussians, StandardNormal, VampPrior
from vaelab.noise import batch_noise
from vaelab.train import Trainer
from vaelab.viz import dims_by_kl, traversal

DIGITS = DataFacts((1, 8, 8), 10)  # what a model for the 8x8 digits is built for
PIXELCNN = ["model.decoder=pixelcnn", "model.pixelcnn_layers=2", "model.pixelcnn_dim=8", "kl.free_bits=0.25"]


def test_planar_log_det_matches_the_numerical_jacobian():
    torch.manual_seed(0)
    u, w, b = torch.randn(1, 3), torch.randn(1, 3), torch.randn(1, 1)
    for _ in range(5):
        z = torch.randn(1, 3)
        f = lambda t: planar(t[None], u, w, b)[0][0]  # noqa: E731
        J = jacobian(f, z[0])
        _, log_det = planar(z, u, w, b)  # 3 dimensions: float32 rounding (1e-6), no sum whose order moves 1e-4
        assert log_det.item() == pytest.approx(torch.linalg.det(J).abs().log().item(), abs=1e-4)


def test_planar_constraint_keeps_the_map_invertible():
    torch.manual_seed(1)
    w = torch.randn(100, 4)
    u = -5 * w / (w**2).sum(-1, keepdim=True)  # w^T u = -5: the raw map folds over and is not invertible
    u_hat = planar_constrained_u(u, w)
    assert ((w * u_hat).sum(-1) >= -1 - 1e-6).all()  # Rezende & Mohamed 2015, appendix A
    z = torch.randn(100, 4) * 3
    for i in range(0, 100, 25):  # the Jacobian determinant never turns negative
        J = jacobian(lambda t: planar(t[None], u[i:i + 1], w[i:i + 1], torch.zeros(1, 1))[0][0], z[i])
        assert torch.linalg.det(J) >= 0
    # along w the constrained map never decreases (one-to-one); the raw one folds back
    s = torch.linspace(-6, 6, 200)[:, None] * w[:1] / w[:1].norm()
    along_w = lambda f: (f * w[:1]).sum(-1)  # noqa: E731
    assert (along_w(planar(s, u[:1], w[:1], torch.zeros(1, 1))[0]).diff() >= -1e-6).all()
    raw = s + u[:1] * torch.tanh((s * w[:1]).sum(-1, keepdim=True))
    assert (along_w(raw).diff() < 0).any()


def test_made_is_autoregressive():
    torch.manual_seed(2)
    order = torch.tensor([3, 1, 4, 2])
    made = MADE(4, context=5, hidden=16, order=order)
    z, h = torch.randn(4), torch.randn(5)
    J = jacobian(lambda t: torch.cat(made(t, h)), z)  # [8, 4]: (m, s) outputs by inputs
    for i in range(4):
        for j in range(4):
            if order[j] >= order[i]:
                assert J[i, j] == 0 and J[4 + i, j] == 0
    assert J.abs().sum() > 0


def test_iaf_log_q_includes_the_log_determinant():
    torch.manual_seed(3)
    post = IAFPosterior(6, 3, flows=2, hidden=8)
    h = torch.randn(1, 6)
    q = post(h)
    with batch_noise(0):
        z, log_q = q.rsample_and_log_prob()
    with batch_noise(0):
        z0 = q.base.rsample()
    J = jacobian(lambda t: q._push(t[None], torch.zeros(1))[0][0], z0[0])
    expected = q.base.log_prob(z0) - torch.linalg.det(J).abs().log()  # 3 dimensions: as the planar test
    assert log_q.item() == pytest.approx(expected.item(), abs=1e-4)


def test_iaf_log_determinant_is_finite_when_the_gate_saturates():
    torch.manual_seed(3)
    post = IAFPosterior(6, 3, flows=2, hidden=8)
    pre = torch.tensor([-100.0, 100.0, -100.0])  # the gates' pre-activations s + 1.5: sigma = e^-100 and 1 - e^-100
    with torch.no_grad():
        for made in post.mades:
            made.out.weight.zero_()
            made.out.bias[3:] = pre - 1.5
    h = torch.randn(2, 6, requires_grad=True)
    q = post(h)
    with batch_noise(0):
        z, log_q = q.rsample_and_log_prob()
    with batch_noise(0):
        z0 = q.base.rsample()
    log_det = torch.nn.functional.logsigmoid(pre.double()).sum()  # -200, per step
    torch.testing.assert_close(log_q.double(), q.base.log_prob(z0).double() - 2 * log_det, rtol=0, atol=1e-4)
    log_q.sum().backward()
    grads = [h.grad, *(p.grad for p in post.parameters())]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)


def test_vampprior_with_one_pseudo_input_is_the_gaussian_it_encodes():
    prior = VampPrior(2, components=1, shape=(3,))
    net = torch.nn.Linear(3, 4)

    def posterior(x, y=None):
        mu, logvar = net(x).chunk(2, -1)
        return DiagonalGaussian(mu, logvar)

    prior.attach(posterior)
    q = posterior(prior.pseudo_inputs.clamp(0, 1))
    z = torch.randn(7, 2)
    # gaussian_log_prob runs in float64 and q.log_prob sums 2 dimensions: float32 rounding only (1e-7)
    torch.testing.assert_close(prior.log_prob(z), q.log_prob(z).expand(7), rtol=1e-5, atol=1e-5)
    assert prior.sample(3).shape == (3, 2)


def test_monte_carlo_kl_agrees_with_the_closed_form():
    q = DiagonalGaussian(torch.tensor([[0.5, -1.0]]), torch.tensor([[-0.5, 0.3]]))
    mog = MixtureOfGaussians(2, components=1)
    with torch.no_grad():
        mog.mu.zero_()  # one component at N(0, I): the standard normal
    with batch_noise(0):
        z, log_qz = q.rsample_and_log_prob(20000)
    mc, per_dim = mog.kl(q, log_qz, mog.log_prob(z))
    closed, _ = StandardNormal(2).kl(q, log_qz, None)
    assert per_dim is None and mc.mean().item() == pytest.approx(closed.item(), abs=0.03)


@pytest.mark.parametrize("sets", [
    ["model.prior=vampprior", "model.prior_components=20"],
    ["model.prior=mog", "model.prior_components=5"],
    ["model.posterior=planar", "model.flows=4"],
    ["model.posterior=iaf", "model.flows=2"],
    ["model.posterior=iaf", "model.prior=vampprior", "model.prior_components=10", "objective.name=iwae",
     "objective.k=4"],
    PIXELCNN,
    [*PIXELCNN, "model.posterior=iaf", "model.flows=2"],  # free bits on a Monte Carlo KL: per layer
    [*PIXELCNN, "model.prior=vampprior", "model.prior_components=10"],
])
def test_each_composition_trains_with_a_falling_loss(tiny_cfg, sets):
    cfg = tiny_cfg.set([*sets, "train.epochs=4"])
    trainer = Trainer(cfg)
    first = evaluate(trainer.model, trainer.data.val, seed=cfg.train.seed)["loss"]  # at initialization
    last = trainer.fit()  # 4 epochs
    assert all(torch.isfinite(p).all() for p in trainer.model.parameters())
    x = trainer.data.test.x[:8]
    assert trainer.model.reconstruct(x).shape == x.shape and trainer.model.sample(4).shape == (4, 1, 8, 8)
    assert math.isfinite(last["train/loss"]) and last["val/loss"] < first - 3, (first, last["val/loss"])


@pytest.mark.parametrize("inference", ["ladder", "bottom-up"])
def test_hierarchical_kl_terms_sum_to_the_total(inference):
    from vaelab.config import RunConfig
    from vaelab.models import build_model

    cfg = RunConfig().set(["model.hidden=[32]", "model.layers=[6,4,2]",
                           f"model.inference={inference}"])
    m = build_model(cfg, DIGITS)
    x = torch.rand(5, 1, 8, 8).round()
    with batch_noise(0):
        t = m(x, k=3)
    assert len(t.kl_layers) == 3
    # the model's own expressions for the totals, on the same float32 terms: equal bit for bit on any CPU
    torch.testing.assert_close(sum(t.kl_layers).expand_as(t.kl), t.kl)
    torch.testing.assert_close(t.log_w, t.log_px_z + t.log_pz - t.log_qz)
    # the ELBO's KL is E[log q - log p]: for the ladder (closed form per layer) it matches on average
    with batch_noise(1):
        t = m(x, k=4000)
    assert (t.kl.mean(0) - (t.log_qz - t.log_pz).mean(0)).abs().max() < 0.15
    torch.testing.assert_close(m.log_joint(x, t.z), t.log_px_z + t.log_pz, rtol=1e-4, atol=1e-3)


def test_one_layer_hierarchical_vae_is_the_plain_vae():
    from vaelab.config import RunConfig
    from vaelab.models import build_model

    base = ["model.hidden=[32]", "model.latent_dim=5"]
    vae = build_model(RunConfig().set(base), DIGITS)
    for inference in ("ladder", "bottom-up"):
        hvae = build_model(RunConfig().set([*base, "model.layers=[5]", f"model.inference={inference}"]), DIGITS)
        sd = {k.replace("q.head", "top_q.head"): v for k, v in vae.state_dict().items()}
        hvae.load_state_dict(sd)
        x = torch.rand(6, 1, 8, 8).round()
        with batch_noise(3):
            a = vae(x, k=2)
        with batch_noise(3):
            b = hvae(x, k=2)
        for name in ("log_px_z", "kl", "log_pz", "log_qz", "z"):  # the same weights through the same kernels
            torch.testing.assert_close(getattr(b, name), getattr(a, name), msg=name)
        torch.testing.assert_close(b.kl_per_dim, a.kl_per_dim)


def test_hierarchical_vampprior_iaf_iwae_trains(tiny_cfg):
    cfg = tiny_cfg.set(["model.name=hvae", "model.layers=[6,3]", "model.prior=vampprior", "model.prior_components=10",
                        "model.posterior=iaf", "model.flows=2", "objective.name=iwae", "objective.k=3",
                        "train.epochs=3"])
    trainer = Trainer(cfg)
    record = trainer.fit()
    assert record["train/loss"] < 48 and "train/kl_1" in record and "train/kl_2" in record
    assert trainer.model.sample(3).shape == (3, 1, 8, 8)


@pytest.mark.parametrize("sets, dims", [(["model.layers=[6,3]", "model.inference=bottom-up"], [6, 3]),
                                       (["model.posterior=iaf", "model.flows=2"], [4]),
                                       (["model.prior=vampprior", "model.prior_components=5"], [4])])
def test_free_bits_per_layer_for_monte_carlo_kl(tiny_cfg, sets, dims):
    trainer = Trainer(tiny_cfg.set([*sets, "kl.free_bits=5.0", "train.steps=5"]))
    loss, logs = trainer.objective(trainer.model, trainer.data.train.x[:32], None, 0)
    layer_kls = [float(logs[f"kl_{l + 1}"]) for l in range(len(dims))] if len(dims) > 1 else [float(logs["kl"])]
    assert all(kl < 5.0 * d for kl, d in zip(layer_kls, dims))  # every layer under its floor of 5 nats a dimension
    # the loss adds the floors (exact in float32) to the logged recon: one float32 rounding (1e-5 at ~100 nats)
    assert float(loss.detach()) == pytest.approx(float(logs["recon"]) + 5.0 * sum(dims), abs=1e-3)


def test_pixelcnn_decoder_is_conditioned_on_z_and_autoregressive():
    from vaelab.models.pixelcnn import PixelCNNLikelihood

    torch.manual_seed(0)
    lik = PixelCNNLikelihood((1, 5, 5), latent_dim=3, dim=8, layers=3, kernel=3)
    x = torch.rand(2, 1, 5, 5).round()
    z = torch.randn(2, 3, requires_grad=True)
    (grad,) = torch.autograd.grad(lik.log_prob(x, z).sum(), z)
    assert grad.abs().sum() > 0  # z reaches every gate
    logits = lambda xx: lik.net(xx[:, 0].long(), z.detach())  # noqa: E731
    base = logits(x)
    flipped = x.clone()
    flipped[:, 0, 2, 3] = 1 - flipped[:, 0, 2, 3]
    changed = (logits(flipped) - base).abs().sum((0, 1)) > 0  # [H, W]
    order = torch.arange(25).view(5, 5)
    assert not changed[order <= 2 * 5 + 3].any() and changed[order > 2 * 5 + 3].any()


@pytest.mark.parametrize("sets", [["model.posterior=iaf", "model.flows=2"], ["model.layers=[4,2]"],
                                  ["model.prior=vampprior", "model.prior_components=5"]])
def test_likelihood_estimators_work_for_compositions(tiny_cfg, sets):
    from vaelab.eval import ais_log_likelihood, log_likelihood

    trainer = Trainer(tiny_cfg.set([*sets, "train.epochs=1"]))
    trainer.fit()
    x = trainer.data.test.take(torch.arange(16))
    is_est = log_likelihood(trainer.model, x, k=200)
    ais = ais_log_likelihood(trainer.model, x, steps=20, chains=4, leapfrog=3)
    elbo = trainer.model(x.x).log_w.mean()
    assert -is_est["nll"] >= elbo.item() - 1.0  # the IS bound sits above the one-sample ELBO
    assert abs(is_est["nll"] - ais["nll"]) < 0.25 * is_est["nll"]


def test_mixture_log_density_matches_torch_distributions():
    import torch.distributions as td

    torch.manual_seed(4)
    mog = MixtureOfGaussians(3, components=7)
    with torch.no_grad():
        mog.logvar.normal_(0, 0.5)
        mog.logits.normal_()
    z = torch.randn(4, 6, 3) * 2
    ref = td.MixtureSameFamily(td.Categorical(logits=mog.logits),
                               td.Independent(td.Normal(mog.mu, torch.exp(0.5 * mog.logvar)), 1)).log_prob(z)
    torch.testing.assert_close(mog.log_prob(z), ref, rtol=1e-4, atol=1e-4)


def test_sharp_mixture_and_vampprior_components_lose_no_nats():
    """Issue 12, bug 6: the Gaussian quadratic expanded in float32 (z^2 - 2 z mu + mu^2) lost up to 0.5 nats for
    components of sigma = 0.01; against torch.distributions in float64 at z drawn from the components."""
    import torch.distributions as td

    torch.manual_seed(6)
    d, k, sigma = 32, 50, 0.01
    mog, vamp = MixtureOfGaussians(d, components=k), VampPrior(d, components=k, shape=(d,))
    with torch.no_grad():
        mog.mu.uniform_(-2, 2)
        mog.logvar.fill_(2 * math.log(sigma))
        mog.logits.normal_()
        vamp.pseudo_inputs.uniform_(0, 1)
    vamp.attach(lambda u, y=None: DiagonalGaussian(4 * u - 2, torch.full_like(u, 2 * math.log(sigma))))
    for prior, mu, logits in ((mog, mog.mu, mog.logits), (vamp, 4 * vamp.pseudo_inputs - 2, torch.zeros(k))):
        z = mu[torch.randint(k, (4, 64))] + sigma * torch.randn(4, 64, d)  # [4, 64, D]
        ref = td.MixtureSameFamily(td.Categorical(logits=logits.double()),
                                   td.Independent(td.Normal(mu.double(), sigma), 1)).log_prob(z.double())
        # float64 up to one float32 rounding of values near 120 nats (ulp 8e-6): summation order cannot move 1e-4
        torch.testing.assert_close(prior.log_prob(z).double(), ref, rtol=0, atol=1e-4)


def hierarchical(layers: str, inference: str):
    return build_model(RunConfig().set(["model.hidden=[32]", f"model.layers={layers}",
                                        f"model.inference={inference}"]), DIGITS)


@pytest.mark.parametrize("inference", ["ladder", "bottom-up"])
def test_hierarchical_encode_is_deterministic_and_skips_the_decoder(inference):
    torch.manual_seed(5)
    m = hierarchical("[4,3,2]", inference)
    m.decoder.register_forward_hook(lambda *_: pytest.fail("encode ran the decoder"))
    x = torch.rand(6, 1, 8, 8).round()
    z = m.encode(x)
    assert z.shape == (6, 9) and torch.equal(m.encode(x), z)
    q = m.posterior(x)
    torch.testing.assert_close(q.mean, z)  # Gaussian layers: the posterior's means are the code (same ops)
    torch.testing.assert_close(m.posterior(x).logvar, q.logvar, rtol=0, atol=0)


@pytest.mark.parametrize("inference", ["ladder", "bottom-up"])
def test_traversal_of_an_upper_layer_changes_the_image(inference):
    torch.manual_seed(6)
    m = hierarchical("[4,3,2]", inference)
    x = torch.rand(1, 1, 8, 8).round()
    z0 = m.encode(x)[0]
    # unedited: the reconstruction, by the same ops on the same shapes as encode (no order can differ)
    torch.testing.assert_close(m.top_down(z0, z0[None]), z0[None])
    z = z0.clone()
    z[7] += 2.0  # a coordinate of the top layer z_3
    assert torch.equal(m.decode(z[None]), m.decode(z0[None]))  # decode alone reads z_1 ...
    moved = m.top_down(z0, z[None])[0]
    assert (moved[:4] != z0[:4]).all() and (moved[4:7] != z0[4:7]).all()  # ... top_down moves z_2 and z_1
    grid, steps = traversal(m, x, dims=[0, 4, 7, 8], steps=5)
    rows = grid.view(4, steps, -1)
    assert (rows[:, 1:] - rows[:, :1]).abs().amax(-1).min() > 1e-4  # every row's images differ from its first


def test_evaluation_marks_a_monte_carlo_kl_and_dims_fall_back_to_activity():
    torch.manual_seed(7)
    base = ["model.hidden=[32]", "model.latent_dim=3"]
    split = Split(torch.rand(40, 1, 8, 8).round(), None)
    closed = evaluate(build_model(RunConfig().set(base), DIGITS), split)
    assert closed["kl_estimate"] == "closed-form" and len(closed["kl_per_dim"]) == 3
    for sets in (["model.prior=mog"], ["model.posterior=planar"]):
        mc = evaluate(build_model(RunConfig().set([*base, *sets]), DIGITS), split)
        assert mc["kl_estimate"] == "monte-carlo" and mc["kl_per_dim"] is None and len(mc["var_mu"]) == 3
    assert dims_by_kl({"kl_per_dim": [0.1, 2.0, 0.5], "var_mu": [3.0, 1.0, 2.0]}) == [1, 2, 0]
    assert dims_by_kl({"kl_per_dim": None, "var_mu": [3.0, 1.0, 2.0]}, top=2) == [0, 2]
    with pytest.raises(ValueError, match="kl_per_dim or var_mu"):
        dims_by_kl({"kl_per_dim": None})


def layer_at_its_prior(inference: str):
    """layers [4, 2] where the layer inferred first (ladder: z_2 from x; bottom-up: z_1) carries x in its unit 0 only,
    its other units are N(0, 1) whatever x, and the other layer's posterior reads only those other units: that layer
    is forced to its prior (ladder: q(z_1|z_2,x) = p(z_1|z_2), the bottom-up Gaussian constant and 3000 times less
    precise), so E_q[z|x] of its units is the same for every x, though the mean given one drawn parent is not."""
    torch.manual_seed(9)
    m = hierarchical("[4,2]", inference)
    first = m.top_q.head if inference == "ladder" else m.q_heads[0]  # [mu, logvar] of the first layer
    d = first.out_features // 2
    with torch.no_grad():
        first.weight[0] *= 10  # unit 0 carries x
        first.weight[1:d] = 0
        first.bias[1:d] = 0
        first.weight[d:] = 0
        first.bias[d:] = 0  # the other units: N(0, 1), the prior
        first.bias[d] = -4.0
        if inference == "ladder":
            m.q_heads[0].weight.zero_()
            m.q_heads[0].bias.zero_()
            m.q_heads[0].bias[4:] = 4.0  # the bottom-up Gaussian N(0, e^4) whatever x ...
            m.down[0][0][0].weight[:, 0] = 0  # p(z_1|z_2) reads z_2's unit 1 only
            m.down[0][1].weight[4:] = 0
            m.down[0][1].bias[4:] = -8.0  # ... and p(z_1|z_2) of variance e^-8: q(z_1|z_2,x) = p(z_1|z_2)
            m.down[0][1].weight[:4] *= 2
        else:
            m.up[1][0].weight[:, 0] = 0  # q(z_2|z_1) reads z_1's units 1-3 only
            m.top_q.head.weight[:2] *= 2
    return m


@pytest.mark.parametrize("inference", ["ladder", "bottom-up"])
def test_hierarchical_active_units_are_not_overcounted(inference):
    """Burda et al. 2016, §5.2: A_u = Cov_x(E_q(z|x)[u]), the expectation also over the draws of the layer that u's
    layer depends on (ladder: the one above; bottom-up: the one below)."""
    m = layer_at_its_prior(inference)
    x = torch.rand(2000, 1, 8, 8).round()
    ev = evaluate(m, Split(x, None))
    var_mu = torch.tensor(ev["var_mu"], dtype=torch.float64)
    active, at_prior = (slice(4, 6), slice(0, 4)) if inference == "ladder" else (slice(0, 4), slice(4, 6))
    assert (var_mu[at_prior] < 0.005).all(), var_mu  # active: > 0.01; the estimate's spread here: about 0.001
    assert ev["active_units"] == 1, ev["var_mu"]
    # the layer inferred first has its mean in closed form: its activity is the variance of that mean over x
    exact = m.encode(x)[:, active].double().var(0, unbiased=False)
    torch.testing.assert_close(var_mu[active], exact, rtol=1e-4, atol=1e-9)


def test_active_units_of_a_vae_are_the_variance_of_its_posterior_mean():
    torch.manual_seed(10)
    m = build_model(RunConfig().set(["model.hidden=[32]", "model.latent_dim=3"]), DIGITS)
    with torch.no_grad():
        m.q.head.weight[0] *= 10  # active
        m.q.head.weight[1] = 0  # constant mean: inactive
    x = torch.rand(500, 1, 8, 8).round()
    ev = evaluate(m, Split(x, None))
    exact = m.encode(x).double().var(0, unbiased=False)
    torch.testing.assert_close(torch.tensor(ev["var_mu"], dtype=torch.float64), exact, rtol=1e-4, atol=1e-9)
    assert exact[0] > 0.01 and exact[1] == 0 and ev["active_units"] == int((exact > 0.01).sum())


def test_pixelcnn_image_metrics_take_one_teacher_forced_pass():
    torch.manual_seed(8)
    m = build_model(RunConfig().set(["model.hidden=[32]", "model.latent_dim=3",
                                     "model.decoder=pixelcnn", "model.pixelcnn_layers=2", "model.pixelcnn_dim=8"]), DIGITS)
    m.likelihood.net.sample = lambda *_, **__: pytest.fail("the evaluation drew images pixel by pixel")
    x, z = torch.rand(5, 1, 8, 8).round(), torch.randn(5, 3)
    p = m.likelihood.teacher_forced_mean(x, z)  # p(x_i = 1 | x_<i, z): its Bernoulli log-likelihood is log p(x|z)
    log_px = (x * p.log() + (1 - x) * (1 - p).log()).sum((1, 2, 3))
    torch.testing.assert_close(log_px, m.likelihood.log_prob(x, z), rtol=1e-4, atol=1e-3)
    a, b = evaluate(m, Split(x, None)), evaluate(m, Split(x, None))
    assert 0 < a["mse"] < 1 and a["mse"] == b["mse"] and a["ssim"] == b["ssim"]  # the same run twice


SMALL = ["model.hidden=[32]", "model.latent_dim=4", "data.val_size=100", "train.batch_size=100", "train.progress=false"]


@pytest.mark.parametrize("model, sets", [
    ("hvae", ["model.layers=[4,2]"]),
    ("vampprior", ["model.prior_components=10"]),
    ("flow-vae", ["model.flows=2"]),
    ("pixel-vae", ["model.pixelcnn_layers=2", "model.pixelcnn_dim=8"]),
])
def test_cli_trains_samples_reconstructs_traverses_and_evaluates_each_composition(tmp_path, capsys, model, sets):
    run = str(tmp_path / model)
    flags = [a for s in [*SMALL, *sets] for a in ("--set", s)]
    assert main(["train", "--model", model, "--dataset", "digits", "--epochs", "1", "--out", run, *flags]) == 0
    assert main(["sample", run, "--n", "8"]) == 0
    assert main(["reconstruct", run, "--n", "8"]) == 0
    assert main(["traverse", run, "--dims", "3", "--steps", "3"]) == 0
    assert main(["eval", run, "--nll-samples", "20"]) == 0
    for png in ("samples.png", "reconstructions.png", "traversal.png"):
        assert (tmp_path / model / png).stat().st_size > 0
    result = json.loads((tmp_path / model / "eval.json").read_text())
    assert math.isfinite(result["nll"]) and result["nll_samples"] == 20 and result["gap"] > -1
    assert (result["kl_per_dim"] is None) == (result["kl_estimate"] == "monte-carlo")
    assert ("by KL" in capsys.readouterr().out) == (result["kl_estimate"] == "closed-form")
