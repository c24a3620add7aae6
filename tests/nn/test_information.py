"""Information Dropout KL (Achille & Soatto 2017, Propositions 1–2) against quadrature; conv use; the IB loss."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import integrate, stats
from torch import nn

from droplab.losses import information_bottleneck
from droplab.nn import BernoulliDropout, InformationDropout, VariationalDropout, laws


def _kl_quad(m1: float, s1: float, m2: float, s2: float) -> float:
    """KL(N(m1, s1²) ‖ N(m2, s2²)) of the log-space densities by numerical integration."""
    p, q = stats.norm(m1, s1), stats.norm(m2, s2)
    val, err = integrate.quad(lambda t: p.pdf(t) * (p.logpdf(t) - q.logpdf(t)), m1 - 12 * s1, m1 + 12 * s1,
                              epsabs=1e-12, epsrel=1e-10)
    return val


@pytest.mark.parametrize("alpha,mu,sigma,f", [
    (0.1, 0.0, 1.0, 1.0), (0.3, -0.5, 0.7, 0.4), (0.5, 1.0, 2.0, 3.0), (0.45, 0.2, 0.3, 1.2), (0.05, -1.0, 1.5, 0.1),
])
def test_lognormal_prior_kl_matches_quadrature(alpha, mu, sigma, f):
    # Proposition 2: z = ε f(x) has log z ~ N(log f, α²); the prior is log z ~ N(μ, σ²)
    kl = laws.information_kl(torch.tensor([alpha], dtype=torch.float64), torch.tensor([f], dtype=torch.float64),
                                   "log-normal", mu=mu, sigma=sigma)
    assert kl.item() == pytest.approx(_kl_quad(math.log(f), alpha, mu, sigma), rel=1e-8, abs=1e-10)


def test_lognormal_prior_kl_reduces_to_printed_eq4_at_unit_activation():
    a, mu, s = 0.3, 0.4, 0.8
    kl = laws.information_kl(torch.tensor([a]), torch.ones(1), "log-normal", mu=mu, sigma=s)
    assert kl.item() == pytest.approx((a**2 + mu**2) / (2 * s**2) - math.log(a / s) - 0.5, rel=1e-6)


def test_log_uniform_prior_kl_is_minus_log_alpha_plus_const():
    # Proposition 1, eq. 3: KL = −H(log ε) + const = −log α + const; entropy of N(0, α²) in closed form
    alphas = torch.tensor([0.01, 0.05, 0.1, 0.3, 0.5], dtype=torch.float64)
    kl = laws.information_kl(alphas, torch.ones_like(alphas), "log-uniform", max_alpha=0.5)
    assert torch.allclose(kl + alphas.log(), torch.full_like(alphas, math.log(0.5)))
    entropy = torch.tensor([stats.norm(0, a.item()).entropy() for a in alphas], dtype=torch.float64)
    assert torch.allclose(kl + entropy, (kl + entropy)[0].expand(5))
    assert kl[-1].item() == pytest.approx(0.0) and bool((kl >= 0).all())


def test_log_uniform_prior_zero_units_cost_nothing():
    kl = laws.information_kl(torch.tensor([0.2, 0.2]), torch.tensor([0.0, 1.0]), "log-uniform")
    assert kl[0].item() == 0.0 and kl[1].item() > 0


def test_layer_kl_is_the_functional_kl_summed_per_sample():
    layer = InformationDropout(4, prior="log-normal", mu=0.3, sigma=0.9)
    x = torch.rand(6, 4) + 0.1
    layer.train()(x)
    alpha = layer.alpha(x)
    expected = laws.information_kl(alpha, x, "log-normal", mu=0.3, sigma=0.9).sum(1)
    assert layer.kl.shape == (6,) and torch.allclose(layer.kl, expected)
    assert bool((alpha < 0.5).all())


def test_fully_convolutional_alpha_per_position_and_kl_map():
    layer = InformationDropout(3, conv=True, max_alpha=0.7)
    for shape in [(2, 3, 5, 7), (2, 3, 9), (1, 3, 2, 3, 4)]:
        x = torch.rand(shape)
        y = layer.train()(x)
        assert y.shape == x.shape and layer.last_alpha.shape == x.shape
        assert layer.kl.shape == (shape[0],) and layer.kl_map.shape == (shape[0], *shape[2:])
        assert torch.allclose(layer.kl_map.flatten(1).sum(1), layer.kl)
    with pytest.raises(ValueError, match="features=3"):
        layer(torch.rand(2, 4, 5, 5))


def test_eval_output_is_the_expectation():
    layer = InformationDropout(3)
    x = torch.rand(4, 3)
    alpha = layer.alpha(x)
    assert torch.allclose(layer.eval()(x), x * (alpha**2 / 2).exp())


def test_information_bottleneck_loss_value_and_gradient():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), InformationDropout(3), nn.Linear(3, 2))
    x, y = torch.randn(8, 4), torch.randint(0, 2, (8,))
    logits = model(x)
    loss = information_bottleneck(logits, y, model, beta=2.0, n_train=50)
    expected = nn.functional.cross_entropy(logits, y) + 2.0 * model[2].kl.mean() / 50
    assert torch.allclose(loss, expected)
    loss.backward()
    assert model[2].head.weight.grad is not None and model[2].head.weight.grad.abs().sum() > 0


def test_information_bottleneck_counts_variational_layers():
    model = nn.Sequential(nn.Linear(4, 3), VariationalDropout(3), nn.Linear(3, 2))
    x, y = torch.randn(8, 4), torch.randint(0, 2, (8,))
    logits = model(x)
    loss = information_bottleneck(logits, y, model, beta=1.0, n_train=10)
    assert torch.allclose(loss, nn.functional.cross_entropy(logits, y) + model[1].kl / 10)


def test_information_bottleneck_bad_input():
    model = nn.Sequential(nn.Linear(4, 2), BernoulliDropout(0.5))
    logits, y = model(torch.randn(3, 4)), torch.zeros(3, dtype=torch.long)
    with pytest.raises(ValueError, match="no information or variational"):
        information_bottleneck(logits, y, model, beta=1.0, n_train=10)
    with pytest.raises(ValueError, match="beta"):
        information_bottleneck(logits, y, model, beta=-1.0, n_train=10)


def test_variational_kl_fit_is_zero_at_one_and_decreasing():
    la = torch.log(torch.tensor(np.linspace(0.05, 1.0, 20)))
    kl = laws.variational_kl(la)
    assert kl[-1].abs().item() < 1e-6 and bool((kl[:-1] > kl[1:]).all())


def test_variational_dropout_units_follow_the_channel_dim():
    layer = VariationalDropout(3).train()
    assert layer(torch.randn(2, 3, 4, 4)).shape == (2, 3, 4, 4)
    assert layer(torch.randn(5, 3)).shape == (5, 3)
    seq = VariationalDropout(3, conv=False).train()
    assert seq(torch.randn(2, 7, 3)).shape == (2, 7, 3)
    with pytest.raises(ValueError, match="features=3"):
        layer(torch.randn(2, 4, 3))
