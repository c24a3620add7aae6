"""Loss profiles and surfaces: the loss at θ* + αd (+ βe) against a direct evaluation, eval mode, restored modes."""

import pytest
import torch
from torch import nn

from droplab.landscape import loss_at, loss_profile, loss_surface

MSE = nn.functional.mse_loss


def setup():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Dropout(0.5), nn.Linear(4, 1)).double()
    x, y = torch.randn(10, 3, dtype=torch.float64), torch.randn(10, 1, dtype=torch.float64)
    d = [torch.randn_like(p) for p in model.parameters()]
    e = [torch.randn_like(p) for p in model.parameters()]
    return model, (x, y), d, e


def direct(model: nn.Module, data, shifts) -> float:
    """The evaluation-mode loss with every parameter shifted, on a copy (the reference)."""
    twin = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Dropout(0.5), nn.Linear(4, 1)).double().eval()
    with torch.no_grad():
        for q, p, s in zip(twin.parameters(), model.parameters(), shifts):
            q.copy_(p + s)
        return float(MSE(twin(data[0]), data[1]))


def test_profile_is_the_evaluation_mode_loss_at_each_point():
    model, data, d, _ = setup()
    model.train()  # dropout on: the profile must still be the deterministic eval-mode loss
    alphas = [-1.0, -0.25, 0.0, 0.5, 2.0]
    got = loss_profile(model, MSE, data, d, alphas, chunk=2)  # chunk 2 splits the batch of points
    want = [direct(model, data, [a * v for v in d]) for a in alphas]
    torch.testing.assert_close(got, torch.tensor(want, dtype=torch.float64), rtol=1e-12, atol=1e-12)
    assert model.training and model[2].training  # the caller's modes are restored


def test_surface_is_the_loss_on_the_grid_and_its_axis_is_the_profile():
    model, data, d, e = setup()
    alphas, betas = [-0.5, 0.0, 1.0], [-1.0, 0.0, 0.5, 1.5]
    grid = loss_surface(model, MSE, data, (d, e), alphas, betas, chunk=5)
    assert grid.shape == (3, 4)
    for i, a in enumerate(alphas):
        for j, b in enumerate(betas):
            want = direct(model, data, [a * u + b * v for u, v in zip(d, e)])
            assert abs(float(grid[i, j]) - want) < 1e-12
    torch.testing.assert_close(grid[:, 1], loss_profile(model, MSE, data, d, alphas))


def test_a_linear_model_gives_the_quadratic_closed_form():
    # mean((x(w + αd) − y)²) = L₀ + α·2·mean(r·xd) + α²·mean((xd)²) exactly
    torch.manual_seed(1)
    model = nn.Linear(3, 1, bias=False).double()
    x, y = torch.randn(8, 3, dtype=torch.float64), torch.randn(8, 1, dtype=torch.float64)
    d = torch.randn(1, 3, dtype=torch.float64)
    r, s = (model(x) - y).detach(), x @ d.T
    alphas = torch.linspace(-2, 2, 9, dtype=torch.float64)
    closed = (r ** 2).mean() + alphas * 2 * (r * s).mean() + alphas ** 2 * (s ** 2).mean()
    torch.testing.assert_close(loss_profile(model, MSE, (x, y), [d], alphas), closed, rtol=1e-12, atol=1e-12)


def test_loss_at_is_the_loss_at_each_combination_of_directions():
    model, data, d, e = setup()
    coefficients = torch.tensor([[0.0, 0.0], [1.0, -0.5], [-2.0, 0.25]], dtype=torch.float64)
    want = [direct(model, data, [a * u + b * v for u, v in zip(d, e)]) for a, b in coefficients.tolist()]
    for chunk in (1, 2):  # point by point and vmapped
        got = loss_at(model, MSE, data, [d, e], coefficients, chunk=chunk)
        torch.testing.assert_close(got, torch.tensor(want, dtype=torch.float64), rtol=1e-12, atol=1e-12)


def test_loss_at_rejects_coefficients_of_the_wrong_shape():
    model, data, d, e = setup()
    with pytest.raises(ValueError, match=r"coefficients must have shape \(points, 2\)"):
        loss_at(model, MSE, data, [d, e], torch.zeros(3, 1))
