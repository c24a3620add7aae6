"""Zero-loss manifold: retraction, tangent projector, the limiting flow, Gaussian-dropout GD, bad input."""

from __future__ import annotations

import pytest
import torch

from droplab import data
from droplab.dynamics import (
    FlatModel,
    gaussian_dropout_gd,
    path_distance,
    reach_zero_loss,
    regularizer_flow,
    tangent_projector,
)
from droplab.models import FNN


@pytest.fixture(scope="module")
def problem():
    ds = data.load("teacher", "train", n_train=6, dim=3, hidden=3)
    x, y = ds.x.double(), ds.y.double()
    torch.manual_seed(0)
    model = FNN([3, 10, 1], "relu", dropout={1: 0.1}).double()
    w0, _ = reach_zero_loss(model, x, y, lr=0.1, tol=1e-3)
    return model, x, y, w0


def test_reach_zero_loss_lands_on_gamma_without_touching_the_model(problem):
    model, x, y, w0 = problem
    flat = FlatModel(model, x, y)
    assert flat.loss(w0) < 1e-16
    assert not torch.equal(flat.flat(), w0)  # the caller's model keeps its initial weights


def test_tangent_projector_is_the_orthogonal_projector_onto_ker_j(problem):
    model, x, y, w0 = problem
    flat = FlatModel(model, x, y)
    p, j = tangent_projector(flat, w0), flat.jacobian(w0)
    torch.testing.assert_close(p @ p, p, atol=1e-10, rtol=0)
    torch.testing.assert_close(p, p.T, atol=1e-12, rtol=0)
    torch.testing.assert_close(j @ p, torch.zeros_like(j), atol=1e-10, rtol=0)
    assert round(float(torch.trace(p))) == w0.numel() - torch.linalg.matrix_rank(j)


def test_flow_stays_on_gamma_and_decreases_the_regularizer(problem):
    model, x, y, w0 = problem
    flow = regularizer_flow(model, x, y, w0, t_end=1.0, dt=0.05, n_records=6)
    assert flow.loss.max() < 1e-16
    # d Δ/dt = −½ ‖P ∇Δ‖² ≤ 0 along the exact flow; Euler steps of 0.05 keep the recorded values monotone
    assert (flow.laplacian[1:] < flow.laplacian[:-1]).all()


def test_dropout_gd_path_approaches_the_flow_as_alpha_sigma_shrink(problem):
    model, x, y, w0 = problem
    flow = regularizer_flow(model, x, y, w0, t_end=0.5, dt=0.025, n_records=3)
    dist = []
    for alpha, sigma in ((0.04, 0.4), (0.005, 0.2)):
        gd = gaussian_dropout_gd(model, x, y, w0, alpha=alpha, sigma=sigma, t_end=0.5, n_records=3,
                                 generator=torch.Generator().manual_seed(0))
        dist.append(float(path_distance(gd, flow)[-1]))
    assert dist[1] < dist[0]


def test_bad_input(problem):
    model, x, y, w0 = problem
    with pytest.raises(ValueError, match=r"GD did not reach the zero-loss manifold: loss .* > tol 1e-12"):
        reach_zero_loss(model, x, y, lr=0.01, tol=1e-12, max_steps=10, check_every=5)
    with pytest.raises(ValueError, match="alpha must be finite and > 0"):
        gaussian_dropout_gd(model, x, y, w0, alpha=0.0, sigma=0.1, t_end=1.0)
    with pytest.raises(ValueError, match="sigma must be finite and > 0"):
        gaussian_dropout_gd(model, x, y, w0, alpha=0.1, sigma=-1.0, t_end=1.0)
    plain = FNN([3, 4, 1]).double()
    with pytest.raises(ValueError, match="model has no droplab noise layer"):
        FlatModel(plain, x, y)


def test_ou_noise_has_the_stationary_law_and_correlation():
    from droplab.dynamics import ou_path, ou_rho

    rho, sigma, chains = ou_rho(3.0), 0.3, 20000
    path = ou_path((chains,), 4, sigma, 3.0, generator=torch.Generator().manual_seed(0))
    var = path.pow(2).mean(1)
    corr = (path[1:] * path[:-1]).mean(1) / sigma**2
    # Var of a sample second moment of N(0, σ²) over n chains: 2σ⁴/n → stderr σ²·√(2/n) ≈ 0.01σ²;
    # the lag-1 correlation's stderr ≈ √((1 + ρ²)/n) ≈ 0.008. Tolerances are 5 standard errors.
    torch.testing.assert_close(var, torch.full_like(var, sigma**2), rtol=5 * (2 / chains) ** 0.5, atol=0)
    assert (corr - rho).abs().max() < 5 * ((1 + rho**2) / chains) ** 0.5
    assert ou_rho(0.0) == 0.0


def test_ou_dropout_gd_with_tau_zero_is_gaussian_dropout_gd(problem):
    from droplab.dynamics import ou_dropout_gd

    model, x, y, w0 = problem
    kw = dict(alpha=0.04, sigma=0.4, t_end=0.1, n_records=2)
    a = ou_dropout_gd(model, x, y, w0, tau=0.0, generator=torch.Generator().manual_seed(5), **kw)
    b = gaussian_dropout_gd(model, x, y, w0, generator=torch.Generator().manual_seed(5), **kw)
    assert torch.equal(a.params, b.params)
    c = ou_dropout_gd(model, x, y, w0, tau=5.0, generator=torch.Generator().manual_seed(5), **kw)
    assert not torch.equal(a.params[-1], c.params[-1])
