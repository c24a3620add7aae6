"""The fully connected net: placement of dropout, activations, pluggable layers, bad input."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from droplab.models import FNN, Logistic
from droplab.nn import BernoulliDropout, noise_layers


def test_dropout_positions_input_and_hidden():
    net = FNN([5, 4, 3, 2], dropout={0: 0.2, 2: 0.5})
    kinds = [type(m).__name__ for m in net.net]
    assert kinds == ["BernoulliDropout", "Linear", "ReLU", "Linear", "ReLU", "BernoulliDropout", "Linear"]
    assert [layer.p for layer in noise_layers(net)] == [0.2, 0.5]


def test_pluggable_layer_type_is_torch_dropout():
    net = FNN([5, 4, 2], dropout={1: 0.3}, noise=nn.Dropout)
    assert isinstance(net.net[2], nn.Dropout) and net.net[2].p == 0.3


def test_logistic_family_eq27():
    f = Logistic(gain=2.0, c=3.0)
    s = torch.linspace(-3, 3, 7)
    assert torch.allclose(f(s), 1 / (1 + 3.0 * torch.exp(-2.0 * s)))


def test_eval_mode_is_the_weight_scaled_network():
    torch.manual_seed(0)
    net = FNN([6, 5, 2], activation="linear", dropout={1: 0.25}, noise=lambda p: BernoulliDropout(p, "none"))
    x = torch.randn(3, 6)
    net.eval()
    lin1, lin2 = net.linears
    assert torch.allclose(net(x), lin2(0.75 * lin1(x)))


@pytest.mark.parametrize("kwargs,match", [
    ({"widths": [5]}, "widths must list at least"),
    ({"widths": [5, 0, 2]}, r"widths\[1\] must be an integer >= 1"),
    ({"widths": [5, 4, 2], "dropout": {3: 0.5}}, "dropout position must be 0"),
    ({"widths": [5, 4, 2], "dropout": {1: 1.0}}, r"dropout\[1\] must be in \[0, 1\)"),
    ({"widths": [5, 4, 2], "activation": "gelu"}, "activation must be one of"),
])
def test_bad_input(kwargs, match):
    with pytest.raises(ValueError, match=match):
        FNN(**kwargs)
