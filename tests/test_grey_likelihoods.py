"""Likelihoods for grey and colour pixels: each normalizes, matches a float64 hand computation, and has finite
gradients at the edges of its range.

The hand computations use mpmath at 100 digits, the papers' formulas as written. Comparisons of float32 results at
tolerances below 1e-4 concern elementwise formulas (and sums of at most three channel terms in a fixed order), which
no summation order of MKL/ATen can move."""
import math

import mpmath
import numpy as np
import pytest
import torch
import torch.distributions as td

from vaelab import noise
from vaelab.models.continuous_bernoulli import TAYLOR_CUT, ContinuousBernoulli, log_norm, mean
from vaelab.models.likelihood import DequantizedGaussian, Gaussian
from vaelab.models.logistic import DiscretizedLogisticMixture

mpmath.mp.dps = 100
ETAS = [0.0, 1e-8, -1e-6, 0.01, -0.2, TAYLOR_CUT * (1 - 1e-6), TAYLOR_CUT, -TAYLOR_CUT * (1 + 1e-6), 0.7, -3.0,
        12.0, -40.0, 90.0]


def legendre(n=64):
    """Gauss-Legendre nodes and weights on [0, 1], float64."""
    t, w = np.polynomial.legendre.leggauss(n)
    return torch.from_numpy((t + 1) / 2), torch.from_numpy(w / 2)


def image(v: torch.Tensor) -> torch.Tensor:
    """Values [N] as N one-pixel images [N, 1, 1, 1]."""
    return v.reshape(-1, 1, 1, 1)


# ------------------------------------------------------------------------------------------ continuous Bernoulli
def test_continuous_bernoulli_integrates_to_one_and_its_mean_is_the_integral_of_x():
    t, w = legendre()  # the density is exp(a x + b): 64 nodes integrate it to machine precision
    lik = ContinuousBernoulli()
    for eta in ETAS:  # within the Taylor series' truncation error (< 2e-11 at the cut) of 1 and E[x]
        log_p = lik.log_prob(image(t), torch.full((len(t), 1, 1, 1), eta, dtype=torch.float64))
        assert (w * log_p.exp()).sum().item() == pytest.approx(1.0, abs=3e-11), eta
        m = mean(torch.tensor(eta, dtype=torch.float64)).item()
        assert (w * t * log_p.exp()).sum().item() == pytest.approx(m, abs=3e-11), eta


def test_continuous_bernoulli_matches_the_papers_formula_and_holds_in_float32():
    """C(lambda) = 2 atanh(1 - 2 lambda) / (1 - 2 lambda) (Loaiza-Ganem & Cunningham 2019, eq. 7), 2 at lambda = 1/2,
    and E[x] = lambda / (2 lambda - 1) + 1 / (2 atanh(1 - 2 lambda)), computed at 100 digits: the float64 values agree
    to the Taylor series' truncation error, the float32 ones (Taylor series near eta = 0) to float32 resolution."""
    for eta in ETAS:
        lam = 1 / (1 + mpmath.exp(-eta))
        hand = mpmath.log(2) if eta == 0 else mpmath.log(2 * mpmath.atanh(1 - 2 * lam) / (1 - 2 * lam))
        hand_mean = mpmath.mpf(0.5) if eta == 0 else lam / (2 * lam - 1) + 1 / (2 * mpmath.atanh(1 - 2 * lam))
        assert log_norm(torch.tensor(eta, dtype=torch.float64)).item() == pytest.approx(float(hand), abs=3e-11), eta
        assert mean(torch.tensor(eta, dtype=torch.float64)).item() == pytest.approx(float(hand_mean), abs=3e-11), eta
        assert log_norm(torch.tensor(eta)).item() == pytest.approx(float(hand), rel=3e-7, abs=3e-7), eta
        assert mean(torch.tensor(eta)).item() == pytest.approx(float(hand_mean), rel=3e-7, abs=3e-7), eta
    eta = torch.tensor([-3.0, -0.5, 0.4, 2.0], dtype=torch.float64)  # away from 1/2, where torch's own is exact
    x = torch.tensor([0.0, 0.3, 0.9, 1.0], dtype=torch.float64)
    ref = td.ContinuousBernoulli(logits=eta).log_prob(x)
    torch.testing.assert_close(ContinuousBernoulli().log_prob(image(x), image(eta)), ref, rtol=1e-12, atol=1e-12)


