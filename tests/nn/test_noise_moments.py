"""Empirical mean and variance of each layer's noise over >= 1e5 draws match noise_moments().

Tolerances: 5 standard errors, derived in conftest.py (mean: sqrt(Var/n); variance: sqrt((μ4 − Var²)/n)).
"""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from droplab.nn import (
    BackpercolationSigmoid,
    BernoulliDropout,
    DropConnectLinear,
    Dropin,
    GaussianDropout,
    InformationDropout,
    LogNormalDropout,
    OUDropout,
    StochasticSpiking,
    VariationalDropout,
    VariationalDropoutLinear,
    record_masks,
)

N = 100_000


def _recorded(layer: nn.Module, x: torch.Tensor) -> torch.Tensor:
    model = nn.Sequential(layer).train()
    with record_masks(model) as rec:
        model(x)
    return rec["0"][0]


@pytest.mark.parametrize("make", [
    lambda g: BernoulliDropout(0.3, generator=g),
    lambda g: BernoulliDropout(0.3, "none", generator=g),
    lambda g: Dropin(0.2, generator=g),
    lambda g: GaussianDropout(p=0.4, generator=g),
    lambda g: GaussianDropout(sigma=0.7, generator=g),
    lambda g: LogNormalDropout(0.5, generator=g),
    lambda g: OUDropout(0.6, 4.0, shared_dims=(), generator=g),
], ids=["bernoulli", "bernoulli-none", "dropin", "gaussian-p", "gaussian-sigma", "lognormal", "ou-marginal"])
def test_unit_noise_moments(make, check_moments):
    layer = make(torch.Generator().manual_seed(0))
    noise = _recorded(layer, torch.ones(N, 2))
    mean, var = layer.noise_moments()
    check_moments(noise, mean, var)


def test_per_unit_p_moments(check_moments):
    p = torch.tensor([0.1, 0.5, 0.8])
    layer = BernoulliDropout(p, generator=torch.Generator().manual_seed(0))
    noise = _recorded(layer, torch.ones(N, 3))
    mean, var = layer.noise_moments()
    for j in range(3):
        check_moments(noise[:, j], mean[j], var[j])


def test_gaussian_p_matches_bernoulli_variance():
    assert GaussianDropout(p=0.3).noise_moments() == pytest.approx(BernoulliDropout(0.3).noise_moments())


def test_dropconnect_weight_noise_moments(check_moments):
    layer = DropConnectLinear(4, 5, 0.25, generator=torch.Generator().manual_seed(0))
    noise = layer.sample_noise(torch.ones(N // 20, 4))  # (5000, 5, 4): 1e5 connection draws
    mean, var = layer.noise_moments()
    check_moments(noise, mean, var)


def test_ou_marginal_stays_stationary_after_many_steps(check_moments):
    layer = OUDropout(0.5, 3.0, shared_dims=(), generator=torch.Generator().manual_seed(0))
    x = torch.ones(N, 1)
    for _ in range(5):
        layer(x)
    check_moments(1 + layer.eta, *layer.noise_moments())


def test_information_dropout_noise_matches_moments_of_alpha(check_moments):
    layer = InformationDropout(1, max_alpha=0.7, generator=torch.Generator().manual_seed(0))
    x = torch.ones(N, 1)  # one input, so α(x) is the same for every draw
    z = _recorded(layer, x)
    eps = (layer.last_alpha * z).exp()
    mean, var = layer.noise_moments()
    check_moments(eps, mean[0, 0], var[0, 0])


def test_information_dropout_output_is_noise_times_input(check_moments):
    layer = InformationDropout(2, generator=torch.Generator().manual_seed(1))
    x = torch.full((N, 2), 2.0)
    y = layer.train()(x)
    mean, var = layer.noise_moments()
    check_moments(y[:, 0] / 2, mean[0, 0], var[0, 0])


def test_variational_dropout_noise_moments(check_moments):
    layer = VariationalDropout(1, init_alpha=0.36, generator=torch.Generator().manual_seed(0))
    y = layer.train()(torch.ones(N, 1))
    check_moments(y, *layer.noise_moments())
    assert layer.noise_moments()[1].item() == pytest.approx(0.36)


def test_variational_linear_local_reparametrization_moments(check_moments):
    layer = VariationalDropoutLinear(3, 1, init_alpha=0.5, generator=torch.Generator().manual_seed(0))
    x = torch.tensor([[1.0, -2.0, 0.5]])
    w, b = layer.weight.detach(), layer.bias.detach()
    _, alpha = layer.noise_moments()
    # weights w_ij ~ N(θ_ij, α_j θ_ij²): b = Σ_j x_j w_ij + b_i has mean xθᵀ + b, variance Σ_j α_j x_j² θ_ij²
    with torch.no_grad():
        y = layer.train()(x.expand(N, 3))
    check_moments(y, (x @ w.T + b).item(), ((x**2) @ (alpha * w**2).T).item())


def test_spiking_output_moments(check_moments):
    o = torch.full((N, 1), 0.3)
    layer = StochasticSpiking(2.0, generator=torch.Generator().manual_seed(0))
    y = layer.train()(o)
    mean, var = layer.noise_moments()  # of ξ with r·Δ = O·ξ
    check_moments(y / o, mean, var[0, 0])


def test_backpercolation_factor_moments(check_moments):
    layer = BackpercolationSigmoid(generator=torch.Generator().manual_seed(0))
    s = torch.full((N,), 0.5)
    factor = _recorded(layer, s)
    d = torch.sigmoid(s) * (1 - torch.sigmoid(s))
    mean, var = layer.noise_moments()  # of factor / f'(s)
    check_moments(factor / d, mean, var[0])


@pytest.mark.parametrize("scale", ["inverted", "none"])
def test_training_mean_equals_evaluation_output(scale, check_moments):
    # both scalings: the expected training output is the evaluation output (B&S eq. 8 weight scaling)
    x = torch.tensor([1.5, -0.5])
    layer = BernoulliDropout(0.3, scale, generator=torch.Generator().manual_seed(0))
    y = layer.train()(x.expand(N, 2))
    ev = layer.eval()(x)
    mean, var = layer.noise_moments()
    for j in range(2):
        check_moments(y[:, j], ev[j], var * x[j] ** 2)


@pytest.mark.parametrize("scale", ["inverted", "none"])
def test_dropconnect_training_mean_equals_evaluation_output(scale, check_moments):
    layer = DropConnectLinear(3, 1, 0.4, scale=scale, generator=torch.Generator().manual_seed(0))
    x = torch.tensor([[0.5, -1.0, 2.0]])
    with torch.no_grad():
        y = layer.train()(x.expand(N, 3))
        ev = layer.eval()(x)
    _, var = layer.noise_moments()
    w = layer.weight.detach()
    check_moments(y, ev.item(), (var * (w * x) ** 2).sum().item())  # B&S eq. 19 (with the scale c²)


def test_inverted_and_none_differ_only_by_the_keep_factor():
    x = torch.randn(4, 3)
    inv, none = BernoulliDropout(0.25).eval(), BernoulliDropout(0.25, "none").eval()
    assert torch.allclose(inv(x) * 0.75, none(x))
    mean_inv, mean_none = BernoulliDropout(0.25).noise_moments()[0], BernoulliDropout(0.25, "none").noise_moments()[0]
    assert math.isclose(mean_inv * 0.75, mean_none)
