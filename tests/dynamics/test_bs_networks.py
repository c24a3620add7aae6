"""The bs-spiking and bs-backpercolation network helpers against their definitions (B&S §10)."""

from __future__ import annotations

import torch

from droplab.experiments.bs.backpercolation import attenuation
from droplab.experiments.bs.spiking import propagate, twin
from droplab.models import FNN
from droplab.nn import BernoulliDropout, noise_layers
from droplab.nn.modes import evaluation


def test_attenuation_backprop_is_derivative_to_the_depth():
    ratios = attenuation(6, 50, 0.1, "backprop", 0.5, 3, torch.Generator().manual_seed(0))
    assert all(abs(r / 1e-6 - 1) < 1e-9 for r in ratios)


def test_attenuation_backpercolation_mean_square_is_keep_to_the_depth():
    # Orthogonal Wᵀ keeps norms and E‖δ ⊙ g‖² = q‖g‖² for δ ~ Bernoulli(q) given g, so E[ratio²] = q^L
    # exactly (adaptive: q = the derivative; fixed: q = p). Monte Carlo over passes, 5 standard errors.
    for rule, q in (("adaptive", 0.6), ("fixed", 0.3)):
        ratios = torch.tensor(attenuation(4, 20, 0.6, rule, 0.3, 4000, torch.Generator().manual_seed(1)))
        sq = ratios ** 2
        assert abs(float(sq.mean()) - q ** 4) < 5 * float(sq.std()) / 4000 ** 0.5


def test_twins_share_weights_and_propagate_matches_eq130():
    torch.manual_seed(0)
    net = FNN([5, 6, 4, 3], "logistic", dropout={1: 0.5, 2: 0.5},
              noise=lambda p: BernoulliDropout(p, scale="none"))
    x = torch.randn(4, 5)
    acts, _ = propagate(twin(net, "dropout", 0.5), x, "deterministic", 1)
    with evaluation(net), torch.no_grad():
        torch.testing.assert_close(acts[-1][0], torch.sigmoid(net(x)))
    n = 20000
    spiking = twin(net, "spiking", 0.5)
    spikes, sig = propagate(spiking, x, "sample", n, torch.Generator().manual_seed(0))
    o = spikes[0][0]  # first hidden layer: deterministic given the input
    # eq. 130: E(Δ) = r·O; Δ ∈ {0, r} so the stderr is r·√(O(1−O)/n) ≤ 0.0018; 5 standard errors.
    assert ((sig[0].mean(0) - 0.5 * o).abs() <= 5 * 0.5 * (o * (1 - o) / n).sqrt() + 1e-7).all()
    assert set(torch.unique(sig[0]).tolist()) <= {0.0, 0.5}
    assert all(layer.generator is None for layer in noise_layers(spiking))  # generators restored
