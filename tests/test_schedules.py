from types import SimpleNamespace

import pytest
import torch

from vaelab.config import KLConfig
from vaelab.objectives import beta_at, capacity_at, kl_penalty


def test_constant_and_linear_warmup():
    assert beta_at(KLConfig(beta=4.0), 123, 1000) == 4.0
    cfg = KLConfig(beta=2.0, schedule="linear", warmup_steps=100)
    assert [beta_at(cfg, s, 1000) for s in (0, 50, 100, 500)] == [0.0, 1.0, 2.0, 2.0]


def test_cyclical_annealing_repeats_its_ramp():
    cfg = KLConfig(beta=1.0, schedule="cyclical", cycles=4, ratio=0.5)  # period 250 over 1000 steps
    assert beta_at(cfg, 0, 1000) == 0.0
    assert beta_at(cfg, 62, 1000) == pytest.approx(62 / 125)
    assert beta_at(cfg, 125, 1000) == 1.0 and beta_at(cfg, 249, 1000) == 1.0
    assert beta_at(cfg, 250, 1000) == 0.0 and beta_at(cfg, 750 + 62, 1000) == pytest.approx(62 / 125)


def test_cyclical_period_is_rounded_up_so_no_extra_cycle_starts_at_the_end():
    cfg = KLConfig(beta=1.0, schedule="cyclical", cycles=3, ratio=0.5)  # 1000 / 3: period 334, not 333
    betas = [beta_at(cfg, s, 1000) for s in range(1000)]
    assert [s for s, b in enumerate(betas) if b == 0.0] == [0, 334, 668]
    assert betas[-1] == 1.0


def test_unknown_schedule_names_the_known_ones():
    with pytest.raises(LookupError, match="cyclical"):
        beta_at(KLConfig(schedule="cosine"), 0, 10)


def terms(kl, kl_per_dim=None, kl_layers=None, layer_dims=None):
    return SimpleNamespace(kl=kl, kl_per_dim=kl_per_dim, kl_layers=kl_layers, layer_dims=layer_dims)


def test_free_bits_stop_the_gradient_of_dimensions_below_the_floor():
    kl_per_dim = torch.tensor([[0.1, 2.0], [0.3, 4.0]], requires_grad=True)  # batch means 0.2 and 3.0
    penalty, _ = kl_penalty(KLConfig(free_bits=0.5), terms(kl_per_dim.sum(-1), kl_per_dim), 0, 10)
    assert penalty.item() == pytest.approx(0.5 + 3.0)  # floors and means of a few small floats: no long sum
    penalty.backward()
    assert torch.equal(kl_per_dim.grad[:, 0], torch.zeros(2)) and (kl_per_dim.grad[:, 1] > 0).all()


def test_free_bits_without_a_per_dimension_kl_floor_each_layer_at_lambda_per_dimension():
    low, high = torch.tensor([1.0, 2.0], requires_grad=True), torch.tensor([30.0, 50.0], requires_grad=True)
    penalty, _ = kl_penalty(KLConfig(free_bits=0.5), terms(low + high, None, [low, high], [8, 40]), 0, 10)
    assert penalty.item() == pytest.approx(0.5 * 8 + 40.0)  # layer 1 under its 4-nat floor, layer 2 above 20 (exact)
    penalty.backward()
    assert torch.equal(low.grad, torch.zeros(2)) and (high.grad > 0).all()


def test_capacity_targets_a_rising_kl():
    cfg = KLConfig(capacity=25.0, capacity_steps=100, gamma=10.0)
    assert capacity_at(cfg, 40) == pytest.approx(10.0) and capacity_at(cfg, 1000) == 25.0
    kl = torch.tensor([12.0, 14.0])
    penalty, info = kl_penalty(cfg, terms(kl), 40, 1000)
    assert info == {"capacity": pytest.approx(10.0)}
    assert penalty.item() == pytest.approx(10.0 * 3.0)  # exact in float32
