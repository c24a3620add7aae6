"""Weighted arithmetic, geometric and normalized geometric means of an ensemble (Baldi & Sadowski 2014, §8).

Every function takes ``values`` of shape ``(..., m)`` — ``m`` outputs ``O_1..O_m`` of the ensemble
members — and optional probability ``weights`` ``P_1..P_m`` of the same shape (uniform when
omitted), and reduces the last dim. Geometric means are computed in log space
(``G = exp Σ P_i log O_i``), so values near 0 or 1 do not underflow; a member with weight 0
contributes nothing even when its value is 0 or 1.

Extreme cases (§8, "Extreme cases"): a value exactly 1 with nonzero weight makes ``G′ = 0`` and
``NWGM = 1``; a value exactly 0 with nonzero weight makes ``G = 0`` and ``NWGM = 0``; when both
occur ``NWGM = 0/0`` is undefined and is returned as NaN.

The approximations and bounds of §8 and Appendix B are functions of ``E`` and ``V`` (broadcasting
tensors or floats) named after what they are, each citing its equation.

>>> s = summary(torch.tensor([0.622459, 0.731059], dtype=torch.float64))
>>> [round(float(v), 6) for v in (s.expectation, s.geometric_mean, s.complement_geometric_mean, s.nwgm)]
[0.676759, 0.674577, 0.318648, 0.679179]
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from droplab._checks import check_in_range, check_unit_interval_values, check_weights

#: Argmax on [0, 0.5] of the variance-free bound E(1−E)|1−2E|/(1−2E(1−E)) (eq. 87, Fig. 8.1).
BOUND_ARGMAX_VARIANCE_FREE = 0.5 - math.sqrt(math.sqrt(5) - 2) / 2
#: Argmax on [0, 0.5] of the simple bound 2E(1−E)|1−2E| (eq. 87, Fig. 8.2).
BOUND_ARGMAX_SIMPLE = 0.5 - math.sqrt(3) / 6


def _weights(values: Tensor, weights: Tensor | None) -> Tensor:
    if not isinstance(values, Tensor) or not values.is_floating_point() or values.dim() == 0 or values.shape[-1] == 0:
        raise ValueError("values must be a floating tensor of shape (..., m) with m >= 1 members (members last), "
                         f"got {type(values).__name__} {tuple(getattr(values, 'shape', ()))}")
    if weights is None:
        return torch.full_like(values, 1.0 / values.shape[-1])
    weights = torch.as_tensor(weights, dtype=values.dtype, device=values.device)
    check_weights("weights", weights, values)
    return weights.expand_as(values)


def expectation(values: Tensor, weights: Tensor | None = None) -> Tensor:
    """Weighted arithmetic mean ``E = Σ P_i O_i`` (§8)."""
    w = _weights(values, weights)
    return (w * values).sum(-1)


def variance(values: Tensor, weights: Tensor | None = None) -> Tensor:
    """Weighted variance ``V = Σ P_i (O_i − E)²`` (§8), computed around the mean (no cancellation)."""
    w = _weights(values, weights)
    mean = (w * values).sum(-1, keepdim=True)
    return (w * (values - mean) ** 2).sum(-1)


def log_geometric_mean(values: Tensor, weights: Tensor | None = None) -> Tensor:
    """``log G = Σ P_i log O_i`` (eq. 35); −inf when some ``O_i = 0`` has nonzero weight."""
    w = _weights(values, weights)
    if (values < 0).any():
        raise ValueError("values must be >= 0 for a geometric mean, got a negative value")
    return torch.xlogy(w, values).sum(-1)


def geometric_mean(values: Tensor, weights: Tensor | None = None) -> Tensor:
    """Weighted geometric mean ``G = Π O_i^{P_i}`` (eq. 35)."""
    return log_geometric_mean(values, weights).exp()


def complement_geometric_mean(values: Tensor, weights: Tensor | None = None) -> Tensor:
    """Weighted geometric mean of the complements ``G′ = Π (1 − O_i)^{P_i}`` (eq. 36)."""
    check_unit_interval_values("values", values)
    return log_geometric_mean(1 - values, weights).exp()


def nwgm(values: Tensor, weights: Tensor | None = None) -> Tensor:
    """Normalized weighted geometric mean ``NWGM = G / (G + G′)`` (eq. 37), as ``sigmoid(log G − log G′)``.

    NaN when both a 0 and a 1 have nonzero weight (0/0, §8 "Extreme cases").
    """
    check_unit_interval_values("values", values)
    log_g = log_geometric_mean(values, weights)
    log_gc = log_geometric_mean(1 - values, weights)
    return torch.sigmoid(log_g - log_gc)


def mean_absolute_deviation(values: Tensor, weights: Tensor | None = None) -> Tensor:
    """``Σ P_i |O_i − E|``: the expected error of one member drawn with probability ``P_i`` as an estimate
    of E — the "random sample" the NWGM is compared with in §8 (it scales like √V, the NWGM's error like V)."""
    w = _weights(values, weights)
    return (w * (values - (w * values).sum(-1, keepdim=True)).abs()).sum(-1)


@dataclass(frozen=True)
class EnsembleSummary:
    """The §8 means of a batch of value-sets; every field has the batch shape ``(...)``."""

    expectation: Tensor
    geometric_mean: Tensor
    complement_geometric_mean: Tensor
    nwgm: Tensor
    variance: Tensor


def summary(values: Tensor, weights: Tensor | None = None) -> EnsembleSummary:
    """E, G, G′, NWGM and V of ``values`` ``(..., m)`` with optional probability ``weights`` (§8)."""
    check_unit_interval_values("values", values)
    w = _weights(values, weights)
    log_g = log_geometric_mean(values, w)
    log_gc = log_geometric_mean(1 - values, w)
    return EnsembleSummary(expectation=expectation(values, w), geometric_mean=log_g.exp(),
                           complement_geometric_mean=log_gc.exp(), nwgm=torch.sigmoid(log_g - log_gc),
                           variance=variance(values, w))


# ---------------------------------------------------------------- second-order approximations
def _moments(e: Tensor | float, v: Tensor | float | None = None) -> None:
    """The domain of E and V: an ensemble of values in [0, 1] has 0 ≤ E ≤ 1 and 0 ≤ V ≤ E(1 − E) ≤ 1/4.

    V is checked against 1/4 (not E(1 − E)) so that unbiased Monte Carlo variances pass.
    """
    check_in_range("E", e, 0.0, 1.0)
    if v is not None:
        check_in_range("V", v, 0.0, 0.25)


def geometric_mean_second_order(e: Tensor | float, v: Tensor | float) -> Tensor | float:
    """``G ≈ E − V`` (eqs. 84, 93): expansion of the geometric mean around 0.5."""
    _moments(e, v)
    return e - v


def nwgm_second_order(e: Tensor | float, v: Tensor | float) -> Tensor | float:
    """``NWGM ≈ (E − V)/(1 − 2V)`` (eqs. 84, 95): expansion around 0.5."""
    _moments(e, v)
    return (e - v) / (1 - 2 * v)


def nwgm_error_second_order(e: Tensor | float, v: Tensor | float) -> Tensor | float:
    """``E − NWGM ≈ V(1 − 2E)/(1 − 2V)`` (eqs. 85, 96): signed error of the expansion around 0.5."""
    _moments(e, v)
    return v * (1 - 2 * e) / (1 - 2 * v)


def nwgm_second_order_mean(e: Tensor | float, v: Tensor | float) -> Tensor | float:
    """``NWGM ≈ (E − V/(2E)) / (1 − V/(2E(1−E)))`` (App. B, eq. 202): expansion around the mean.

    Undefined (NaN or ±inf) at E ∈ {0, 1}, where the expansion around the mean does not exist.
    """
    _moments(e, v)
    return (e - v / (2 * e)) / (1 - 0.5 * v / (e * (1 - e)))


def nwgm_second_order_boundary(e: Tensor | float, v: Tensor | float) -> Tensor | float:
    """``NWGM ≈ (2E − V)/(2 − 2V)`` (App. B, eqs. 207, 211): expansion around 1 or 0.

    Around 0 the roles of G and G′ swap and give the same NWGM; eq. 211 as printed,
    ``(1 − E − V/2)/(1 − V)``, is its complement ``G′/(G + G′)``.
    """
    _moments(e, v)
    return (2 * e - v) / (2 - 2 * v)


def nwgm_error_boundary(e: Tensor | float, v: Tensor | float) -> Tensor | float:
    """``E − NWGM ≈ −(E − 1/2) V/(1 − V)`` (App. B, eq. 208)."""
    _moments(e, v)
    return -(e - 0.5) * v / (1 - v)


# ---------------------------------------------------------------- bounds on |E − NWGM|
def nwgm_bound_variance(e: Tensor | float, v: Tensor | float) -> Tensor | float:
    """Variance-dependent bound ``|E − NWGM| ≲ E(1−E)|1−2E|/(1−2V)`` (eq. 87, "bound 1" of Fig. 9.3)."""
    _moments(e, v)
    return e * (1 - e) * abs(1 - 2 * e) / (1 - 2 * v)


def nwgm_bound_variance_free(e: Tensor | float) -> Tensor | float:
    """Variance-free bound ``|E − NWGM| ≲ E(1−E)|1−2E|/(1−2E(1−E))`` (eq. 87, Fig. 8.1).

    Maximal on [0, 0.5] at :data:`BOUND_ARGMAX_VARIANCE_FREE`.
    """
    _moments(e)
    q = e * (1 - e)
    return q * abs(1 - 2 * e) / (1 - 2 * q)


def nwgm_bound_simple(e: Tensor | float) -> Tensor | float:
    """Loosest bound ``|E − NWGM| ≲ 2E(1−E)|1−2E|`` (eq. 87, Fig. 8.2); maximal at :data:`BOUND_ARGMAX_SIMPLE`."""
    _moments(e)
    return 2 * e * (1 - e) * abs(1 - 2 * e)


def nwgm_bound_boundary_variance(v: Tensor | float) -> Tensor | float:
    """``|E − NWGM| ≲ V/(2(1 − V))`` (App. B, eq. 209), from the expansion around 0 or 1."""
    check_in_range("V", v, 0.0, 0.25)
    return 0.5 * v / (1 - v)


def nwgm_bound_boundary(e: Tensor | float) -> Tensor | float:
    """``|E − NWGM| ≲ |E − 1/2| E(1−E)/(1 − E(1−E)) ≤ 1/6`` (App. B, eq. 210)."""
    _moments(e)
    q = e * (1 - e)
    return abs(e - 0.5) * q / (1 - q)


# ---------------------------------------------------------------- exact inequalities
def cartwright_field_bounds(values: Tensor, weights: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """Lower and upper bounds ``V/(2 max O) ≤ E − G ≤ V/(2 min O)`` (Cartwright–Field, eq. 78).

    ``max`` and ``min`` run over the members with nonzero weight; values must be > 0.
    """
    w = _weights(values, weights)
    if (values[w > 0] <= 0).any():
        raise ValueError("values must be > 0 for the Cartwright–Field bounds, got a value <= 0 with nonzero weight")
    v = variance(values, w)
    inf = torch.tensor(math.inf, dtype=values.dtype, device=values.device)
    hi = torch.where(w > 0, values, -inf).amax(-1)
    lo = torch.where(w > 0, values, inf).amin(-1)
    return v / (2 * hi), v / (2 * lo)


def ky_fan_log_ratios(values: Tensor, weights: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """``log(G/G′)`` and ``log(E/E′)``: Ky Fan (eq. 81) says the first ≤ the second when all O ≤ 1/2.

    For consistently high sets (all O ≥ 1/2, eq. 82) the order reverses. Since
    ``NWGM = sigmoid(log G/G′)`` and ``E = sigmoid(log E/E′)``, the order of the log-ratios is the
    order of NWGM and E.
    """
    check_unit_interval_values("values", values)
    w = _weights(values, weights)
    e = expectation(values, w)
    return log_geometric_mean(values, w) - log_geometric_mean(1 - values, w), torch.log(e) - torch.log1p(-e)
