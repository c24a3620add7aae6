"""§9.5's error propagation (eq. 112) and E(σ′(S)) from the moments of O (eq. 220), against references."""

from __future__ import annotations

import torch

from droplab.ensemble import logistic_derivative_mean, propagated_error

F64 = torch.float64


def test_propagated_error_is_the_first_order_term_of_eq_109():
    """Reference: W^{l+1} = σ(Σ w p (E − ε) + b) exactly (eq. 109) against NWGM = σ(Σ w p E + b); eq. 112 is
    its first-order Taylor term in ε, so the remainder shrinks 4× when ε halves (second order)."""
    g = torch.Generator().manual_seed(0)
    w, b = torch.randn(2, 5, dtype=F64, generator=g), torch.randn(2, dtype=F64, generator=g)
    e = torch.rand(3, 5, dtype=F64, generator=g)
    direction = torch.randn(3, 5, dtype=F64, generator=g)
    keep = 0.5
    nwgm = torch.sigmoid(keep * e @ w.T + b)
    remainders = []
    for t in (1e-2, 5e-3):
        eps = t * direction
        exact = nwgm - torch.sigmoid(keep * (e - eps) @ w.T + b)
        remainders.append((exact - propagated_error(w, keep, eps, nwgm)).abs().max().item())
        assert (exact - propagated_error(w, keep, eps, nwgm)).abs().max() < 0.05 * exact.abs().max()
    assert 3.5 < remainders[0] / remainders[1] < 4.5


def test_logistic_derivative_mean_is_the_sample_mean_of_sigma_prime():
    """E(O(1 − O)) = E − E² − Var(O) (population variance): an identity on any sample of O = σ(S)."""
    s = 4 * torch.randn(1000, 3, dtype=F64, generator=torch.Generator().manual_seed(1))
    o = torch.sigmoid(s)
    direct = (o * (1 - o)).mean(0)
    torch.testing.assert_close(logistic_derivative_mean(o.mean(0), o.var(0, unbiased=False)), direct,
                               rtol=0, atol=1e-12)
