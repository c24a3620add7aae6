"""The bs-spiking and bs-backpercolation network helpers against their definitions (B&S §10)."""

from __future__ import annotations

import torch

from droplab.experiments.bs.backpercolation import BackpercolationLogistic, attenuation
from droplab.experiments.bs.spiking import propagate
from droplab.models import FNN
from droplab.nn import BernoulliDropout
from droplab.training import evaluation


def test_backprop_rule_is_the_sigmoid_gradient_and_adaptive_is_unbiased():
    s = torch.linspace(-3, 3, 7, dtype=torch.float64)
    a = s.clone().requires_grad_(True)
    BackpercolationLogistic("backprop")(a).sum().backward()
    torch.testing.assert_close(a.grad, torch.sigmoid(s) * (1 - torch.sigmoid(s)))
    n = 40000
    b = s.repeat(n, 1).requires_grad_(True)
    BackpercolationLogistic("adaptive", generator=torch.Generator().manual_seed(0))(b).sum().backward()
    deriv = torch.sigmoid(s) * (1 - torch.sigmoid(s))
    # Mean of n Bernoulli(σ') draws: stderr √(σ'(1−σ')/n) ≤ 0.0025; 7 entries, 5 standard errors.
    assert ((b.grad.mean(0) - deriv).abs() <= 5 * (deriv * (1 - deriv) / n).sqrt()).all()
    c = s.repeat(n, 1).requires_grad_(True)
    BackpercolationLogistic("fixed", 0.3, torch.Generator().manual_seed(1))(c).sum().backward()
    assert ((c.grad.mean(0) - 0.3).abs() <= 5 * (0.21 / n) ** 0.5).all()


def test_attenuation_backprop_is_derivative_to_the_depth():
    ratios = attenuation(6, 50, 0.1, "backprop", 0.5, 3, torch.Generator().manual_seed(0))
    assert all(abs(r / 1e-6 - 1) < 1e-9 for r in ratios)


def test_propagate_matches_the_dropout_net_and_eq130():
    torch.manual_seed(0)
    net = FNN([5, 6, 4, 3], "logistic", dropout={1: 0.5, 2: 0.5},
              dropout_layer=lambda p: BernoulliDropout(p, scale="none"))
    x = torch.randn(4, 5)
    acts, signals = propagate(net.linears, x, 0.5, "deterministic", 1)
    with evaluation(net), torch.no_grad():
        torch.testing.assert_close(acts[-1][0], torch.sigmoid(net(x)))
    n = 20000
    spikes, sig = propagate(net.linears, x, 0.5, "spiking", n, torch.Generator().manual_seed(0))
    o = spikes[0][0]  # first hidden layer: deterministic given the input
    # eq. 130: E(Δ) = r·O; Δ ∈ {0, r} so the stderr is r·√(O(1−O)/n) ≤ 0.0018; 5 standard errors.
    assert ((sig[0].mean(0) - 0.5 * o).abs() <= 5 * 0.5 * (o * (1 - o) / n).sqrt() + 1e-7).all()
    assert set(torch.unique(sig[0]).tolist()) <= {0.0, 0.5}


def test_dropin_sets_units_to_one_and_its_mean_is_the_evaluation_layer():
    from droplab.experiments.bs.dropin import SetToOne
    from droplab.nn import mc_mode

    layer = SetToOne(0.3, generator=torch.Generator().manual_seed(0))
    x = torch.rand(40000, 3, dtype=torch.float64) * 0.5
    with mc_mode(layer):
        out = layer(x)
    ones = (out == 1).double().mean(0)
    # fraction of units set to 1 ~ Bernoulli(0.3) mean over 40000 draws: stderr 0.0023; 5 standard errors
    assert ((ones - 0.3).abs() <= 5 * (0.21 / 40000) ** 0.5).all()
    layer.eval()
    torch.testing.assert_close(layer(x[:2]), 0.7 * x[:2] + 0.3)
