"""Achille & Soatto 2017, App. B, Proposition 3: noise plus the IB Lagrangian disentangles.

Data ``x = (x₁, y) ~ N(0, I₂)``, observation ``x̂ = A x + ξ`` with ``A`` orthogonal and
``ξ ~ N(0, σ_ξ² I)``, task ``y = e₂ᵀx``, representation ``z = B x̂ + ε`` with ``B`` orthogonal and
``ε ~ N(0, diag(σ₁², σ₂²))``. Everything is jointly Gaussian, so both terms of the IB Lagrangian
(eq. 1) ``L = H(y|z) + β I(x̂; z)`` are exact log-determinants, computed here from the covariances
(not from the paper's simplified expressions):

* ``Cov z = (1 + σ_ξ²) I + Σ``, ``Cov(y, z) = (BA e₂)ᵀ``, ``Var(y|z) = 1 − cᵀ (Cov z)⁻¹ c`` with
  ``c = BA e₂``; ``H(y|z) = ½ log(2πe Var(y|z))``;
* ``I(x̂; z) = ½ log |Cov z| / |Σ| = ½ Σᵢ log(1 + (1 + σ_ξ²)/σᵢ²)`` (the proof's expression).

With ``C = BA`` and ``C e₂ = (sin θ, cos θ)``, ``Var(y|z) = 1 − sin²θ/(1+σ_ξ²+σ₁²) − cos²θ/(1+σ_ξ²+σ₂²)``:
for σ₂ < σ₁ the optimum is θ = 0 (B = A⁻¹ up to the sign of each output), σ₁ → ∞ (the nuisance
coordinate carries no information), and setting the σ₂-derivative to zero gives the closed form
``σ₂*² = β σ_ξ² (1 + σ_ξ²) / (1 − β (1 + σ_ξ²))`` for ``β (1 + σ_ξ²) < 1`` (→ 0 as β → 0⁺);
:func:`optimal_sigma2` returns it and :func:`solve_disentanglement` finds the optimum numerically.

The paper's proof writes ``H(y|z) = log(σ_ξ² + σ₁² sin²θ + σ₂² cos²θ)``, the error variance of one
particular estimator rather than the conditional variance; its conclusions (θ = 0, σ₁ → ∞,
σ₂ → 0) hold for the exact entropy too, with the σ₂ above.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from scipy.optimize import minimize

from droplab._checks import check_int, check_positive


def rotation(phi: float) -> np.ndarray:
    """The 2×2 rotation by ``phi`` radians."""
    c, s = math.cos(phi), math.sin(phi)
    return np.array([[c, -s], [s, c]])


def _check_orthogonal(name: str, m: np.ndarray) -> np.ndarray:
    m = np.asarray(m, dtype=np.float64)
    if m.shape != (2, 2) or not np.allclose(m @ m.T, np.eye(2), atol=1e-8):
        raise ValueError(f"{name} must be a 2×2 orthogonal matrix, got {m.tolist()}")
    return m


def _terms(c: np.ndarray, sigma_xi: float, s2: np.ndarray) -> tuple[float, float]:
    """``(H(y|z), I(x̂; z))`` from ``c = BA e₂`` and the noise variances (Cov z is diagonal)."""
    k = 1.0 + sigma_xi**2
    var = 1.0 - float((c**2 / (k + s2)).sum())
    entropy = 0.5 * math.log(2 * math.pi * math.e * var)
    info = math.inf if (s2 == 0).any() else 0.5 * float(np.log1p(k / s2).sum())
    return entropy, info


def ib_terms(B: np.ndarray, A: np.ndarray, sigma_xi: float, sigmas: tuple[float, float]) -> tuple[float, float]:
    """Exact ``(H(y|z), I(x̂; z))`` in nats for Proposition 3's Gaussian model (σᵢ = 0 allowed: no noise)."""
    B, A = _check_orthogonal("B", B), _check_orthogonal("A", A)
    check_positive("sigma_xi", sigma_xi)
    return _terms(B @ A @ np.array([0.0, 1.0]), sigma_xi, np.array(sigmas, dtype=np.float64) ** 2)


