"""Noise Laplacian: exact vs finite differences, Hutchinson vs exact, its weight gradient, closed forms."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from droplab.landscape import hutchinson_trace
from droplab.models import FNN
from droplab.nn import BernoulliDropout, NoiseLayer, replay_masks
from droplab.regularization import (
    linear_dropout_regularizer,
    mse_gauss_newton_laplacian,
    noise_hessian_operator,
    noise_laplacian,
    noise_laplacian_diagonal,
    noise_laplacian_grad,
    noise_regularizer,
    noise_space,
    relu_l2_laplacian,
)

MSE = nn.functional.mse_loss


class UnitGaussian(NoiseLayer):
    """Test-only Gaussian multiplicative noise 1 + σ N(0, 1) (independent of droplab's own layers)."""

    def __init__(self, sigma: float) -> None:
        super().__init__()
        self.sigma = sigma

    def noise_moments(self):
        return 1.0, self.sigma**2

    def sample_noise(self, x):
        return 1 + self.sigma * torch.randn(x.shape, dtype=x.dtype, generator=self.generator)


def tanh_net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(3, 5), nn.Tanh(), BernoulliDropout(0.3), nn.Linear(5, 4), nn.Tanh(),
                         UnitGaussian(0.5), nn.Linear(4, 2)).double()


def relu_net() -> nn.Module:
    torch.manual_seed(1)
    return nn.Sequential(UnitGaussian(0.3), nn.Linear(3, 6), nn.ReLU(), UnitGaussian(0.3), nn.Linear(6, 5),
                         nn.ReLU(), BernoulliDropout(0.2, scale="none"), nn.Linear(5, 2)).double()


CASES = {"tanh": tanh_net, "relu": relu_net}


def data(n: int = 7, d: int = 3, m: int = 2, seed: int = 2) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    f64 = torch.float64
    return torch.randn(n, d, generator=g, dtype=f64), torch.randn(n, m, generator=g, dtype=f64)


def fd_laplacian(model: nn.Module, x: torch.Tensor, y: torch.Tensor, h: float = 1e-3) -> torch.Tensor:
    """Central second differences of the loss in each η_j, through the model's own replay (no torch.func).

    Error: O(h² ∂⁴L) ≈ 1e-6 relative plus rounding ε·L/h² ≈ 1e-10, hence rtol 1e-5 below.
    """
    space = noise_space(model, x)
    eye = torch.eye(space.dim, dtype=x.dtype)

    def loss(eta: torch.Tensor) -> float:
        with torch.no_grad(), replay_masks(model, space.masks(eta)):
            return float(MSE(model(x), y))

    l0 = loss(torch.zeros(space.dim, dtype=x.dtype))
    return torch.tensor([(loss(h * e) - 2 * l0 + loss(-h * e)) / h**2 for e in eye], dtype=x.dtype)


@pytest.mark.parametrize("make", CASES.values(), ids=CASES.keys())
def test_laplacian_matches_finite_differences(make):
    model = make()
    x, y = data()
    diag = noise_laplacian_diagonal(model, MSE, x, y)
    # Replay applies only while sampling: put the model in train mode for the reference.
    model.train()
    fd = fd_laplacian(model, x, y)
    torch.testing.assert_close(diag, fd, rtol=1e-5, atol=1e-8)
    assert float(noise_laplacian(model, MSE, x, y)) == pytest.approx(float(fd.sum()), rel=1e-5)


def test_laplacian_leaves_modes_and_generators_alone():
    model = tanh_net().eval()
    x, y = data()
    noise_laplacian(model, MSE, x, y)
    assert not any(m.training for m in model.modules())
    assert not any(m.mc for m in model.modules() if isinstance(m, NoiseLayer))


def test_hutchinson_within_its_standard_error():
    model = tanh_net()
    x, y = data()
    exact = float(noise_laplacian(model, MSE, x, y))
    gen = torch.Generator().manual_seed(0)
    est = hutchinson_trace(noise_hessian_operator(model, MSE, x, y), 400, gen)
    # CLT: (est − exact)/stderr ≈ N(0, 1); |z| < 4 fails with probability 6e-5 (the seed is fixed anyway).
    assert abs(est.value - exact) < 4 * est.stderr
    assert est.stderr > 0 and est.n_probes == 400


def test_noise_hessian_operator_diagonal_is_the_exact_diagonal():
    model = tanh_net()
    x, y = data()
    op = noise_hessian_operator(model, MSE, x, y, chunk_size=3)
    dense = op.matmat(np.eye(op.shape[0]))
    np.testing.assert_allclose(dense, dense.T, atol=1e-12)  # a Hessian: symmetric
    np.testing.assert_allclose(np.diag(dense), noise_laplacian_diagonal(model, MSE, x, y).numpy(), atol=1e-12)
    np.testing.assert_allclose(op.matvec(dense[:, 0]), dense @ dense[:, 0], atol=1e-12)


