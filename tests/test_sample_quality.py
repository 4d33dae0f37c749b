"""Sample-quality metrics on features: FID, KID and IS against closed forms and float64 hand computations, precision/
recall/density/coverage against the authors' prdc package and their published Gaussian figures, and the behaviour
the metrics exist for (blurry against collapsed generators)."""
import numpy as np
import pytest
import scipy.linalg
import torch

from vaelab.eval.prdc import nearest_neighbour_radii, prdc
from vaelab.eval.quality import fid, inception_score, kid, scores


def gaussian(n: int, d: int, seed: int, scale: float = 1.0, shift: float = 0.0) -> torch.Tensor:
    return torch.randn(n, d, generator=torch.Generator().manual_seed(seed), dtype=torch.float64) * scale + shift


def fid_by_hand(a: np.ndarray, b: np.ndarray) -> float:
    """Heusel et al. 2017, eq. 6, with scipy's matrix square root, float64."""
    mu_a, mu_b = a.mean(0), b.mean(0)
    s_a, s_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    root = scipy.linalg.sqrtm(s_a @ s_b).real
    return float(((mu_a - mu_b) ** 2).sum() + np.trace(s_a + s_b - 2 * root))


def test_fid_is_the_frechet_distance_of_the_fitted_gaussians():
    a = gaussian(3000, 16, 0)
    b = gaussian(2500, 16, 1) @ torch.linspace(0.5, 1.5, 256, dtype=torch.float64).reshape(16, 16) / 4 + 0.3
    assert fid(a, b) == pytest.approx(fid_by_hand(a.numpy(), b.numpy()), rel=1e-6)  # float64 both: far below 1e-4
    shift = torch.linspace(-1, 1, 16, dtype=torch.float64)
    assert fid(a, a + shift) == pytest.approx((shift**2).sum().item(), rel=1e-8)  # the same covariance
    assert abs(fid(a, a)) < 1e-8


def test_kid_is_the_unbiased_mmd_with_the_cubic_kernel():
    """With at most 1000 points per set every subset is the whole set, so KID is one unbiased MMD^2 (Binkowski et
    al. 2018, eq. 4) and its spread over subsets 0."""
    a, b = gaussian(300, 8, 2), gaussian(300, 8, 3, scale=1.2, shift=0.1)
    k = lambda x, y: (x @ y.T / 8 + 1) ** 3  # noqa: E731
    m = len(a)
    off = lambda kxx: (kxx.sum() - kxx.diagonal().sum()) / (m * (m - 1))  # noqa: E731
    mmd = off(k(a, a)) + off(k(b, b)) - 2 * k(a, b).mean()
    mean, std = kid(a, b)
    assert mean == pytest.approx(mmd.item(), rel=1e-9) and std == 0
    assert abs(kid(a, gaussian(300, 8, 4))[0]) < 0.3 * mean  # one distribution: about 0
    torch.manual_seed(0)
    mean, std = kid(a, gaussian(600, 8, 5, scale=1.2, shift=0.1), subsets=50, subset_size=200)
    assert mean == pytest.approx(mmd.item(), rel=0.5) and 0 < std < mean  # subsets of 200: the same, less sure


def test_inception_score_closed_forms():
    """exp E[KL(p(y|x) || p(y))]: 1 when every sample has the same class distribution; when each sample is sure of
    its class, exp(entropy of the class frequencies) in each of the 10 random splits: K for equally frequent classes,
    up to the splits' sampling (400 samples a split here), 1 for a single class."""
    torch.manual_seed(0)
    assert inception_score(torch.zeros(4000, 7, dtype=torch.float64))[0] == pytest.approx(1)
    sure = 60 * torch.nn.functional.one_hot(torch.arange(4000) % 8, 8).double()
    mean, std = inception_score(sure)
    assert mean == pytest.approx(8, rel=0.02) and std < 0.1
    assert inception_score(sure[:1].expand(4000, 8))[0] == pytest.approx(1)


def test_nearest_neighbour_radii_exclude_the_point_itself():
    x = torch.tensor([[0.0], [1.0], [3.0], [7.0], [7.0]], dtype=torch.float64)
    radii = nearest_neighbour_radii(x, (1, 2), chunk=2)
    assert radii[1].tolist() == [1, 1, 2, 0, 0]  # a duplicate is a neighbour at distance 0
    assert radii[2].tolist() == [3, 2, 3, 4, 4]


