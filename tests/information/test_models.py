"""All-CNN-32/96 follow Table 2; the size-sweep FNN; dropout kinds by name; α never exceeds the cap."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from droplab.information import ib_loss_fn
from droplab.models import NOISE_KINDS, AllCNN, size_sweep_fnn
from droplab.nn import BernoulliDropout, InformationDropout


@pytest.mark.parametrize("plan, convs, drops, size", [("allcnn32", 9, 2, 32), ("allcnn96", 15, 4, 96)])
def test_allcnn_follows_table_2(plan, convs, drops, size):
    model = AllCNN(plan, in_channels=3, width=1.0, dropout=0.5)
    mods = list(model.features)
    conv = [m for m in mods if isinstance(m, nn.Conv2d)]
    assert len(conv) == convs
    # batch normalization directly before every activation, right after every conv
    for i, m in enumerate(mods):
        if isinstance(m, nn.Conv2d):
            assert isinstance(mods[i + 1], nn.BatchNorm2d) and isinstance(mods[i + 2], nn.ReLU)
    # a dropout layer after (the activation of) each stride-2 conv, and only there
    stride2 = [i for i, m in enumerate(mods) if isinstance(m, nn.Conv2d) and m.stride == (2, 2)]
    assert [i + 3 for i in stride2] == [i for i, m in enumerate(mods) if isinstance(m, BernoulliDropout)]
    assert len(stride2) == drops
    first = 96 if plan == "allcnn32" else 32
    assert conv[0].out_channels == first and conv[-1].out_channels == 10 and conv[-1].kernel_size == (1, 1)
    half = AllCNN(plan, width=0.5)
    assert [c.out_channels for c in half.features if isinstance(c, nn.Conv2d)][:-1] == \
        [c.out_channels // 2 for c in conv][:-1]
    assert model(torch.zeros(2, 3, size, size)).shape == (2, 10)


@pytest.mark.parametrize("kind", NOISE_KINDS)
def test_every_kind_builds_and_runs(kind):
    torch.manual_seed(0)
    cnn = AllCNN("allcnn32", in_channels=1, width=0.05, noise=kind, dropout=0.5)
    fnn = size_sweep_fnn(64, 12, noise=kind, dropout=0.5)
    assert cnn(torch.rand(3, 1, 8, 8)).shape == (3, 10)
    assert fnn(torch.rand(3, 64)).shape == (3, 10)
    assert fnn.widths == [64, 12, 12, 12, 10]


@pytest.mark.parametrize("cap", [0.5, 0.7, 1.0])
def test_alpha_never_exceeds_the_cap(cap):
    torch.manual_seed(0)
    model = AllCNN("allcnn32", in_channels=1, width=0.1, noise="information", max_alpha=cap).train()
    layers = [m for m in model.modules() if isinstance(m, InformationDropout)]
    for layer in layers:  # drive the α heads into saturation
        nn.init.constant_(layer.head.bias, 50.0)
    model(torch.randn(8, 1, 8, 8) * 100)
    assert len(layers) == 2
    for layer in layers:
        assert float(layer.last_alpha.max()) <= cap
        assert float(layer.last_alpha.max()) > 0.99 * cap  # saturated: the cap, not something smaller, binds


@pytest.mark.parametrize("beta", [0.0, 0.3, 2.0])
def test_loss_kl_term_is_beta_times_sum_of_layer_kls_over_n_train(beta):
    """Ground truth from Proposition 1 directly: KL = log(cap/α) per unit where f(x) > 0, 0 where f(x) = 0."""
    torch.manual_seed(1)
    model = AllCNN("allcnn32", in_channels=1, width=0.1, noise="information", max_alpha=0.5).train()
    inputs = {}
    for name, layer in model.named_modules():
        if isinstance(layer, InformationDropout):
            layer.register_forward_hook(lambda m, i, o, name=name: inputs.__setitem__(name, i[0].detach()))
    x, y, n_train = torch.randn(6, 1, 8, 8), torch.randint(0, 10, (6,)), 500
    logits = model(x)
    loss = ib_loss_fn(model, beta, n_train)(logits, y)
    total = 0.0
    for name, layer in model.named_modules():
        if isinstance(layer, InformationDropout):
            per_unit = torch.where(inputs[name] > 0, torch.log(0.5 / layer.last_alpha), torch.zeros(()))
            total = total + per_unit.flatten(1).sum(1).mean()
    expected = nn.functional.cross_entropy(logits, y) + beta * total / n_train
    assert loss.item() == pytest.approx(expected.item(), rel=1e-6)


def test_bad_input():
    with pytest.raises(ValueError, match="max_alpha must be finite and > 0"):
        AllCNN(noise="information", max_alpha=0.0)
    with pytest.raises(ValueError, match="dropout kind must be one of"):
        size_sweep_fnn(64, 8, noise="gaussian-ish")
    with pytest.raises(ValueError, match="activation must be one of"):
        AllCNN(activation="tanh")
    with pytest.raises(ValueError, match="beta must be finite and >= 0"):
        ib_loss_fn(AllCNN(noise="information"), -1.0, 10)
    with pytest.raises(ValueError, match="no information or variational dropout layers"):
        ib_loss_fn(AllCNN(dropout=0.5), 1.0, 10)


def test_information_kind_needs_relu_or_softplus():
    with pytest.raises(ValueError, match="activation \\(Information Dropout's prior follows it\\) must be one of"):
        size_sweep_fnn(64, 8, noise="information", activation="tanh")
    assert isinstance(size_sweep_fnn(64, 8, noise="information", activation="softplus").net[2], InformationDropout)
    assert size_sweep_fnn(64, 8, noise="information", activation="softplus").net[2].prior == "log-normal"
