"""Noise samplers (vectorized = naive loop draw for draw), spectra, alignment null, power-law fits."""

import math

import pytest
import torch
from torch import nn

from droplab.models import FNN
from droplab.nn import mc_mode, noise_layers, replay_masks
from droplab.noise_structure import (
    CovarianceOperator,
    alignment,
    detrend,
    gradient_samples,
    pca,
    power_law_fit,
    projected_variance,
    trajectory_samples,
)

CE = nn.functional.cross_entropy


@pytest.fixture
def setup():
    torch.manual_seed(0)
    model = FNN([8, 6, 5, 3], dropout={2: 0.4}).double()
    x = torch.randn(30, 8, dtype=torch.float64)
    y = torch.randint(0, 3, (30,))
    return model, (x, y)


@pytest.mark.parametrize("block", [["net.2.weight", "net.2.bias"], ["net.0.weight"], ["net.5.bias", "net.2.weight"]])
def test_vectorized_equals_loop_draw_for_draw(setup, block):
    model, data = setup
    a = gradient_samples(model, CE, data, 11, block, generator=torch.Generator().manual_seed(5), chunk=4)
    b = gradient_samples(model, CE, data, 11, block, generator=torch.Generator().manual_seed(5), method="loop", chunk=4)
    torch.testing.assert_close(a.samples, b.samples, rtol=1e-12, atol=1e-14)
    assert a.samples.shape == (11, sum(dict(model.named_parameters())[k].numel() for k in block))
    assert not a.samples.requires_grad


def test_gradient_mean_matches_expected_gradient(setup):
    model, (x, y) = setup
    s = gradient_samples(model, CE, (x, y), 2000, ["net.2.bias"], generator=torch.Generator().manual_seed(0))
    # exact E_η ∇L by enumeration of the 2^5 shared masks (per-example masks: same mean, linearity)
    exact = torch.zeros(5, dtype=torch.float64)
    for bits in range(32):
        keep = torch.tensor([(bits >> j) & 1 for j in range(5)], dtype=torch.float64)
        with mc_mode(model), replay_masks(model, {"net.4": keep / 0.6}):
            loss = CE(model(x), y)
        prob = float((0.6 ** keep.sum()) * (0.4 ** (5 - keep.sum())))
        exact += prob * torch.autograd.grad(loss, model.net[2].bias)[0]
    se = s.samples.std(0) / math.sqrt(s.n)
    assert ((s.samples.mean(0) - exact).abs() < 5 * se).all()  # CLT: 5 SE per coordinate


def test_trajectory_leaves_model_unchanged(setup):
    model, data = setup
    before = [p.detach().clone() for p in model.parameters()]
    torch.manual_seed(123)
    state = torch.get_rng_state()
    t = trajectory_samples(model, CE, data, 5, ["net.2.bias"], lr=0.1, generator=torch.Generator().manual_seed(0))
    assert t.samples.shape == (5, 5) and t.kind == "trajectory"
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))
    assert not torch.equal(t.samples[0], t.samples[-1])
    assert torch.equal(torch.get_rng_state(), state)  # fit's reseeding does not leak to the caller


def test_trajectory_noise_follows_the_generator(setup):
    model, data = setup

    def run(seed: int) -> torch.Tensor:
        g = torch.Generator().manual_seed(seed)
        return trajectory_samples(model, CE, data, 4, ["net.2.bias"], lr=0.1, generator=g).samples

    assert torch.equal(run(3), run(3))
    assert not torch.equal(run(3), run(4))
    assert all(layer.generator is None for layer in noise_layers(model))  # the lent generator is returned


def test_pca_recovers_gaussian_covariance():
    g = torch.Generator().manual_seed(0)
    n, d = 20000, 4
    cov = torch.tensor([[4.0, 1, 0, 0], [1, 2, 0, 0], [0, 0, 1, 0], [0, 0, 0, 0.25]], dtype=torch.float64)
    s = torch.randn(n, d, generator=g, dtype=torch.float64) @ torch.linalg.cholesky(cov).T + 3.0
    p = pca(s)
    exact = torch.linalg.eigvalsh(cov).flip(0)
    # eigenvalue estimates of a Gaussian sample: SE ≈ λ·sqrt(2/N) ≈ 0.01 λ; allow 5 SE
    assert ((p.values - exact).abs() < 5 * exact * math.sqrt(2 / n)).all()
    torch.testing.assert_close(projected_variance(s, p.vectors), p.values)
    op = CovarianceOperator(s)
    torch.testing.assert_close(op.matvec(p.vectors[:, 0]), p.values[0] * p.vectors[:, 0])
    assert math.isclose(op.trace(), float(p.values.sum()), rel_tol=1e-10)


