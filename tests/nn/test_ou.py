"""OU dropout: lag-k autocorrelation e^{−k/τ}, state in state_dict, reset, τ = 0."""

from __future__ import annotations

import math

import pytest
import torch

from droplab.nn import OUDropout

UNITS, STEPS = 2000, 100  # 2e5 draws of η


def _path(tau: float, seed: int = 0) -> torch.Tensor:
    layer = OUDropout(1.0, tau, generator=torch.Generator().manual_seed(seed)).train()
    x = torch.ones(1, UNITS, dtype=torch.float64)
    out = []
    for _ in range(STEPS):
        layer(x)
        out.append(layer.eta[0].clone())
    return torch.stack(out)  # (STEPS, UNITS), stationary from the first step


@pytest.mark.parametrize("tau", [0.0, 2.0, 5.0])
@pytest.mark.parametrize("k", [1, 3])
def test_lag_k_autocorrelation(tau, k):
    eta = _path(tau)
    rho = 0.0 if tau == 0 else math.exp(-1 / tau)
    est = (eta[:-k] * eta[k:]).mean().item()  # σ = 1 and mean 0 are known: r_k = E[η_t η_{t+k}]
    # Standard error: the products η_t η_{t+k} along one AR(1) path are correlated; Bartlett's formula
    # for a known-mean lag-k autocovariance of a Gaussian AR(1) gives n·Var(r̂_k) ≈
    # (1 + ρ²)(1 + ρ^{2k})/(1 − ρ²) − 2kρ^{2k}, with n = UNITS·(STEPS − k) and the units independent.
    n = UNITS * (STEPS - k)
    bartlett = (1 + rho**2) * (1 + rho ** (2 * k)) / (1 - rho**2) - 2 * k * rho ** (2 * k)
    se = math.sqrt(bartlett / n)
    assert abs(est - rho**k) <= 5 * se, (est, rho**k, se)


def test_state_is_a_buffer_and_round_trips():
    a = OUDropout(0.3, 4.0, generator=torch.Generator().manual_seed(0)).train()
    a(torch.ones(2, 5))
    assert a.state_dict()["eta"].shape == (1, 5)
    b = OUDropout(0.3, 4.0)
    b.load_state_dict(a.state_dict())
    assert torch.equal(a.eta, b.eta)
    g1, g2 = torch.Generator().manual_seed(1), torch.Generator().manual_seed(1)
    a.generator, b.generator = g1, g2
    assert torch.equal(a(torch.ones(2, 5)), b.train()(torch.ones(2, 5)))


def test_reset_draws_from_the_stationary_law_again():
    layer = OUDropout(0.3, 4.0).train()
    layer(torch.ones(2, 5))
    layer.reset()
    assert layer.eta.numel() == 0
    layer(torch.ones(2, 7))  # a new width is fine after a reset
    assert layer.eta.shape == (1, 7)


def test_shape_change_without_reset_raises():
    layer = OUDropout(0.3, 4.0).train()
    layer(torch.ones(2, 5))
    with pytest.raises(ValueError, match="reset"):
        layer(torch.ones(2, 6))


def test_eval_does_not_advance_the_state():
    layer = OUDropout(0.3, 4.0).train()
    layer(torch.ones(2, 5))
    before = layer.eta.clone()
    x = torch.randn(2, 5)
    assert torch.equal(layer.eval()(x), x)
    assert torch.equal(layer.eta, before)
