"""Each layer is a thin call of its functional twin: the same output and the same noise for the same generator, in
both modes; every twin follows one contract (``out`` or ``(out, noise)``; a given ``noise`` is replayed)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import droplab.nn as dnn
from droplab.nn import functional as F


def _g() -> torch.Generator:
    return torch.Generator().manual_seed(11)


X = torch.rand(5, 4, dtype=torch.float64)  # in [0, 1]: valid activities for the spiking units too
LIN = nn.Linear(4, 3).double()

# (id, layer, twin(x, training, **kw) with the same law parameters)
TWINS = [
    ("bernoulli", lambda: dnn.BernoulliDropout(0.3, "none", shared_dims=(1,)),
     lambda m, x, t, **kw: F.bernoulli_dropout(x, 0.3, t, scale="none", shared_dims=(1,), **kw)),
    ("dropin", lambda: dnn.Dropin(0.4), lambda m, x, t, **kw: F.dropin(x, 0.4, t, **kw)),
    ("gaussian", lambda: dnn.GaussianDropout(p=0.2),
     lambda m, x, t, **kw: F.gaussian_dropout(x, p=0.2, training=t, **kw)),
    ("lognormal", lambda: dnn.LogNormalDropout(0.3), lambda m, x, t, **kw: F.lognormal_dropout(x, 0.3, t, **kw)),
    ("ou-first-step", lambda: dnn.OUDropout(0.3, 2.0), lambda m, x, t, **kw: F.ou_dropout(x, None, 0.3, 2.0, t, **kw)),
    ("spiking", lambda: dnn.StochasticSpiking(2.0), lambda m, x, t, **kw: F.stochastic_spiking(x, 2.0, t, **kw)),
    ("spiking-connection", lambda: dnn.StochasticSpiking(2.0, "connection", linear=LIN),
     lambda m, x, t, **kw: F.spiking_linear(x, LIN.weight, LIN.bias, 2.0, t, **kw)),
    ("backpercolation", lambda: dnn.BackpercolationSigmoid(),
     lambda m, x, t, **kw: F.backpercolation(x, torch.sigmoid, None, None, t, **kw)),
    ("dropconnect", lambda: dnn.DropConnectLinear(4, 3, 0.3),
     lambda m, x, t, **kw: F.dropconnect_linear(x, m.weight, m.bias, 0.3, t, **kw)),
    ("information", lambda: dnn.InformationDropout(4),
     lambda m, x, t, **kw: F.information_dropout(x, m.alpha(x), t, **kw)),
    ("variational", lambda: dnn.VariationalDropout(4, init_alpha=0.3),
     lambda m, x, t, **kw: F.variational_dropout(x, m.clamped_log_alpha(), t, **kw)),
    ("variational-linear", lambda: dnn.VariationalDropoutLinear(4, 3),
     lambda m, x, t, **kw: F.variational_linear(x, m.weight, m.bias, m.clamped_log_alpha(), t, **kw)),
]


@pytest.mark.parametrize("make, twin", [c[1:] for c in TWINS], ids=[c[0] for c in TWINS])
@pytest.mark.parametrize("train", [True, False], ids=["train", "eval"])
def test_layer_equals_its_twin(make, twin, train):
    layer = make().double().train(train)
    layer.generator = _g()
    with dnn.record_masks(layer) as rec:
        out = layer(X)
    reference, noise = twin(layer, X, train, generator=_g(), return_noise=True)
    assert torch.equal(out, reference)
    if train:
        assert torch.equal(rec[""][0], noise)
        assert torch.equal(twin(layer, X, True, noise=noise), out)  # a given noise is replayed
    assert isinstance(twin(layer, X, train, generator=_g()), torch.Tensor)  # one output without return_noise


@pytest.mark.parametrize("make, twin", [c[1:] for c in TWINS], ids=[c[0] for c in TWINS])
def test_sample_noise_is_the_twins_draw(make, twin):
    layer = make().double()
    layer.generator = _g()
    _, noise = twin(layer, X, True, generator=_g(), return_noise=True)
    assert torch.equal(layer.sample_noise(X), noise)
