"""Means, approximations and bounds of Baldi & Sadowski §8 and App. B."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from droplab.ensemble import means as M

F64 = torch.float64


def sets(low: float, high: float, max_size: int = 12):
    """Random value-sets in [low, high] with random probability weights."""
    values = st.lists(st.floats(low, high, allow_nan=False), min_size=1, max_size=max_size)
    return values.flatmap(lambda v: st.tuples(
        st.just(torch.tensor(v, dtype=F64)),
        st.lists(st.floats(0.01, 1.0), min_size=len(v), max_size=len(v)).map(
            lambda w: torch.tensor(w, dtype=F64) / sum(w))))


def test_section8_numeric_example_to_six_decimals():
    s = M.summary(torch.tensor([0.622459, 0.731059], dtype=F64))
    assert round(float(s.expectation), 6) == 0.676759
    assert round(float(s.geometric_mean), 6) == 0.674577
    assert round(float(s.complement_geometric_mean), 6) == 0.318648
    assert round(float(s.nwgm), 6) == 0.679179
    # the "third order" case of eq. 88: NWGM − E ≥ E − G
    assert round(float(s.expectation - s.geometric_mean), 6) == 0.002182
    assert round(float(s.nwgm - s.expectation), 6) == 0.002420


def test_summary_matches_direct_products_with_weights():
    g = torch.Generator().manual_seed(0)
    v = torch.rand(3, 5, 7, generator=g, dtype=F64) * 0.98 + 0.01
    w = torch.rand(3, 5, 7, generator=g, dtype=F64)
    w = w / w.sum(-1, keepdim=True)
    s = M.summary(v, w)
    G = (v ** w).prod(-1)
    Gc = ((1 - v) ** w).prod(-1)
    E = (w * v).sum(-1)
    torch.testing.assert_close(s.geometric_mean, G)
    torch.testing.assert_close(s.complement_geometric_mean, Gc)
    torch.testing.assert_close(s.nwgm, G / (G + Gc))
    torch.testing.assert_close(s.expectation, E)
    torch.testing.assert_close(s.variance, (w * v * v).sum(-1) - E ** 2)
    assert s.nwgm.shape == (3, 5)


def test_log_space_does_not_underflow():
    # 2000 values of 1e-3: the direct product underflows to 0, the log-space G is exactly 1e-3.
    v = torch.full((2000,), 1e-3, dtype=F64)
    w = torch.full((2000,), 1 / 2000, dtype=F64)
    assert float((v ** (1.0 / 1)).prod()) == 0.0
    torch.testing.assert_close(M.geometric_mean(v, w), torch.tensor(1e-3, dtype=F64))
    torch.testing.assert_close(M.nwgm(v), torch.tensor(1e-3, dtype=F64))


def test_extreme_cases_section8():
    v = torch.tensor([[1.0, 0.3, 0.2], [0.0, 0.3, 0.2], [0.0, 1.0, 0.5], [1.0, 0.0, 0.5]], dtype=F64)
    s = M.summary(v)
    assert s.complement_geometric_mean[0] == 0 and s.nwgm[0] == 1
    assert s.geometric_mean[1] == 0 and s.nwgm[1] == 0
    assert torch.isnan(s.nwgm[2:]).all()
    # a 0 or 1 with zero weight is ignored
    w = torch.tensor([0.0, 0.5, 0.5], dtype=F64)
    torch.testing.assert_close(M.nwgm(v[2], w), M.nwgm(torch.tensor([1.0, 0.5], dtype=F64),
                                                        torch.tensor([0.5, 0.5], dtype=F64)))


def test_equal_nwgm_and_expectation_example():
    s = M.summary(torch.tensor([0.25, 0.75], dtype=F64))
    torch.testing.assert_close(s.nwgm, torch.tensor(0.5, dtype=F64))
    torch.testing.assert_close(s.geometric_mean, s.complement_geometric_mean)


@settings(max_examples=200, deadline=None)
@given(sets(0.001, 0.999))
def test_exact_inequalities_hold(vw):
    v, w = vw
    s = M.summary(v, w)
    tol = 1e-12
    assert s.geometric_mean <= s.expectation + tol  # eq. 77
    assert s.complement_geometric_mean <= 1 - s.expectation + tol
    assert s.geometric_mean <= s.nwgm + tol  # property 2
    assert s.variance <= s.expectation * (1 - s.expectation) + tol  # eq. 212
    lo, hi = M.cartwright_field_bounds(v, w)  # eq. 78
    gap = s.expectation - s.geometric_mean
    assert lo - 1e-12 <= gap <= hi + 1e-12


@settings(max_examples=200, deadline=None)
@given(sets(0.001, 0.5))
def test_ky_fan_consistently_low(vw):
    v, w = vw
    s = M.summary(v, w)
    lg, le = M.ky_fan_log_ratios(v, w)
    assert lg <= le + 1e-12  # eq. 81
    assert s.geometric_mean <= s.nwgm + 1e-12 and s.nwgm <= s.expectation + 1e-12


@settings(max_examples=200, deadline=None)
@given(sets(0.5, 0.999))
def test_ky_fan_consistently_high(vw):
    v, w = vw
    s = M.summary(v, w)
    lg, le = M.ky_fan_log_ratios(v, w)
    assert lg >= le - 1e-12  # eq. 82
    assert s.nwgm >= s.expectation - 1e-12


@settings(max_examples=200, deadline=None)
@given(st.floats(0.0, 1.0), st.floats(0.0, 1.0))
def test_bernoulli_variable_attains_eq87_chain(e, frac):
    # Eq. 87's chain: approx ≤ bound 1 ≤ bound 2 ≤ bound 3 for every admissible V ≤ E(1−E).
    v = frac * e * (1 - e)
    approx = abs(M.nwgm_error_second_order(e, v))
    b1, b2, b3 = M.nwgm_bound_variance(e, v), M.nwgm_bound_variance_free(e), M.nwgm_bound_simple(e)
    assert approx <= b1 + 1e-15 and b1 <= b2 + 1e-15 and b2 <= b3 + 1e-15
    assert M.nwgm_bound_boundary(e) <= 1 / 6 + 1e-15  # eq. 210
    assert M.nwgm_bound_boundary_variance(v) <= M.nwgm_bound_boundary_variance(e * (1 - e)) + 1e-15  # eq. 209


def test_bound_maxima_figures_8_1_and_8_2():
    e = torch.linspace(0, 0.5, 200001, dtype=F64)
    for fn, argmax in ((M.nwgm_bound_variance_free, M.BOUND_ARGMAX_VARIANCE_FREE),
                       (M.nwgm_bound_simple, M.BOUND_ARGMAX_SIMPLE)):
        assert abs(float(e[fn(e).argmax()]) - argmax) < 1e-5
    assert abs(M.BOUND_ARGMAX_VARIANCE_FREE - (0.5 - math.sqrt(math.sqrt(5) - 2) / 2)) == 0


@pytest.mark.parametrize("center,approx", [(0.5, M.nwgm_second_order),
                                           (0.3, M.nwgm_second_order_mean), (0.9, M.nwgm_second_order_mean)])
def test_second_order_approximations_are_second_order(center, approx):
    # Shrinking the spread by 2 shrinks E − NWGM (∝ V) by 4 and a second-order approximation's
    # error (third order) by 8 asymptotically: the ratio must fall below 1/5 (a first-order-only
    # approximation would give 1/4) per halving.
    g = torch.Generator().manual_seed(1)
    base = torch.randn(64, generator=g, dtype=F64)
    errors = []
    for scale in (0.005, 0.0025, 0.00125):
        v = center + scale * base
        s = M.summary(v)
        errors.append(abs(float(approx(s.expectation, s.variance) - s.nwgm)))
    assert errors[1] / errors[0] < 1 / 5 and errors[2] / errors[1] < 1 / 5


def test_boundary_expansion_is_exact_without_spread_and_consistent():
    # Eq. 207 is an expansion in powers of 1 − O, not of the spread: exact when all values agree.
    s = M.summary(torch.full((5,), 0.93, dtype=F64))
    torch.testing.assert_close(M.nwgm_second_order_boundary(s.expectation, s.variance), s.nwgm)
    e, v = torch.tensor(0.9, dtype=F64), torch.tensor(0.01, dtype=F64)
    torch.testing.assert_close(e - M.nwgm_second_order_boundary(e, v), M.nwgm_error_boundary(e, v))
    torch.testing.assert_close(e - M.nwgm_second_order(e, v), M.nwgm_error_second_order(e, v))


@pytest.mark.parametrize("kwargs,match", [
    ({"values": torch.tensor([0.2, 1.2])}, "values must lie in \\[0, 1\\]"),
    ({"values": torch.tensor([0.2, 0.4]), "weights": torch.tensor([0.5, -0.5])}, "weights must be >= 0"),
    ({"values": torch.tensor([0.2, 0.4]), "weights": torch.tensor([0.5, 0.6])}, "weights must sum to 1"),
    ({"values": torch.tensor([0.2, 0.4]), "weights": torch.tensor([0.2, 0.4, 0.4])}, "weights of shape \\(3,\\)"),
    ({"values": torch.tensor(0.3)}, "values must be a floating tensor"),
])
def test_bad_input_one_line_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        M.summary(**kwargs)