def test_continuous_bernoulli_gradients_are_finite_at_the_edges():
    eta = torch.tensor(ETAS * 2, requires_grad=True)
    x = torch.tensor([0.0] * len(ETAS) + [1.0] * len(ETAS))
    log_p = ContinuousBernoulli().log_prob(image(x), image(eta))
    (g,) = torch.autograd.grad(log_p.sum(), eta)
    assert torch.isfinite(log_p).all() and torch.isfinite(g).all()
    # d/d eta [x eta - log(1 + e^eta) + log C] at eta = 0 is x - 1/2 (log C is even); at eta = +-40, x - E[x]
    near = torch.tensor([0.0, 0.0]).requires_grad_()
    (g0,) = torch.autograd.grad(ContinuousBernoulli().log_prob(image(torch.tensor([0.0, 1.0])), image(near)).sum(), near)
    torch.testing.assert_close(g0, torch.tensor([-0.5, 0.5]), rtol=0, atol=1e-6)


# ---------------------------------------------------------------------------------- discretized logistic mixture
def random_out(lik, n, shape, g, scale=2.0):
    return (scale * torch.randn(n, *lik.out_shape(shape), generator=g, dtype=torch.float64))


def test_discretized_logistic_sums_to_one_over_the_256_values_of_a_grey_pixel():
    g = torch.Generator().manual_seed(0)
    for k in (1, 3):
        lik = DiscretizedLogisticMixture((1, 1, 1), mixtures=k)
        out = random_out(lik, 6, (1, 1, 1), g)  # 6 pixels' parameters
        scales = lik.sizes[0] + lik.sizes[1]  # where the log scales start
        out[:, scales:scales + k] = torch.tensor([-7.0, -4.0, -1.0, 0.0, 1.5, 3.0], dtype=torch.float64)[:, None, None, None]
        values = image(torch.arange(256, dtype=torch.float64) / 255)  # [256, 1, 1, 1]
        log_p = lik.log_prob(values, out[:, None])  # [6, 256]
        torch.testing.assert_close(log_p.exp().sum(1), torch.ones(6, dtype=torch.float64), rtol=0, atol=1e-12)
        assert torch.isfinite(log_p).all()  # even where P(k) is below float64's smallest number


def test_discretized_logistic_colour_pixels_marginalize_to_the_red_channels_mixture():
    """The joint pmf of (R, G, B) with means coupled to R and G (Salimans et al. 2017, eq. 3) sums, over the 65,536
    values of (G, B), to the grey mixture of R's own parameters, which sums to 1 over R: so the joint sums to 1 over
    its 16,777,216 values (checked at 4 values of R: the whole cube took 5 minutes on a loaded 2-core machine)."""
    g = torch.Generator().manual_seed(1)
    lik = DiscretizedLogisticMixture((3, 1, 1), mixtures=2)
    out = random_out(lik, 1, (3, 1, 1), g, scale=1.0)
    logits, mu, log_s, _ = out[0, :, 0, 0].split(lik.sizes)
    red = DiscretizedLogisticMixture((1, 1, 1), mixtures=2)
    red_out = torch.cat([logits, mu[0::3], log_s[0::3]]).reshape(1, -1, 1, 1)  # channel R of each component
    levels = torch.arange(256, dtype=torch.float64) / 255
    gb = torch.cartesian_prod(levels, levels)  # [65536, 2]
    for r in levels[[0, 3, 140, 255]]:
        x = torch.cat([r.expand(len(gb), 1), gb], 1).reshape(-1, 3, 1, 1)
        assert lik.log_prob(x, out).exp().sum().item() == pytest.approx(red.log_prob(image(r), red_out).exp().item(),
                                                                         rel=1e-10)
    assert red.log_prob(image(levels), red_out).exp().sum().item() == pytest.approx(1.0, abs=1e-12)


def hand_log_prob(x, out, lik):
    """PixelCNN++'s eq. 2-3 spelled out at 100 digits for one-pixel images: the mixture of products over channels of
    sigma(b) - sigma(a) (as sigma(-a) - sigma(-b) in the upper tail, where both are near 1), edge bins open."""
    K, C = lik.k, lik.c
    sig = lambda t: 1 / (1 + mpmath.exp(-t))  # noqa: E731
    total = []
    for xi, oi in zip(x.double(), out.double()):
        o = [mpmath.mpf(v) for v in oi[:, 0, 0].tolist()]
        logits, rest = (o[:K], o[K:]) if K > 1 else ([mpmath.mpf(0)], o)
        mu, log_s, coeffs = rest[:C * K], rest[C * K:2 * C * K], rest[2 * C * K:]
        xs = [2 * mpmath.mpf(v) - 1 for v in xi[:, 0, 0].tolist()]
        weights = [mpmath.exp(v) / sum(mpmath.exp(u) for u in logits) for v in logits]
        p = mpmath.mpf(0)
        for j in range(K):
            m = [mu[j * C + c] for c in range(C)]
            if C == 3:
                a, b, c_ = (mpmath.tanh(v) for v in coeffs[3 * j:3 * j + 3])
                m = [m[0], m[1] + a * xs[0], m[2] + b * xs[0] + c_ * xs[1]]
            prob = weights[j]
            for c in range(C):
                s = mpmath.exp(max(log_s[j * C + c], -7))
                hi = mpmath.inf if xs[c] > 0.999 else (xs[c] + mpmath.mpf(1) / 255 - m[c]) / s
                lo = -mpmath.inf if xs[c] < -0.999 else (xs[c] - mpmath.mpf(1) / 255 - m[c]) / s
                prob *= (sig(-lo) - sig(-hi)) if lo > 0 else (sig(hi) - sig(lo))
            p += prob
        total.append(float(mpmath.log(p)))
    return torch.tensor(total, dtype=torch.float64)


