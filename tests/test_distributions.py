import math

import pytest
import torch
import torch.distributions as td

from vaelab.models.likelihood import Bernoulli, Gaussian
from vaelab.models.posterior import DiagonalGaussian
from vaelab.models.prior import StandardNormal
from vaelab.noise import batch_noise, rand, randn


def test_gaussian_kl_closed_form_matches_torch_distributions():
    torch.manual_seed(0)
    mu, logvar = torch.randn(16, 5) * 2, torch.randn(16, 5)
    q = DiagonalGaussian(mu, logvar)
    ref = td.kl_divergence(td.Normal(mu, torch.exp(0.5 * logvar)), td.Normal(0.0, 1.0))  # [16, 5]
    torch.testing.assert_close(q.kl_standard_normal(), ref, rtol=1e-4, atol=1e-5)
    z, log_qz = q.rsample_and_log_prob()
    kl, per_dim = StandardNormal(5).kl(q, log_qz, StandardNormal(5).log_prob(z))
    torch.testing.assert_close(kl, ref.sum(-1), rtol=1e-4, atol=1e-5)
    assert (per_dim >= 0).all()


def test_kl_is_zero_only_at_the_prior():
    q = DiagonalGaussian(torch.zeros(3, 4), torch.zeros(3, 4))
    assert q.kl_standard_normal().abs().max() < 1e-7  # exact: every term is 0 or 1
    q = DiagonalGaussian(torch.full((1, 1), 2.0), torch.zeros(1, 1))
    assert q.kl_standard_normal().item() == pytest.approx(2.0)  # mu^2 / 2, exact in float32


def test_log_densities_match_torch_distributions():
    torch.manual_seed(1)
    mu, logvar = torch.randn(8, 3), torch.randn(8, 3)
    q = DiagonalGaussian(mu, logvar)
    z = q.rsample(k=5)  # [5, 8, 3]
    assert z.shape == (5, 8, 3)
    ref_q = td.Normal(mu, torch.exp(0.5 * logvar)).log_prob(z).sum(-1)
    torch.testing.assert_close(q.log_prob(z), ref_q, rtol=1e-4, atol=1e-4)
    ref_p = td.Normal(0.0, 1.0).log_prob(z).sum(-1)
    torch.testing.assert_close(StandardNormal(3).log_prob(z), ref_p, rtol=1e-4, atol=1e-4)
    z, log_qz = q.rsample_and_log_prob(k=5)  # log q from the draw's noise
    torch.testing.assert_close(log_qz, td.Normal(mu, torch.exp(0.5 * logvar)).log_prob(z).sum(-1), rtol=1e-4,
                               atol=1e-4)
    mu.requires_grad_(), logvar.requires_grad_()  # and the same gradients as log_prob at z (pathwise: 0 for mu)
    q = DiagonalGaussian(mu, logvar)
    with batch_noise(3):
        z, log_qz = q.rsample_and_log_prob(k=5)
    with batch_noise(3):
        z2 = q.rsample(k=5)
    assert torch.equal(z, z2)
    grads = [torch.autograd.grad(lq.sum(), (mu, logvar), allow_unused=True) for lq in (log_qz, q.log_prob(z2))]
    for a, b, like in zip(*grads, (mu, logvar)):
        zero = torch.zeros_like(like)
        torch.testing.assert_close(zero if a is None else a, zero if b is None else b, rtol=1e-4, atol=1e-4)


def test_reparameterized_samples_have_the_posterior_moments():
    q = DiagonalGaussian(torch.tensor([[1.0, -2.0]]), torch.log(torch.tensor([[0.25, 4.0]])))
    with batch_noise(0):
        z = q.rsample(k=40000)[:, 0]
    torch.testing.assert_close(z.mean(0), torch.tensor([1.0, -2.0]), atol=0.03, rtol=0)
    torch.testing.assert_close(z.std(0), torch.tensor([0.5, 2.0]), atol=0.03, rtol=0)


def test_bernoulli_likelihood_matches_torch_distributions():
    torch.manual_seed(2)
    logits = torch.randn(4, 6, 1, 5, 5) * 3  # [k, B, C, H, W]
    x = torch.rand(6, 1, 5, 5).round()
    ours = Bernoulli().log_prob(x, logits)
    ref = td.Bernoulli(logits=logits).log_prob(x.expand_as(logits)).sum((-3, -2, -1))
    assert ours.shape == (4, 6)
    torch.testing.assert_close(ours, ref, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("learn", [False, True])
def test_gaussian_likelihood_matches_torch_distributions(learn):
    torch.manual_seed(3)
    lik = Gaussian((3, 4, 4), sigma=0.3, learn_sigma=learn)
    if learn:
        with torch.no_grad():
            lik.log_sigma.add_(torch.randn(3, 4, 4) * 0.2)
    mean, x = torch.rand(5, 3, 4, 4), torch.rand(5, 3, 4, 4)
    ref = td.Normal(mean, torch.exp(lik.log_sigma)).log_prob(x).sum((-3, -2, -1))
    torch.testing.assert_close(lik.log_prob(x, mean), ref, rtol=1e-4, atol=1e-3)
    assert any(p.requires_grad for p in lik.parameters()) == learn
    if not learn:  # 48 equal float32 terms: at most 48 roundings (3e-6 relative) in any order
        assert lik.log_prob(x, x).mean().item() == pytest.approx(-48 * (math.log(0.3) + 0.5 * math.log(2 * math.pi)),
                                                                 rel=1e-5)


def test_noise_does_not_depend_on_how_the_batch_is_split():
    """Two 'ranks' holding examples 0-3 and 4-9 of a global batch see exactly the one-process draws."""
    with batch_noise(7, start=0, total=10):
        full_n, full_u = randn((10, 3)), rand((2, 10, 4), batch_dim=1)
    shards = []
    for start, size in ((0, 4), (4, 6)):
        with batch_noise(7, start=start, total=10):
            shards.append((randn((size, 3)), rand((2, size, 4), batch_dim=1)))
    torch.testing.assert_close(torch.cat([shards[0][0], shards[1][0]]), full_n, rtol=0, atol=0)  # draws, no sums
    torch.testing.assert_close(torch.cat([shards[0][1], shards[1][1]], 1), full_u, rtol=0, atol=0)
    with batch_noise(8, start=0, total=10):
        assert not torch.equal(randn((10, 3)), full_n)
