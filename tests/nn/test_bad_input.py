"""Bad input to the noise layers and their functions is one line naming the argument (issue 14): non-floating
inputs, wrong types for ``p`` / ``generator``, a ``p`` on another device, a replayed mask that does not fit (the
layer named), Kingma's KL outside its range; and the log-normal prior follows ``.double()``."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

import droplab.nn as dnn
from droplab.models import FNN
from droplab.nn import BernoulliDropout, DropConnectLinear, InformationDropout, functional, replay_masks

LAYERS = {
    "bernoulli": lambda: BernoulliDropout(0.3),
    "dropin": lambda: dnn.Dropin(0.3),
    "gaussian": lambda: dnn.GaussianDropout(p=0.3),
    "lognormal": lambda: dnn.LogNormalDropout(0.3),
    "ou": lambda: dnn.OUDropout(0.3, 2.0),
    "information": lambda: InformationDropout(3),
    "variational": lambda: dnn.VariationalDropout(3),
    "variational-linear": lambda: dnn.VariationalDropoutLinear(3, 2),
    "dropconnect": lambda: DropConnectLinear(3, 2, 0.3),
    "spiking": lambda: dnn.StochasticSpiking(1.0),
    "backpercolation": lambda: dnn.Backpercolation(),
}


@pytest.mark.parametrize("kind", LAYERS)
@pytest.mark.parametrize("dtype", [torch.int64, torch.bool])
@pytest.mark.parametrize("train", [True, False], ids=["train", "eval"])
def test_noise_layers_reject_non_floating_inputs(kind, dtype, train):
    """torch's dropout raises on integer input; droplab's layers did not (mean 7.0 for inputs of 10 at p = 0.3)."""
    layer = LAYERS[kind]().train(train)
    x = torch.ones(4, 3, dtype=dtype) if dtype == torch.bool else torch.full((4, 3), 10, dtype=dtype)
    with pytest.raises(TypeError) as info:
        layer(x)
    assert f"input must be a floating-point tensor, got dtype {dtype}" in str(info.value)
    assert "\n" not in str(info.value)


META_P = torch.full((3,), 0.3, device="meta")  # "another device" that exists on every machine

BAD = [
    # (error type, words the line must hold, call)
    (TypeError, "p must be a real number or a tensor, got str", lambda: BernoulliDropout("0.3")),
    (TypeError, "p must be a real number or a tensor, got NoneType", lambda: dnn.Dropin(None)),
    (TypeError, "p must be a real number or a tensor, got bool", lambda: DropConnectLinear(3, 2, True)),
    (TypeError, "sigma must be a real number or a tensor, got str", lambda: dnn.GaussianDropout(sigma="1")),
    (TypeError, "alpha must be a real number or a tensor, got list", lambda: dnn.LogNormalDropout([[0.1], 0.2])),
    (TypeError, "generator must be a torch.Generator or None, got int", lambda: BernoulliDropout(0.3, generator=0)),
    (TypeError, "generator must be a torch.Generator or None, got str",
     lambda: InformationDropout(3, generator="seed")),
    (TypeError, "generator must be a torch.Generator or None, got int",
     lambda: functional.bernoulli_dropout(torch.ones(2, 3), 0.3, generator=7)),
    (TypeError, "generator must be a torch.Generator or None, got int",
     lambda: functional.gaussian_dropout(torch.ones(2, 3), p=0.3, generator=7)),
    (TypeError, "input must be a floating-point tensor, got list", lambda: functional.dropin([1.0, 2.0], 0.3)),
    (ValueError, "p is on meta but the input on cpu",
     lambda: functional.bernoulli_dropout(torch.ones(2, 3), META_P)),
    (ValueError, "p is on meta but the input on cpu", lambda: functional.dropin(torch.ones(2, 3), META_P)),
    (ValueError, "p is on meta but the input on cpu",
     lambda: BernoulliDropout(torch.full((3,), 0.3)).to("meta").train()(torch.ones(2, 3))),
    (ValueError, "max_alpha must be <= 1 (Kingma et al.'s KL approximation holds for α ≤ 1), got 4.0",
     lambda: dnn.VariationalDropout(3, max_alpha=4.0)),
    (ValueError, "max_alpha must be <= 1", lambda: dnn.VariationalDropoutLinear(3, 2, max_alpha=1.5)),
    (ValueError, "noise: dropout kind must be one of", lambda: FNN([3, 2], dropout=0.1, noise="bernouli")),
]


@pytest.mark.parametrize("error, words, call", BAD, ids=[f"{i}-{e.__name__}" for i, (e, _, _) in enumerate(BAD)])
def test_bad_arguments_are_one_line_errors_naming_the_argument(error, words, call):
    with pytest.raises(error) as info:
        call()
    assert words in str(info.value) and "\n" not in str(info.value), str(info.value)


def _net() -> FNN:
    return FNN([5, 4, 3, 2], dropout={1: 0.5, 2: 0.5}).train()  # noise layers net.2 (4 units), net.5 (3 units)


@pytest.mark.parametrize("mask, words", [
    (torch.ones(6, 4), "layer 'net.2' has shape (6, 4), which does not broadcast to its input's shape (2, 4)"),
    (torch.ones(3), "layer 'net.2' has shape (3,), which does not broadcast to its input's shape (2, 4)"),
    (torch.ones(1, 2, 4), "layer 'net.2' has shape (1, 2, 4)"),  # broadcasts, but would change the output shape
    ([torch.ones(2, 4), torch.ones(2, 5)], "layer 'net.2' has shape (2, 5)"),  # the second call of a recording
], ids=["rows", "units", "extra-dim", "second-call"])
def test_a_replayed_mask_of_the_wrong_shape_names_the_layer(mask, words):
    net, x = _net(), torch.randn(2, 5)
    with pytest.raises(ValueError) as info, replay_masks(net, {"net.2": mask}):
        net(x)
        net(x)
    assert words in str(info.value) and "\n" not in str(info.value), str(info.value)


def test_a_replayed_connection_mask_of_the_wrong_shape_names_the_layer():
    net = nn.Sequential(DropConnectLinear(3, 2, 0.5)).train()
    with pytest.raises(ValueError, match=r"replayed noise for layer '0' of shape \(4, 2, 2\) does not fit its input"), \
            replay_masks(net, {"0": torch.ones(4, 2, 2)}):
        net(torch.ones(4, 3))
    with replay_masks(net, {"0": torch.ones(4, 2, 3)}):  # the right shape replays
        assert torch.allclose(net(torch.ones(4, 3)), net[0].weight.sum(1) + net[0].bias)


def test_information_dropout_log_normal_prior_follows_double():
    """μ, σ of the log-normal prior are a parameter / buffer pair, so ``.double()`` converts them and the KL is
    computed in float64 (a float32 σ would round log σ to 7 digits); ``.float()`` converts them back."""
    for learn in (True, False):
        layer = InformationDropout(3, prior="log-normal", mu=0.1, sigma=0.7, learn_prior=learn).double()
        assert layer.prior_mu.dtype == layer.prior_log_sigma.dtype == torch.float64
        layer(torch.rand(4, 3, dtype=torch.float64))
        assert layer.kl.dtype == torch.float64
        assert layer.prior_log_sigma.item() == pytest.approx(math.log(0.7), rel=1e-7)
        assert layer.float().prior_mu.dtype == layer.prior_log_sigma.dtype == torch.float32
