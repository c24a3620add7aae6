"""ZZX Theorems 1–2 and Proposition 1 against exact enumeration over masks on a tiny ReLU net."""

import pytest
import torch

from droplab.models import FNN
from droplab.nn.modes import evaluation
from droplab.noise_structure import (
    exact_dropout_moments,
    example_gradient_samples,
    matrix_agreement,
    proposition1,
    theorem_matrices,
)


@pytest.fixture
def setup():
    torch.manual_seed(0)
    model = FNN([3, 4, 4, 1], dropout={2: 0.3}).double()
    x = torch.randn(12, 3, dtype=torch.float64)
    y = torch.randn(12, dtype=torch.float64)
    return model, (x, y)


@pytest.mark.parametrize("block", [["net.2.weight", "net.2.bias"], ["net.0.weight"], ["net.5.weight"]])
def test_theorem1_equals_enumerated_expected_hessian(setup, block):
    # f is affine in any one layer's parameters on the activation pattern: Theorem 1 is exact (a.e.)
    model, data = setup
    th = theorem_matrices(model, data, block, chunk=5)
    ex = exact_dropout_moments(model, data, block)
    torch.testing.assert_close(th.hessian, ex.hessian, rtol=1e-10, atol=1e-13)


def test_theorem2_weights_are_twice_the_expected_loss(setup):
    model, (x, y) = setup
    th = theorem_matrices(model, (x, y), ["net.5.bias"])
    # a_i = 2 E_η ℓ_i by enumeration of the 2^4 masks (keep 0.7)
    a = torch.zeros(12, dtype=torch.float64)
    h = model.net[:4](x).detach()
    w, b = model.net[5].weight.detach()[0], model.net[5].bias.detach()
    for bits in range(16):
        keep = torch.tensor([(bits >> j) & 1 for j in range(4)], dtype=torch.float64)
        prob = float(0.7 ** keep.sum() * 0.3 ** (4 - keep.sum()))
        a += prob * ((h * keep / 0.7) @ w + b - y) ** 2
    torch.testing.assert_close(th.a, a)
    with evaluation(model):
        torch.testing.assert_close(th.b, (model(x).detach().reshape(-1) - y) ** 2)


def test_proposition1_orderings_hold_for_the_formulas(setup):
    model, data = setup
    block = ["net.2.weight", "net.2.bias"]
    th = theorem_matrices(model, data, block)
    order = proposition1(th.hessian, th.covariance, th.a, th.b)
    assert order.holds() and order.c_low <= order.c_high
    agree = matrix_agreement(th.covariance, exact_dropout_moments(model, data, block).covariance)
    assert set(agree) == {"relative_error", "cosine", "top_eigenvector_cosine"} and agree["cosine"] > 0


def test_outside_setting_raises():
    model = FNN([3, 4, 2], dropout={1: 0.3})
    with pytest.raises(ValueError, match="one output"):
        theorem_matrices(model, (torch.randn(4, 3), torch.randn(4)))
    with pytest.raises(ValueError, match="exactly one noise layer"):
        theorem_matrices(FNN([3, 4, 1]), (torch.randn(4, 3), torch.randn(4)))


def test_example_gradient_covariance_matches_enumeration(setup):
    model, data = setup
    block = ["net.2.weight", "net.2.bias"]
    n = 40000
    s = example_gradient_samples(model, data, n, block, generator=torch.Generator().manual_seed(0))
    exact = exact_dropout_moments(model, data, block)
    cov = torch.cov(s.T, correction=0)
    # entry (j, k) is a mean of N products (g_j − ḡ_j)(g_k − ḡ_k): SE ≈ their std / sqrt(N) (the error
    # from centring on ḡ is O(1/N)); 5 SE per entry, plus float64 rounding
    c = s - s.mean(0)
    se = (c.unsqueeze(2) * c.unsqueeze(1)).std(0) / n ** 0.5
    assert ((cov - exact.covariance).abs() <= 5 * se + 1e-12).all()
    assert ((s.mean(0) - exact.mean_gradient).abs() <= 5 * s.std(0) / n ** 0.5).all()
