"""Learning phases: Monte Carlo unit statistics vs exact enumeration over masks; sparsity; bad input."""

from __future__ import annotations

import itertools

import pytest
import torch
from torch import nn

from droplab.dynamics import active_units, hidden_activations, record_phases, sparsity, unit_activity
from droplab.models import FNN, Logistic
from droplab.nn import BernoulliDropout
from droplab.training import TrainConfig


def net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(3, 4), Logistic(), BernoulliDropout(0.4, scale="none"), nn.Linear(4, 3),
                         Logistic()).double()


def test_unit_activity_matches_enumeration():
    model = net().eval()
    x = torch.randn(5, 3, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    n = 20000
    mean, std, ens = unit_activity(model, x, n, torch.Generator().manual_seed(2))
    h = torch.sigmoid(model[0](x)).detach()
    outs, probs = [], []
    for bits in itertools.product([0.0, 1.0], repeat=4):
        b = torch.tensor(bits, dtype=torch.float64)
        probs.append(float((0.6 ** b * 0.4 ** (1 - b)).prod()))
        outs.append(torch.sigmoid(model[3](h * b)).detach())
    outs, probs = torch.stack(outs), torch.tensor(probs, dtype=torch.float64)
    exact_mean = torch.tensordot(probs, outs, dims=1)
    exact_std = torch.tensordot(probs, (outs - exact_mean) ** 2, dims=1).sqrt()
    torch.testing.assert_close(mean[0], h, rtol=0, atol=1e-12)  # below the dropout: deterministic
    assert std[0].abs().max() < 1e-12
    # MC mean error ≤ 5·std/√n per entry (CLT, 15 entries); the std estimate's error is ≈ std/√(2n) ≪ 5%.
    assert ((mean[1] - exact_mean).abs() <= 5 * exact_std / n**0.5 + 1e-12).all()
    torch.testing.assert_close(std[1], exact_std, rtol=0.05, atol=1e-6)
    torch.testing.assert_close(ens[1], torch.sigmoid(model[3](0.6 * h)).detach())
    assert not model.training


def test_record_phases_shapes_and_sparsity_helpers():
    torch.manual_seed(0)
    model = FNN([4, 6, 5, 2], "logistic", dropout={1: 0.5, 2: 0.5}).double()
    x = torch.randn(20, 4, dtype=torch.float64)
    y = (x[:, 0] > 0).long()
    rec = record_phases(model, nn.functional.cross_entropy, (x, y), x[:3], TrainConfig(lr=0.5, steps=6),
                        record_every=3, n_samples=50)
    assert rec.steps == [0, 3, 6]
    assert [m.shape for m in rec.mean] == [(3, 3, 6), (3, 3, 5)]
    assert sparsity(torch.tensor([0.0, 0.05, 0.5, 0.9])) == 0.5
    assert active_units(torch.tensor([0.05, 0.2])).tolist() == [False, True]


def test_bad_input():
    with pytest.raises(ValueError, match="model has no activation module"):
        hidden_activations(nn.Sequential(nn.Linear(2, 2)))
    with pytest.raises(ValueError, match="n_samples must be an integer >= 2"):
        unit_activity(net(), torch.zeros(1, 3, dtype=torch.float64), 1)
