"""Softmax NWGM (eq. 47) and the errors of combined ensembles (eqs. 55–58), against enumeration and closed forms."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from droplab.ensemble import errors as ER
from droplab.ensemble import means as M

F64 = torch.float64


def _masks(n: int) -> torch.Tensor:
    return torch.tensor(list(itertools.product((0.0, 1.0), repeat=n)), dtype=F64)


@pytest.mark.parametrize("n", [3, 8])
def test_softmax_nwgm_is_softmax_of_expected_sums_over_every_mask(n):
    # eq. 47 for unit dropout on the inputs (one mask shared by the classes) with unequal keep probabilities
    g = torch.Generator().manual_seed(n)
    w, x = torch.randn(4, n, generator=g, dtype=F64), torch.randn(n, generator=g, dtype=F64)
    keep = 0.1 + 0.8 * torch.rand(n, generator=g, dtype=F64)
    masks = _masks(n)
    prob = (masks * keep + (1 - masks) * (1 - keep)).prod(-1)
    members = torch.softmax((masks * x) @ w.T, -1).T  # (k, 2^n)
    got = ER.normalized_exponential_nwgm(members, prob)
    torch.testing.assert_close(got, torch.softmax(w @ (keep * x), -1), rtol=0, atol=1e-14)


def test_softmax_nwgm_of_two_classes_is_the_logistic_nwgm():
    g = torch.Generator().manual_seed(1)
    o = torch.rand(5, 7, generator=g, dtype=F64)
    both = torch.stack([o, 1 - o], dim=-2)  # (5, 2, 7)
    torch.testing.assert_close(ER.normalized_exponential_nwgm(both)[..., 0], M.nwgm(o), rtol=0, atol=1e-15)


def test_softmax_nwgm_weights_default_to_uniform_and_broadcast():
    g = torch.Generator().manual_seed(2)
    v = torch.softmax(torch.randn(3, 5, 6, generator=g, dtype=F64), dim=-2)
    uniform = torch.full((6,), 1 / 6, dtype=F64)
    torch.testing.assert_close(ER.normalized_exponential_nwgm(v), ER.normalized_exponential_nwgm(v, uniform))
    torch.testing.assert_close(ER.normalized_exponential_nwgm(v, uniform.expand(3, 6)),
                               ER.normalized_exponential_nwgm(v))


def _direct(values, weights, t, loss):
    """Eqs. 55–58 for one output, written out member by member (the reference)."""
    def err(o):
        return 0.5 * (t - o) ** 2 if loss == "squared" else -t * math.log(o) - (1 - t) * math.log(1 - o)
    e = sum(p * o for p, o in zip(weights, values))
    g = math.prod(o ** p for p, o in zip(weights, values))
    gc = math.prod((1 - o) ** p for p, o in zip(weights, values))
    return err(e), err(g), err(g / (g + gc)), sum(p * err(o) for p, o in zip(weights, values))


@pytest.mark.parametrize("loss", ER.LOSSES)
def test_ensemble_errors_match_the_member_by_member_formulas(loss):
    g = torch.Generator().manual_seed(3)
    v = 0.02 + 0.96 * torch.rand(4, 5, generator=g, dtype=F64)
    e = torch.rand(4, 5, generator=g, dtype=F64)
    w = e / e.sum(-1, keepdim=True)
    t = torch.rand(4, generator=g, dtype=F64)
    got = ER.ensemble_errors(v, t, w, loss=loss)
    for i in range(4):
        ref = _direct(v[i].tolist(), w[i].tolist(), float(t[i]), loss)
        assert [float(x[i]) for x in (got.of_expectation, got.of_wgm, got.of_nwgm, got.expected)] == pytest.approx(
            ref, rel=1e-12)


def test_relative_entropy_satisfies_eqs_56_to_58_on_random_sets():
    g = torch.Generator().manual_seed(4)
    v = torch.sigmoid(3 * torch.randn(5000, 6, generator=g, dtype=F64))
    t = torch.rand(5000, generator=g, dtype=F64)
    got = ER.ensemble_errors(v, t)
    slack = 1e-12 * (1 + got.expected)
    for combined in (got.of_expectation, got.of_wgm, got.of_nwgm):
        assert bool((combined <= got.expected + slack).all())


def test_squared_error_breaks_eqs_57_and_58_on_the_hand_example():
    # t = 1, O = (0.01, 0.49): G = 0.07, G' = sqrt(0.99 * 0.51), E(Error) = (0.99² + 0.51²)/4
    got = ER.ensemble_errors(torch.tensor([0.01, 0.49], dtype=F64), torch.tensor(1.0, dtype=F64), loss="squared")
    g, gc = 0.07, math.sqrt(0.99 * 0.51)
    assert float(got.expected) == pytest.approx((0.99 ** 2 + 0.51 ** 2) / 4, rel=1e-12)
    assert float(got.of_wgm) == pytest.approx(0.5 * (1 - g) ** 2, rel=1e-12)
    assert float(got.of_nwgm) == pytest.approx(0.5 * (1 - g / (g + gc)) ** 2, rel=1e-12)
    assert float(got.of_wgm) > float(got.expected) and float(got.of_nwgm) > float(got.expected)
    assert float(got.of_expectation) <= float(got.expected)  # eq. 56 still holds (Jensen)


def test_softmax_errors_against_closed_forms():
    g = torch.Generator().manual_seed(5)
    s = torch.randn(8, 4, 6, generator=g, dtype=F64)  # (N, k, m)
    v = torch.softmax(s, dim=-2)
    y = torch.randint(0, 4, (8,), generator=g)
    ce = ER.softmax_ensemble_errors(v, y)
    # −log G_c = E(−log O_c) exactly; NWGM = softmax(E S) (eq. 47)
    torch.testing.assert_close(ce.of_wgm, ce.expected)
    torch.testing.assert_close(ce.of_nwgm, -torch.log_softmax(s.mean(-1), -1).gather(-1, y[:, None])[:, 0])
    assert bool((ce.of_nwgm <= ce.expected + 1e-12).all()) and bool((ce.of_expectation <= ce.expected + 1e-12).all())
    sq = ER.softmax_ensemble_errors(v, y, loss="squared")
    onehot = torch.nn.functional.one_hot(y, 4).to(F64)
    torch.testing.assert_close(sq.expected, (0.5 * ((onehot[..., None] - v) ** 2).sum(-2)).mean(-1))
    torch.testing.assert_close(sq.of_expectation, 0.5 * ((onehot - v.mean(-1)) ** 2).sum(-1))


def test_one_member_has_every_error_equal_to_its_own():
    v = torch.softmax(torch.randn(3, 5, 1, dtype=F64), dim=-2)
    y = torch.tensor([0, 2, 4])
    e = ER.softmax_ensemble_errors(v, y, loss="squared")
    torch.testing.assert_close(e.of_nwgm, e.expected)
    torch.testing.assert_close(e.of_expectation, e.expected)


def test_mean_absolute_deviation_is_the_expected_error_of_a_random_member():
    g = torch.Generator().manual_seed(6)
    v = torch.rand(3, 5, generator=g, dtype=F64)
    e = torch.rand(3, 5, generator=g, dtype=F64)
    w = e / e.sum(-1, keepdim=True)
    for i in range(3):
        mean = sum(float(p) * float(o) for p, o in zip(w[i], v[i]))
        ref = sum(float(p) * abs(float(o) - mean) for p, o in zip(w[i], v[i]))
        assert float(M.mean_absolute_deviation(v, w)[i]) == pytest.approx(ref, rel=1e-12)


@pytest.mark.parametrize("call, match", [
    (lambda: ER.ensemble_errors(torch.rand(3, dtype=F64), 0.5, loss="hinge"), "loss must be one of"),
    (lambda: ER.ensemble_errors(torch.tensor([0.5, 1.5], dtype=F64), 1.0), "values must lie in"),
    (lambda: ER.ensemble_errors(torch.rand(3, dtype=F64), 2.0), "target must lie in"),
    (lambda: ER.softmax_ensemble_errors(torch.rand(2, 3, 4, dtype=F64), torch.tensor([0, 3])), "class indices"),
    (lambda: ER.softmax_ensemble_errors(torch.rand(2, 3, 4, dtype=F64), torch.tensor([0.0, 1.0])), "long tensor"),
    (lambda: ER.normalized_exponential_nwgm(torch.rand(4, dtype=F64)), r"\(\.\.\., k, m\)"),
    (lambda: ER.normalized_exponential_nwgm(torch.rand(2, 3, dtype=F64), torch.tensor([0.5, 0.6, 0.1])),
     "sum to 1"),
])
def test_bad_input_is_one_line(call, match):
    with pytest.raises(ValueError, match=match):
        call()
