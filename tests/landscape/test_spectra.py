"""Hutchinson's trace estimator on operators with a known trace: exact in float64, errors in one line."""

import numpy as np
import pytest
import torch
from scipy.sparse.linalg import aslinearoperator

from droplab.landscape import hutchinson_trace


def test_hutchinson_of_a_diagonal_is_exact_in_float64():
    # Rademacher z: zᵀ D z = Σ_j z_j² d_j = Σ_j d_j for every probe, so the estimate is the trace
    # itself with zero spread, to float64 rounding (issue 14: it came back as float32(0.6)).
    est = hutchinson_trace(aslinearoperator(np.diag([0.1, 0.2, 0.3])), 5, torch.Generator().manual_seed(0))
    assert isinstance(est.value, float)
    assert est.value == pytest.approx(0.6, rel=0, abs=4e-16)
    assert est.stderr < 1e-15 and est.n_probes == 5


def test_hutchinson_is_unbiased_with_its_standard_error():
    # off-diagonal mass makes the forms vary: Var(zᵀAz) = 2 Σ_{i≠j} A_ij² (symmetric A, Rademacher z)
    rng = np.random.default_rng(0)
    b = rng.standard_normal((30, 30))
    a = b + b.T
    est = hutchinson_trace(aslinearoperator(a), 2000, torch.Generator().manual_seed(1))
    off = a - np.diag(np.diag(a))
    assert est.stderr == pytest.approx(np.sqrt(2 * (off ** 2).sum() / 2000), rel=0.1)  # SE of the SD: ~1.6 %
    assert abs(est.value - np.trace(a)) < 5 * est.stderr  # CLT: fails with probability < 1e-6


@pytest.mark.parametrize(("operator", "n_probes", "error", "match"), [
    (aslinearoperator(np.eye(3)), 1, ValueError, "n_probes must be an integer >= 2"),
    (np.eye(3), 10, TypeError, "operator must be a scipy.sparse.linalg.LinearOperator"),
], ids=["one-probe", "plain-array"])
def test_hutchinson_bad_input(operator, n_probes, error, match):
    with pytest.raises(error, match=match):
        hutchinson_trace(operator, n_probes)