@pytest.mark.parametrize("k", [3, 5])
def test_prdc_equals_the_authors_package(k):
    from prdc import compute_prdc

    rng = np.random.default_rng(k)
    real, fake = rng.normal(size=(700, 24)), rng.normal(size=(650, 24)) * 1.2 + 0.2
    theirs = compute_prdc(real, fake, k)
    ours = prdc(torch.from_numpy(real), torch.from_numpy(fake), k, k, chunk=128)  # chunks of 128 rows
    for key in ("precision", "recall", "density", "coverage"):
        assert ours[key] == pytest.approx(float(theirs[key]), rel=1e-12), key


def test_prdc_on_one_gaussian_small():
    """2,000 against 2,000 draws of N(0, I) in 1,000 dimensions, k = 5: the authors' code gives the same figures, and
    they sit where one distribution puts them: density about 1 (it counts balls, whose number varies much between
    draws in 1,000 dimensions: 0.97 and 1.12 with two seeds) and coverage about 1 - 2^-k (Naeem et al. 2020, §3.2
    and 4), precision about recall."""
    from prdc import compute_prdc

    real, fake = gaussian(2000, 1000, 10), gaussian(2000, 1000, 11)
    ours = prdc(real, fake, 5, 5)
    theirs = compute_prdc(real.numpy(), fake.numpy(), 5)
    assert all(ours[key] == pytest.approx(float(theirs[key]), rel=1e-12) for key in ours)
    assert ours["density"] == pytest.approx(1, abs=0.2) and ours["coverage"] == pytest.approx(1 - 2**-5, abs=0.015)
    assert abs(ours["precision"] - ours["recall"]) < 0.05


@pytest.mark.slow
def test_prdc_on_one_gaussian_matches_the_published_figures():
    """Naeem et al.'s README: 10,000 against 10,000 draws of N(0, I) in 1,000 dimensions, k = 5, give precision
    0.4772, recall 0.4705, density 1.0555, coverage 0.9735 for their seed; other draws move these by about a hundredth
    (density by a few: it counts balls; measured here with seeds 0 and 1: 0.4871, 0.4689, 1.0172, 0.9703)."""
    ours = prdc(gaussian(10_000, 1000, 0), gaussian(10_000, 1000, 1), 5, 5)
    published = {"precision": 0.4772, "recall": 0.4705, "density": 1.0555, "coverage": 0.9735}
    spread = {"precision": 0.02, "recall": 0.02, "density": 0.05, "coverage": 0.01}
    for key, value in published.items():
        assert ours[key] == pytest.approx(value, abs=spread[key]), key


def modes(n: int, seed: int, which: range = range(10), scale: float = 0.3) -> torch.Tensor:
    """Features of a 10-mode data set: n points, equally from the modes in ``which`` (centres 3 apart)."""
    g = torch.Generator().manual_seed(seed)
    centres = 3 * torch.eye(10, 16, dtype=torch.float64)
    pick = torch.tensor(which)[torch.arange(n) % len(which)]
    return centres[pick] + scale * torch.randn(n, 16, generator=g, dtype=torch.float64)


def test_precision_and_recall_separate_blurry_from_collapsed_generators():
    """A blurry generator spreads its samples around every mode (high recall, low precision); a collapsed one puts
    them tightly on 2 of 10 modes (high precision, low recall and coverage). FID ranks both below a faithful one."""
    real = modes(1000, 0)
    faithful, blurry = scores(real, modes(1000, 1)), scores(real, modes(1000, 2, scale=0.9))
    collapsed = scores(real, modes(1000, 3, which=range(2), scale=0.15))
    assert blurry["recall"] > 0.8 and blurry["precision"] < 0.2
    assert collapsed["precision"] > 0.9 and collapsed["recall"] < 0.3 and collapsed["coverage"] < 0.3
    assert collapsed["precision"] > blurry["precision"] and blurry["recall"] > collapsed["recall"]
    assert faithful["precision"] > 0.7 and faithful["recall"] > 0.7 and faithful["coverage"] > 0.9  # 0.79, 0.78, 0.97
    assert faithful["fid"] < 0.1 * min(blurry["fid"], collapsed["fid"])
