"""Proposition 3 (Achille & Soatto App. B): exact Gaussian IB terms and the numerical optimum."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from droplab.information import ib_lagrangian, ib_terms, optimal_sigma2, rotation, solve_disentanglement

A = rotation(0.7) @ np.diag([1.0, -1.0])  # an orthogonal A with a reflection
SIGMA_XI = 0.5


def _reference_terms(B, A, sigma_xi, sigmas):
    """Independent ground truth: the joint covariance of (x, ξ, ε) pushed through the linear maps,
    then H(y|z) = ½ log(2πe |Σ_(y,z)| / |Σ_z|) and I(x̂; z) = ½ log(|Σ_x̂| |Σ_z| / |Σ_(x̂,z)|)."""
    s = np.diag([1, 1, sigma_xi**2, sigma_xi**2, sigmas[0] ** 2, sigmas[1] ** 2])  # cov of (x, ξ, ε)
    xhat = np.hstack([A, np.eye(2), np.zeros((2, 2))])
    z = np.hstack([B @ A, B, np.eye(2)])
    y = np.array([[0, 1, 0, 0, 0, 0.0]])
    cov = lambda m: m @ s @ m.T  # noqa: E731
    h = 0.5 * math.log(2 * math.pi * math.e) + 0.5 * math.log(np.linalg.det(cov(np.vstack([y, z])))
                                                               / np.linalg.det(cov(z)))
    i = 0.5 * math.log(np.linalg.det(cov(xhat)) * np.linalg.det(cov(z)) / np.linalg.det(cov(np.vstack([xhat, z]))))
    return h, i


@pytest.mark.parametrize("phi, sigmas", [(0.0, (2.0, 0.3)), (1.1, (0.4, 0.4)), (-2.5, (5.0, 0.01))])
def test_ib_terms_match_joint_covariance_log_determinants(phi, sigmas):
    got = ib_terms(rotation(phi), A, SIGMA_XI, sigmas)
    ref = _reference_terms(rotation(phi), A, SIGMA_XI, sigmas)
    assert got == pytest.approx(ref, rel=1e-9, abs=1e-12)


def test_without_noise_every_B_is_equivalent():
    """Proposition 3 (i): with ε = 0, H(y|z) = ½ log(2πe σ_ξ²/(1+σ_ξ²)) whatever B."""
    values = [ib_terms(rotation(phi), A, SIGMA_XI, (0.0, 0.0))[0] for phi in np.linspace(-3, 3, 13)]
    expected = 0.5 * math.log(2 * math.pi * math.e * SIGMA_XI**2 / (1 + SIGMA_XI**2))
    assert np.allclose(values, expected, rtol=0, atol=1e-12)


@pytest.mark.parametrize("beta", [0.02, 0.2, 0.6])
def test_numeric_optimum_is_disentangled_with_closed_form_sigma2(beta):
    """Proposition 3 (ii): B = A⁻¹ (|cos θ| = 1), σ₁ at the upper bound (→ ∞), σ₂ = closed form."""
    r = solve_disentanglement(A, SIGMA_XI, beta, generator=torch.Generator().manual_seed(1))
    assert r.alignment == pytest.approx(1.0, abs=1e-7)
    assert r.sigma1 == pytest.approx(math.exp(7.0), rel=1e-9)
    assert r.sigma2 == pytest.approx(optimal_sigma2(beta, SIGMA_XI), rel=1e-4)
    assert np.allclose(np.abs(r.B @ A), np.eye(2), atol=1e-6)


def test_closed_form_sigma2_is_stationary_by_finite_differences():
    beta, h = 0.1, 1e-5
    s2 = optimal_sigma2(beta, SIGMA_XI)
    loss = lambda s: ib_lagrangian(np.linalg.inv(A), A, SIGMA_XI, (1e8, s), beta)  # noqa: E731
    slope = (loss(s2 + h) - loss(s2 - h)) / (2 * h)
    curvature = (loss(s2 + h) - 2 * loss(s2) + loss(s2 - h)) / h**2
    assert abs(slope) < 1e-6 and curvature > 0
    assert optimal_sigma2(1e-6, SIGMA_XI) < optimal_sigma2(1e-3, SIGMA_XI) < s2  # σ₂ → 0 as β → 0⁺


def test_bad_input():
    with pytest.raises(ValueError, match="beta must be finite and > 0"):
        solve_disentanglement(A, SIGMA_XI, -0.1)
    with pytest.raises(ValueError, match="A must be a 2×2 orthogonal matrix"):
        solve_disentanglement(np.eye(2) * 2, SIGMA_XI, 0.1)
