"""Dropout transfer functions: E(f(S)) against f(E(S)) (Baldi & Sadowski 2014, §7, App. A, D, F).

What deterministic forward propagation needs is ``E(f(S)) ≈ f(E(S))`` (eq. 68). For the
rectified linear unit it is exact away from the threshold and off by ``λσ/√(2π)`` at it (eqs.
72–75); for the logistic family it holds for the normalized weighted geometric mean exactly
(``NWGM(f(S)) = f(E(S))``, eq. 39) — and, §7.1, only for that family.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor

from droplab._checks import check_positive
from droplab.ensemble.means import _weights, expectation, nwgm

#: Probit scale of the logistic, σ(S) ≈ Φ(αS) (App. F, eq. 235; the paper's choice α = 0.607).
PROBIT_ALPHA = 0.607


def _normal_cdf(z: Tensor) -> Tensor:
    return 0.5 * torch.erfc(-z / math.sqrt(2))


def _standardized(mu: Tensor | float, sigma: Tensor | float) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """μ and σ ≥ 0 as tensors of one dtype, σ with its zeros replaced by 1 (callers take the σ = 0
    limit themselves), and z = μ/σ."""
    mu = torch.as_tensor(mu, dtype=torch.get_default_dtype() if not isinstance(mu, Tensor) else None)
    sigma = torch.as_tensor(sigma, dtype=mu.dtype, device=mu.device)
    check_positive("sigma", sigma, allow_zero=True)
    safe = torch.where(sigma > 0, sigma, torch.ones_like(sigma))
    return mu, sigma, safe, mu / safe


def relu_gaussian_mean(mu: Tensor | float, sigma: Tensor | float, slope: float = 1.0) -> Tensor:
    """``E(RL(S)) = λ μ Φ(μ/σ) + λ σ φ(μ/σ)`` for S ~ N(μ, σ²), threshold 0, slope λ (eq. 72).

    ``sigma = 0`` gives the deterministic limit ``λ max(μ, 0)``.
    """
    mu, sigma, safe, z = _standardized(mu, sigma)
    smooth = mu * _normal_cdf(z) + safe * torch.exp(-0.5 * z * z) / math.sqrt(2 * math.pi)
    return slope * torch.where(sigma > 0, smooth, mu.clamp_min(0))


def relu_gaussian_second_moment(mu: Tensor | float, sigma: Tensor | float, slope: float = 1.0) -> Tensor:
    """``E(RL(S)²) = λ²[(μ² + σ²) Φ(μ/σ) + μ σ φ(μ/σ)]`` for S ~ N(μ, σ²), threshold 0, slope λ.

    The companion of eq. 72 (integrate s² against the Gaussian on s > 0); with
    :func:`relu_gaussian_mean` it gives Var(RL(S)), the exact standard error of a Monte Carlo mean
    of RL(S) (a sample variance is 0 where every draw is negative). ``sigma = 0`` gives
    ``λ² max(μ, 0)²``.
    """
    mu, sigma, safe, z = _standardized(mu, sigma)
    smooth = (mu ** 2 + safe ** 2) * _normal_cdf(z) + mu * safe * torch.exp(-0.5 * z * z) / math.sqrt(2 * math.pi)
    return slope ** 2 * torch.where(sigma > 0, smooth, mu.clamp_min(0) ** 2)


def relu_uniform_mean(low: Tensor | float, high: Tensor | float, slope: float = 1.0) -> Tensor:
    """``E(RL(S))`` for S ~ U[low, high]: ``λ (high₊² − low₊²) / (2(high − low))`` (App. A; eq. 190 when low = −high).

    For the symmetric interval [−a, a] this is ``λa/4`` while ``RL(E(S)) = 0``, the gap of eq. 190.
    """
    low, high = torch.as_tensor(low, dtype=torch.float64), torch.as_tensor(high, dtype=torch.float64)
    if (high <= low).any():
        raise ValueError(f"high must be > low for a uniform distribution, got low={low} high={high}")
    return slope * (high.clamp_min(0) ** 2 - low.clamp_min(0) ** 2) / (2 * (high - low))


def relu_finite_gap(values: Tensor, weights: Tensor | None = None, slope: float = 1.0) -> Tensor:
    """``|RL(E(S)) − E(RL(S))|`` for a finite distribution of S (App. A, eqs. 191–194).

    Equals ``λ Σ_{S_i>0} P_i S_i`` when ``E(S) ≤ 0`` and ``λ Σ_{S_i≤0} P_i |S_i|`` otherwise.
    """
    w = _weights(values, weights)
    e = (w * values).sum(-1)
    positive = (w * values.clamp_min(0)).sum(-1)
    negative = (w * (-values).clamp_min(0)).sum(-1)
    return slope * torch.where(e <= 0, positive, negative)


def logistic(s: Tensor, gain: float = 1.0, c: float = 1.0) -> Tensor:
    """``σ(S) = 1/(1 + c e^{−λS})`` (eq. 27), gain λ, offset c > 0."""
    check_positive("c", c)
    return torch.sigmoid(gain * s - math.log(c))


def logistic_derivative(s: Tensor, gain: float = 1.0, c: float = 1.0) -> Tensor:
    """``σ′(S) = λ σ(S)(1 − σ(S))`` (App. D)."""
    o = logistic(s, gain, c)
    return gain * o * (1 - o)


def logistic_gaussian_mean(mu: Tensor | float, sigma: Tensor | float, gain: float = 1.0, c: float = 1.0,
                           alpha: float = PROBIT_ALPHA) -> Tensor:
    """``E(σ(S)) ≈ σ_{λ/√(1+α²σ²)}(μ)`` for S ~ N(μ, σ²), the probit approximation (App. F, eqs. 236–242).

    That is ``1/(1 + exp(−(λμ − log c)/√(1 + α²λ²σ²)))``. The paper writes ``√(1+σ²α²)`` for λ = 1
    (eq. 241–242); scaling S by λ scales σ by λ. (Eq. 240's middle expression drops a square root:
    the variance of Z is ``σ²λ² + α⁻²`` and its standard deviation divides.)
    """
    mu = torch.as_tensor(mu, dtype=torch.get_default_dtype() if not isinstance(mu, Tensor) else None)
    sigma = torch.as_tensor(sigma, dtype=mu.dtype, device=mu.device)
    check_positive("sigma", sigma, allow_zero=True)
    check_positive("c", c)
    return torch.sigmoid((gain * mu - math.log(c)) / torch.sqrt(1 + (alpha * gain * sigma) ** 2))


def logistic_derivative_mean_first_order(mu: Tensor, gain: float = 1.0, c: float = 1.0) -> Tensor:
    """``E(σ′(S)) ≈ σ′(E(S))`` (App. D, eq. 220)."""
    return logistic_derivative(mu, gain, c)


def logistic_derivative_mean_second_order(mu: Tensor | float, var: Tensor | float, gain: float = 1.0) -> Tensor:
    """``E(σ′(S)) ≈ 1/(4 + λ²(Var(S) + E(S)²))`` (App. D, eq. 223; derived for c = 1)."""
    return 1 / (4 + gain ** 2 * (torch.as_tensor(var) + torch.as_tensor(mu) ** 2))


def nwgm_identity_gap(f: Callable[[Tensor], Tensor], s: Tensor, weights: Tensor | None = None) -> Tensor:
    """``NWGM(f(S)) − f(E(S))`` over the last dim of ``s`` (eq. 59, §7.1).

    Zero (to rounding) for every logistic ``f`` (any gain λ and offset c, eq. 39) and for
    ``(1 + tanh)/2``; nonzero in general for any other sigmoid with range (0, 1), e.g. a rescaled
    arctan or ``x/√(1+x²)``.
    """
    w = _weights(s, weights)
    return nwgm(f(s), w) - f(expectation(s, w))