@pytest.mark.parametrize("channels,mixtures", [(1, 1), (1, 4), (3, 2)])
def test_discretized_logistic_matches_a_float64_hand_computation(channels, mixtures):
    g = torch.Generator().manual_seed(2)
    lik = DiscretizedLogisticMixture((channels, 1, 1), mixtures=mixtures)
    out = random_out(lik, 40, (channels, 1, 1), g)
    x = torch.randint(0, 256, (40, channels, 1, 1), generator=g).double() / 255
    x[:4] = 0.0
    x[4:8] = 1.0  # the open edge bins
    hand = hand_log_prob(x, out, lik)
    torch.testing.assert_close(lik.log_prob(x, out), hand, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(lik.log_prob(x.float(), out.float()).double(), hand, rtol=1e-5, atol=1e-5)  # float32


def test_discretized_logistic_tails_stay_exact_in_float32():
    """Bins far in a tail, where sigma(b) - sigma(a) is below 1e-5 (PixelCNN++'s code replaces it there by a density
    times the bin width) and, further out, below float32's smallest number: the log is still right."""
    lik = DiscretizedLogisticMixture((1, 1, 1))
    out = torch.tensor([[-1.0, -4.0], [-1.0, -4.0], [0.9, -6.5], [0.2, -5.0]]).reshape(4, 2, 1, 1)  # mean, log s
    x = torch.tensor([150, 255, 3, 0]).reshape(4, 1, 1, 1) / 255
    hand = hand_log_prob(x, out, lik)
    assert (hand < -20).all()  # all far out
    torch.testing.assert_close(lik.log_prob(x, out).double(), hand, rtol=2e-6, atol=0)


def test_discretized_logistic_gradients_are_finite_at_0_and_255():
    lik = DiscretizedLogisticMixture((3, 2, 2), mixtures=2)
    g = torch.Generator().manual_seed(3)
    for scale, log_s in ((1.0, None), (30.0, -7.0), (30.0, 12.0)):
        out = (scale * torch.randn(5, *lik.out_shape((3, 2, 2)), generator=g))
        if log_s is not None:
            out[:, 2 + 6:2 + 12] = log_s  # every log scale at the clamp, or far above it
        out.requires_grad_()
        x = torch.randint(0, 256, (5, 3, 2, 2), generator=g) / 255
        x[:, :, 0, 0], x[:, :, 1, 1] = 0.0, 1.0
        log_p = lik.log_prob(x, out)
        (grad,) = torch.autograd.grad(log_p.sum(), out)
        assert torch.isfinite(log_p).all() and torch.isfinite(grad).all()


def test_discretized_logistic_mean_is_within_half_a_grey_level_of_the_pmfs_mean():
    """mean() is the clamped logistic's mean in closed form; the pmf's own mean sum_k k/255 P(k) differs by the
    rounding to the grid: less than 1/510. Wide logistics agree much more closely."""
    lik = DiscretizedLogisticMixture((1, 1, 1), mixtures=3)
    out = random_out(lik, 200, (1, 1, 1), torch.Generator().manual_seed(4))
    values = torch.arange(256, dtype=torch.float64) / 255
    p = lik.log_prob(image(values), out[:, None]).exp()  # [200, 256]
    exact = (p * values).sum(1)
    assert (lik.mean(out).flatten() - exact).abs().max() < 1 / 510
    wide = torch.tensor([0.3, -1.0], dtype=torch.float64).reshape(1, 2, 1, 1)  # mean, log s: a hundred grey levels
    one = DiscretizedLogisticMixture((1, 1, 1))
    exact_wide = (one.log_prob(image(values), wide).exp() * values).sum().item()
    assert one.mean(wide).item() == pytest.approx(exact_wide, abs=1e-5)


# ------------------------------------------------------------------------------------------ dequantized Gaussian
def test_dequantized_gaussian_scores_the_dequantized_value_with_the_step_noise():
    lik = DequantizedGaussian((1, 2, 3), sigma=0.05, learn_sigma=True, mode="per-channel")
    g = torch.Generator().manual_seed(5)
    x = torch.randint(0, 256, (4, 1, 2, 3), generator=g) / 255
    out = torch.rand(7, 4, 1, 2, 3, generator=g, dtype=torch.float32)  # 7 samples of z
    with noise.batch_noise(11):
        log_p = lik.log_prob(x, out)
    with noise.batch_noise(11):
        u = noise.rand((7, 4, 1, 2, 3), batch_dim=1)
    y = ((x * 255).round() + u) / 256  # (k + u) / 256: one u per sample and pixel
    sigma = lik.sigma_min + lik.log_sigma.exp()
    ref = td.Normal(out.double(), sigma.double()).log_prob(y.double()).sum((-3, -2, -1))
    torch.testing.assert_close(log_p.double(), ref, rtol=1e-5, atol=1e-4)
    assert not torch.equal(u[0], u[1])  # each sample of z has its own u
    with noise.batch_noise(11, start=2, total=4):  # a DDP rank's slice draws that slice of the global batch's u
        torch.testing.assert_close(lik.log_prob(x[2:], out[:, 2:]), log_p[:, 2:], rtol=0, atol=0)


def test_dequantized_gaussian_integrates_to_one_and_its_bins_to_at_most_one():
    """A density on the real line: its 256 bins [k/256, (k+1)/256) hold Phi((1 - mu)/s) - Phi(-mu/s) <= 1, the 8-bit
    pmf that -log p(y) + D ln 256 bounds (Theis et al. 2016)."""
    lik = DequantizedGaussian((1, 1, 1), sigma=0.2, learn_sigma=False).double()
    t, w = legendre(200)
    for mu in (0.0, 0.5, 0.97):
        out = torch.full((len(t), 1, 1, 1), mu, dtype=torch.float64)
        log_p = Gaussian.log_prob(lik, image(t), out)  # the density itself, at y
        mass = (w * log_p.exp()).sum().item()
        normal = td.Normal(torch.tensor(mu, dtype=torch.float64), lik.log_scale().exp().double().flatten()[0])
        ends = torch.tensor([0.0, 1.0], dtype=torch.float64)
        assert mass == pytest.approx((normal.cdf(ends[1]) - normal.cdf(ends[0])).item(), abs=1e-12)
        assert mass < 1
        wide = torch.linspace(-3, 4, 20001, dtype=torch.float64)
        density = Gaussian.log_prob(lik, image(wide), torch.full((len(wide), 1, 1, 1), mu, dtype=torch.float64)).exp()
        assert torch.trapezoid(density, wide).item() == pytest.approx(1.0, abs=1e-9)


def test_dequantized_gaussian_sigma_stays_above_its_floor_and_gradients_are_finite():
    lik = DequantizedGaussian((3, 2, 2), sigma=0.1, learn_sigma=True, mode="per-pixel")
    assert lik.sigma_min == pytest.approx(1 / (256 * math.sqrt(12)))
    assert (lik.log_scale().exp() - 0.1).abs().max() < 1e-7  # starts at sigma
    with torch.no_grad():
        lik.log_sigma.fill_(-80.0)
    torch.testing.assert_close(lik.log_scale().exp(), torch.full((3, 2, 2), lik.sigma_min), rtol=1e-6, atol=0)
    x = torch.zeros(2, 3, 2, 2)
    x[1] = 1.0  # 0 and 255
    out = torch.tensor([0.0, 1.0]).reshape(2, 1, 1, 1).expand(2, 3, 2, 2).clone().requires_grad_()
    with noise.batch_noise(0):
        log_p = lik.log_prob(x, out)
    grads = torch.autograd.grad(log_p.sum(), (out, lik.log_sigma))
    assert torch.isfinite(log_p).all() and all(torch.isfinite(g_).all() for g_ in grads)
    for mode, shape in (("isotropic", (1, 1, 1)), ("per-channel", (3, 1, 1)), ("per-pixel", (3, 2, 2))):
        assert DequantizedGaussian((3, 2, 2), learn_sigma=True, mode=mode).log_sigma.shape == shape
    assert Gaussian((3, 2, 2), sigma=0.3).log_scale().exp().unique().item() == pytest.approx(0.3)  # no floor: as before
