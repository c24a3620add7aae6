"""Exact moments under connection and bias dropout against enumeration of every mask."""

from __future__ import annotations

import itertools

import pytest
import torch
from torch import nn

from droplab.ensemble.linear import deep_linear_moments, linear_moments
from droplab.nn import BernoulliDropout, DropConnectLinear, replay_masks


@pytest.mark.parametrize("scale", ["inverted", "none"])
def test_dropconnect_moments_equal_enumeration(scale):
    torch.manual_seed(0)
    layer = DropConnectLinear(3, 2, p=torch.tensor([[0.1, 0.3, 0.5], [0.2, 0.4, 0.6]]), per_example=False,
                              scale=scale).double()
    model = nn.Sequential(BernoulliDropout(0.25).double(), layer).train()
    model[0].eval()  # only the connection noise is enumerated; the unit layer gives its mean
    x = torch.randn(4, 3, dtype=torch.float64)
    keep = 1 - layer.p.double()
    c = 1 / keep if scale == "inverted" else torch.ones_like(keep)
    mean = torch.zeros(4, 2, dtype=torch.float64)
    second = torch.zeros(4, 2, 2, dtype=torch.float64)
    for bits in itertools.product((0.0, 1.0), repeat=6):  # all 2^6 masks of the 2×3 connections
        m = torch.tensor(bits, dtype=torch.float64).reshape(2, 3)
        prob = torch.where(m == 1, keep, 1 - keep).prod()
        with replay_masks(model, {"1": m * c}):
            y = model(x)
        mean += prob * y
        second += prob * y[:, :, None] * y[:, None, :]
    cov = second - mean[:, :, None] * mean[:, None, :]
    exact = linear_moments(nn.Sequential(nn.Identity(), layer), x)[-1]  # the eval-mode unit layer is the identity
    assert torch.allclose(exact.mean, mean, atol=1e-12)
    assert torch.allclose(exact.cov, cov, atol=1e-12)
    assert cov[:, 0, 1].abs().max() < 1e-12  # eq. 20: outputs uncorrelated under connection dropout


def test_bias_dropout_eqs_9_to_11_equal_enumeration():
    torch.manual_seed(1)
    w, b = torch.randn(2, 2, dtype=torch.float64), torch.randn(2, dtype=torch.float64)
    x = torch.randn(3, 2, dtype=torch.float64)
    p_in, p_b = torch.tensor([0.7, 0.4], dtype=torch.float64), torch.tensor([0.8, 0.3], dtype=torch.float64)
    mean = torch.zeros(3, 2, dtype=torch.float64)
    second = torch.zeros(3, 2, 2, dtype=torch.float64)
    for bits in itertools.product((0.0, 1.0), repeat=4):  # two input gates, two bias gates
        d = torch.tensor(bits, dtype=torch.float64)
        prob = torch.where(d == 1, torch.cat([p_in, p_b]), 1 - torch.cat([p_in, p_b])).prod()
        s = (x * d[:2]) @ w.T + b * d[2:]  # eq. 9
        mean += prob * s
        second += prob * s[:, :, None] * s[:, None, :]
    (m,) = deep_linear_moments(x, [w], [b], unit_keep=[p_in], bias_keep=[p_b])
    assert torch.allclose(m.mean, mean, atol=1e-12)  # eq. 10
    assert torch.allclose(m.cov, second - mean[:, :, None] * mean[:, None, :], atol=1e-12)  # eq. 11