def ib_lagrangian(B: np.ndarray, A: np.ndarray, sigma_xi: float, sigmas: tuple[float, float], beta: float) -> float:
    """``L = H(y|z) + β I(x̂; z)`` (Achille & Soatto eq. 1) for Proposition 3's model."""
    entropy, info = ib_terms(B, A, sigma_xi, sigmas)
    return entropy + beta * info


def optimal_sigma2(beta: float, sigma_xi: float) -> float:
    """Closed-form optimal σ₂ at θ = 0: ``sqrt(β σ_ξ²(1+σ_ξ²)/(1 − β(1+σ_ξ²)))``; ``inf`` when β(1+σ_ξ²) ≥ 1."""
    check_positive("beta", beta)
    check_positive("sigma_xi", sigma_xi)
    k = 1.0 + sigma_xi**2
    if beta * k >= 1:
        return math.inf
    return math.sqrt(beta * sigma_xi**2 * k / (1 - beta * k))


@dataclass
class Disentanglement:
    """The numerical IB optimum over orthogonal ``B`` and noise scales, σ₂ ≤ σ₁ (the paper's convention).

    ``alignment = |(BA)₂₂| = |cos θ|``: 1 when the task coordinate of z is exactly y (disentangled).
    """

    B: np.ndarray
    sigma1: float
    sigma2: float
    alignment: float
    loss: float
    conditional_entropy: float
    information: float


def solve_disentanglement(A: np.ndarray, sigma_xi: float, beta: float, *,
                          log_sigma_bounds: tuple[float, float] = (-6.0, 7.0), n_starts: int = 6,
                          generator: torch.Generator | None = None) -> Disentanglement:
    """Minimize :func:`ib_lagrangian` over ``B = R(φ)`` (rotations; a reflection of B only flips the sign
    of a coordinate of z) and ``log σ₁, log σ₂`` within ``log_sigma_bounds`` (L-BFGS-B from ``n_starts``
    random starts drawn from ``generator``). σ → ∞ shows as σ at the upper bound ``e^{bounds[1]}``.
    """
    A = _check_orthogonal("A", A)
    check_positive("beta", beta)
    check_positive("sigma_xi", sigma_xi)
    check_int("n_starts", n_starts, minimum=1)
    lo, hi = log_sigma_bounds
    if not lo < hi:
        raise ValueError(f"log_sigma_bounds must be (low, high) with low < high, got {log_sigma_bounds}")
    u = torch.rand(n_starts, 3, generator=generator, dtype=torch.float64).numpy()
    starts = np.array([-math.pi, lo, lo]) + u * np.array([2 * math.pi, hi - lo, hi - lo])

    a_e2 = A @ np.array([0.0, 1.0])

    def objective(v: np.ndarray) -> float:
        entropy, info = _terms(rotation(v[0]) @ a_e2, sigma_xi, np.exp(2 * v[1:]))
        return entropy + beta * info

    best = None
    for v0 in starts:
        res = minimize(objective, v0, method="L-BFGS-B", bounds=[(None, None), (lo, hi), (lo, hi)],
                       options={"ftol": 1e-15, "gtol": 1e-12, "maxiter": 2000})
        if best is None or res.fun < best.fun:
            best = res
    phi, la, lb = best.x
    B = rotation(phi)
    sa, sb = math.exp(la), math.exp(lb)
    if sb > sa:  # name the noisier coordinate 1 (σ₂ ≤ σ₁), permuting z's coordinates
        B, sa, sb = B[::-1].copy(), sb, sa
    entropy, info = ib_terms(B, A, sigma_xi, (sa, sb))
    return Disentanglement(B=B, sigma1=sa, sigma2=sb, alignment=abs(float((B @ A)[1, 1])), loss=float(best.fun),
                           conditional_entropy=entropy, information=info)
