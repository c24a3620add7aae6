"""Transfer functions (§7, App. A, D, F) against quadrature and direct computation."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from droplab.ensemble import transfer as T

F64 = torch.float64
# Probabilists' Gauss–Hermite rule: E f(μ + σZ) = Σ w_k f(μ + σ z_k), exact for polynomials of degree < 400.
_Z, _W = (torch.tensor(a, dtype=F64) for a in np.polynomial.hermite_e.hermegauss(200))
_W = _W / _W.sum()


def gauss_mean(f, mu: float, sigma: float) -> float:
    return float((_W * f(mu + sigma * _Z)).sum())


@pytest.mark.parametrize("mu", [-3.0, -0.7, 0.0, 0.4, 2.5])
@pytest.mark.parametrize("sigma", [0.1, 1.0, 3.0])
def test_relu_gaussian_mean_eq72_against_quadrature(mu, sigma):
    # The kink makes quadrature converge slowly (error ~ 1e-4 at 200 nodes); an exact integral
    # via the Gaussian density on [0, ∞) with a fine trapezoid rule is the reference instead.
    s = torch.linspace(0, mu + 12 * sigma + 12, 400001, dtype=F64)
    density = torch.exp(-0.5 * ((s - mu) / sigma) ** 2) / (sigma * math.sqrt(2 * math.pi))
    ref = float(torch.trapezoid(2.0 * s * density, s))
    assert abs(float(T.relu_gaussian_mean(torch.tensor(mu, dtype=F64), sigma, slope=2.0)) - ref) < 1e-7


@pytest.mark.parametrize("mu", [-3.0, 0.0, 0.4, 2.5])
@pytest.mark.parametrize("sigma", [0.1, 1.0, 3.0])
def test_relu_gaussian_second_moment_against_quadrature(mu, sigma):
    # E RL(S)² = ∫_0^∞ λ² s² N(s; μ, σ²) ds by a fine trapezoid rule (the kink defeats Gauss–Hermite)
    s = torch.linspace(0, mu + 12 * sigma + 12, 400001, dtype=F64)
    density = torch.exp(-0.5 * ((s - mu) / sigma) ** 2) / (sigma * math.sqrt(2 * math.pi))
    ref = float(torch.trapezoid(4.0 * s * s * density, s))
    got = float(T.relu_gaussian_second_moment(torch.tensor(mu, dtype=F64), sigma, slope=2.0))
    assert abs(got - ref) < 1e-7 * max(1.0, ref)
    mu_t = torch.tensor([-1.0, 0.0, 1.5], dtype=F64)  # σ = 0: the deterministic limit λ² max(μ, 0)²
    torch.testing.assert_close(T.relu_gaussian_second_moment(mu_t, 0.0, slope=2.0), 4 * mu_t.clamp_min(0) ** 2)


def test_relu_gaussian_special_cases():
    torch.testing.assert_close(T.relu_gaussian_mean(torch.tensor(0.0, dtype=F64), 2.0),
                               torch.tensor(2 / math.sqrt(2 * math.pi), dtype=F64))  # eq. 74
    mu = torch.tensor([-1.0, 0.0, 1.5], dtype=F64)
    torch.testing.assert_close(T.relu_gaussian_mean(mu, 0.0, slope=3.0), 3 * mu.clamp_min(0))
    # eq. 75: far from the threshold the gap to RL(E(S)) vanishes
    assert abs(float(T.relu_gaussian_mean(torch.tensor(8.0, dtype=F64), 1.0)) - 8.0) < 1e-12
    with pytest.raises(ValueError, match="sigma must be finite and >= 0"):
        T.relu_gaussian_mean(0.0, -1.0)


def test_relu_uniform_eq190():
    torch.testing.assert_close(T.relu_uniform_mean(-2.0, 2.0, slope=1.5), torch.tensor(1.5 * 2 / 4, dtype=F64))
    s = torch.linspace(-1.0, 3.0, 400001, dtype=F64)
    torch.testing.assert_close(T.relu_uniform_mean(-1.0, 3.0), torch.trapezoid(s.clamp_min(0) / 4, s))
    with pytest.raises(ValueError, match="high must be > low"):
        T.relu_uniform_mean(1.0, 1.0)


def test_relu_finite_gap_eq193():
    g = torch.Generator().manual_seed(0)
    s = torch.randn(50, 9, generator=g, dtype=F64)
    w = torch.rand(50, 9, generator=g, dtype=F64)
    w = w / w.sum(-1, keepdim=True)
    direct = ((w * s).sum(-1).clamp_min(0) - (w * s.clamp_min(0)).sum(-1)).abs() * 2.0
    torch.testing.assert_close(T.relu_finite_gap(s, w, slope=2.0), direct)


def test_probit_approximation_appF_within_its_known_accuracy():
    # Over μ ∈ [−6, 6], σ ∈ [0, 5] the α = 0.607 probit approximation is within 0.0095 of the
    # exact E σ(S) (measured by quadrature; MacKay 1992 reports errors of order 1e-2).
    worst = 0.0
    for mu in torch.linspace(-6, 6, 25, dtype=F64):
        for sigma in torch.linspace(0, 5, 11, dtype=F64):
            exact = gauss_mean(torch.sigmoid, float(mu), float(sigma))
            worst = max(worst, abs(float(T.logistic_gaussian_mean(mu, sigma)) - exact))
    assert worst < 0.0096
    # gain and offset: σ(λS − log c) with S ~ N(μ, σ²) is a standard logistic of N(λμ − log c, λ²σ²)
    torch.testing.assert_close(T.logistic_gaussian_mean(torch.tensor(0.3, dtype=F64), 0.7, gain=2.0, c=3.0),
                               T.logistic_gaussian_mean(torch.tensor(0.6 - math.log(3.0), dtype=F64), 1.4))


def test_logistic_derivative_mean_approximations_appD():
    # eq. 220 is exact as σ → 0; eq. 223 matches E σ′(S) to second order at μ = 0:
    # both equal 1/4 − Var/16 + O(Var²), so the error falls ~4× when Var halves.
    mu = torch.tensor(0.8, dtype=F64)
    e220 = float(T.logistic_derivative_mean_first_order(mu))
    assert abs(e220 - gauss_mean(T.logistic_derivative, 0.8, 1e-4)) < 1e-9
    errs = [abs(float(T.logistic_derivative_mean_second_order(0.0, v)) - gauss_mean(T.logistic_derivative, 0.0,
                                                                                      math.sqrt(v)))
            for v in (0.02, 0.01)]
    assert errs[1] / errs[0] < 0.3


@settings(max_examples=100, deadline=None)
@given(st.floats(0.1, 3.0), st.floats(0.05, 20.0), st.integers(0, 10_000))
def test_nwgm_identity_holds_for_every_logistic(gain, c, seed):
    s = torch.randn(7, generator=torch.Generator().manual_seed(seed), dtype=F64)
    w = torch.rand(7, generator=torch.Generator().manual_seed(seed + 1), dtype=F64)
    w = w / w.sum()
    # The identity is computed through O = σ(S): float64 rounding of 1 − O costs ~1e-16/(1 − O) relative;
    # with |λS − log c| ≲ 16 here that is < 1e-9, seven orders below the > 1e-2 gaps of the non-logistic
    # sigmoids below.
    assert abs(float(T.nwgm_identity_gap(lambda t: T.logistic(t, gain, c), s, w))) < 1e-9  # eq. 39


def test_nwgm_identity_tanh_holds_and_other_sigmoids_fail():
    g = torch.Generator().manual_seed(0)
    s = torch.randn(200, 5, generator=g, dtype=F64) * 2
    tanh01 = T.nwgm_identity_gap(lambda t: (1 + torch.tanh(t)) / 2, s)
    assert tanh01.abs().max() < 1e-12
    for f in (lambda t: 0.5 + torch.atan(t) / math.pi, lambda t: (1 + t / torch.sqrt(1 + t * t)) / 2):
        assert T.nwgm_identity_gap(f, s).abs().max() > 1e-2  # §7.1: only logistic functions qualify