@pytest.mark.parametrize("make", CASES.values(), ids=CASES.keys())
def test_laplacian_gradient_matches_directional_differences(make):
    model = make()
    x, y = data()
    g = noise_laplacian_grad(model, MSE, x, y)
    gen = torch.Generator().manual_seed(3)
    params = dict(model.named_parameters())
    direction = {k: torch.randn(p.shape, generator=gen, dtype=p.dtype) for k, p in params.items()}
    h = 1e-4

    def shifted(sign: float) -> float:
        with torch.no_grad():
            for k, p in params.items():
                p.add_(sign * h * direction[k])
        value = float(noise_laplacian(model, MSE, x, y))
        with torch.no_grad():
            for k, p in params.items():
                p.sub_(sign * h * direction[k])
        return value

    fd = (shifted(1.0) - shifted(-1.0)) / (2 * h)  # central difference: error O(h²) ≈ 1e-8 relative
    analytic = sum(float((g[k] * direction[k]).sum()) for k in params)
    assert analytic == pytest.approx(fd, rel=1e-5, abs=1e-8)


@pytest.mark.parametrize("widths,dropout", [
    ([3, 8, 2], {1: 0.5}),
    ([3, 6, 5, 1], {0: 0.2, 1: 0.5, 2: 0.3}),
    ([4, 5, 4, 3, 2], {1: 0.1, 3: 0.4}),
], ids=["2-layer", "3-layer-input-dropout", "4-layer"])
def test_sps_closed_form_on_the_zero_loss_manifold(widths, dropout):
    torch.manual_seed(len(widths))
    model = FNN(widths, "relu", dropout=dropout, noise=lambda p: UnitGaussian(p)).double()
    x, _ = data(n=9, d=widths[0])
    with torch.no_grad():
        y = model.eval()(x)  # targets = the ensemble output: the weights lie on Γ (zero loss)
        assert float(MSE(model(x), y)) == 0.0
    closed, exact = relu_l2_laplacian(model, x), noise_laplacian(model, MSE, x, y)
    torch.testing.assert_close(closed, exact, rtol=1e-10, atol=0)


def test_sps_closed_form_off_manifold_relu_and_residual_term_for_tanh():
    """ReLU is piecewise linear in each η_j: Gauss–Newton form holds off Γ too; tanh adds a residual term."""
    model = relu_net()
    x, y = data()
    closed, exact = relu_l2_laplacian(model, x), noise_laplacian(model, MSE, x, y)
    torch.testing.assert_close(closed, exact, rtol=1e-10, atol=0)
    smooth = tanh_net()
    on = smooth.eval()(x).detach()
    gap_on = float(noise_laplacian(smooth, MSE, x, on + 1.0) - noise_laplacian(smooth, MSE, x, on))
    assert abs(gap_on) > 1e-3  # the residual term (f − t)·∂²f/∂η² is present off Γ


def test_gauss_newton_form_equals_the_laplacian_on_gamma_only():
    smooth = tanh_net()
    x, y = data()
    with torch.no_grad():
        on = smooth.eval()(x)
    gn = mse_gauss_newton_laplacian(smooth, x)
    torch.testing.assert_close(gn, noise_laplacian(smooth, MSE, x, on), rtol=1e-10, atol=0)
    assert abs(float(gn - noise_laplacian(smooth, MSE, x, y))) > 1e-3  # off Γ: the residual term


def test_eq148_is_the_exact_second_order_regularizer_of_a_linear_layer():
    torch.manual_seed(0)
    keep = torch.tensor([0.3, 0.5, 0.8, 0.9])
    model = nn.Sequential(BernoulliDropout(1 - keep, scale="none"), nn.Linear(4, 3, bias=False)).double()
    x, y = data(n=6, d=4, m=3)

    def half_sse(o, t):
        return 0.5 * (o - t).pow(2).sum()

    expected = linear_dropout_regularizer(model[1].weight.detach(), x, keep.double())
    torch.testing.assert_close(noise_regularizer(model, half_sse, x, y), expected, rtol=1e-12, atol=0)


def test_bad_input():
    x, y = data()
    plain = nn.Sequential(nn.Linear(3, 2)).double()
    with pytest.raises(ValueError, match="model has no droplab noise layer"):
        noise_laplacian(plain, MSE, x, y)
    with pytest.raises(ValueError, match="loss_fn must return a scalar"):
        noise_laplacian(tanh_net(), lambda o, t: (o - t) ** 2, x, y)
    with pytest.raises(ValueError, match="n_probes must be an integer >= 2"):
        hutchinson_trace(noise_hessian_operator(tanh_net(), MSE, x, y), n_probes=1)
    with pytest.raises(ValueError, match="loss_fn l1_loss is piecewise linear"):
        noise_laplacian(tanh_net(), nn.functional.l1_loss, x, y)
    from droplab.nn import StochasticSpiking

    spiking = nn.Sequential(nn.Linear(3, 4), nn.Sigmoid(), StochasticSpiking(1.0), nn.Linear(4, 2)).double()
    with pytest.raises(ValueError, match="has input-dependent noise moments"):
        noise_laplacian(spiking, MSE, x, y)
    with pytest.raises(ValueError, match="model layer 1 is Tanh"):
        relu_l2_laplacian(tanh_net(), x)


def test_issue_example_with_gaussian_dropout_and_its_regularizer():
    from droplab.nn import GaussianDropout

    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(3, 6), nn.ReLU(), GaussianDropout(sigma=0.3), nn.Linear(6, 2)).double()
    x, y = data()
    lap = noise_laplacian(net, MSE, x, y)
    assert lap.dim() == 0 and float(lap) > 0
    torch.testing.assert_close(noise_regularizer(net, MSE, x, y), 0.5 * 0.3**2 * lap, rtol=1e-12, atol=0)
    torch.testing.assert_close(relu_l2_laplacian(net, x), lap, rtol=1e-10, atol=0)