def test_alignment_against_isotropic_and_null():
    g = torch.Generator().manual_seed(0)
    d = 30
    q, _ = torch.linalg.qr(torch.randn(d, d, generator=g, dtype=torch.float64))
    h = q @ torch.diag(torch.logspace(1, -3, d, dtype=torch.float64)) @ q.T
    aligned = torch.randn(500, d, generator=g, dtype=torch.float64) @ torch.linalg.cholesky(h + 1e-9 * torch.eye(d)).T
    a = alignment(h, aligned, n_null=30, generator=g)
    cov = torch.cov(aligned.T, correction=0)
    assert math.isclose(a.trace_h_sigma, float((h @ cov).trace()), rel_tol=1e-10)
    assert math.isclose(a.trace_h_isotropic, float(cov.trace() * h.trace() / d), rel_tol=1e-10)
    assert a.ratio > 3 and a.beats_null
    iso = alignment(h, torch.randn(500, d, generator=g, dtype=torch.float64), n_null=30, generator=g)
    assert not iso.beats_null or iso.ratio < 1.5
    op = alignment(lambda v: h @ v, aligned, n_null=30, generator=torch.Generator().manual_seed(1))
    assert math.isclose(op.trace_h_sigma, a.trace_h_sigma, rel_tol=1e-10)


def test_power_law_fit_recovers_slope():
    g = torch.Generator().manual_seed(0)
    x = torch.logspace(-3, 2, 300, dtype=torch.float64)
    y = 2.0 * x ** -0.7 * torch.exp(0.1 * torch.randn(300, generator=g, dtype=torch.float64))
    y[:5] = 100.0  # outliers: Theil–Sen ignores them
    fit = power_law_fit(torch.cat([x, torch.tensor([-1.0])]), torch.cat([y, torch.tensor([1.0])]), generator=g)
    assert fit.n_dropped == 1 and fit.ci_low < -0.7 < fit.ci_high
    assert abs(fit.slope + 0.7) < 0.02 and abs(fit.intercept - math.log10(2)) < 0.05


def test_bad_input(setup):
    model, data = setup
    with pytest.raises(ValueError, match="n_samples"):
        gradient_samples(model, CE, data, 1)
    with pytest.raises(ValueError, match="N >= 2"):
        pca(torch.zeros(1, 3))
    with pytest.raises(ValueError, match="directions must have"):
        projected_variance(torch.zeros(4, 3), torch.zeros(2, 1))
    with pytest.raises(ValueError, match="params must be parameters"):
        gradient_samples(model, CE, data, 3, ["nope"])


def test_detrend_removes_a_linear_drift_and_keeps_the_noise():
    """S = a + b·k + ε with ε orthogonal to 1 and k: detrend(S) = ε exactly (least squares is a projection)."""
    g = torch.Generator().manual_seed(0)
    n, d = 50, 4
    k = torch.arange(n, dtype=torch.float64).unsqueeze(1)
    eps = torch.randn(n, d, generator=g, dtype=torch.float64)
    basis = torch.cat([torch.ones_like(k), k], 1)
    eps = eps - basis @ torch.linalg.lstsq(basis, eps).solution  # make ε orthogonal to 1 and k
    drift = 3.0 + 0.7 * k * torch.arange(1, d + 1, dtype=torch.float64)
    torch.testing.assert_close(detrend(drift + eps), eps)


def test_trajectory_with_adam_takes_adam_steps(setup):
    # Adam's first step from fresh moments is lr · g / (|g| + eps) = lr · sign(g) per coordinate (0 where g = 0)
    model, data = setup
    start = dict(model.named_parameters())["net.2.bias"].detach().clone()
    t = trajectory_samples(model, CE, data, 3, ["net.2.bias"], lr=0.01, optimizer="adam",
                           generator=torch.Generator().manual_seed(0))
    step = (t.samples[0] - start).abs()
    assert ((step - 0.01).abs() < 1e-6).any() and ((step < 1e-6) | ((step - 0.01).abs() < 1e-6)).all()
    assert t.loss == "dropout adam steps"
