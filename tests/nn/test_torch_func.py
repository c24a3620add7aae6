"""torch.func transforms: evaluation mode and replayed noise make every layer a pure function."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.func import functional_call, grad, vmap

from droplab.nn import (
    DropConnectLinear,
    GaussianDropout,
    InformationDropout,
    VariationalDropout,
    record_masks,
    replay_masks,
)


@pytest.mark.parametrize("make", [lambda: InformationDropout(4), lambda: DropConnectLinear(4, 3, 0.3),
                                  lambda: VariationalDropout(4)], ids=["information", "dropconnect", "variational"])
def test_vmap_in_eval_mode_equals_the_batch(make):
    torch.manual_seed(0)
    layer = make().eval()
    x = torch.rand(6, 4)
    assert torch.allclose(vmap(layer)(x), layer(x), atol=1e-6)


@pytest.mark.parametrize("make", [lambda: GaussianDropout(p=0.3), lambda: VariationalDropout(4),
                                  lambda: InformationDropout(4)], ids=["gaussian", "variational", "information"])
def test_grad_under_replay_equals_autograd(make):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), make(), nn.Linear(4, 1)).train()
    x = torch.randn(5, 3)
    with record_masks(model) as rec:
        model(x)
    masks = {name: noises[0] for name, noises in rec.items()}
    params = {k: v.detach() for k, v in model.named_parameters()}
    with replay_masks(model, masks):
        g = grad(lambda p: functional_call(model, p, (x,)).sum())(params)
        model.zero_grad()
        model(x).sum().backward()
    for name, param in model.named_parameters():
        assert torch.allclose(g[name], param.grad, atol=1e-6), name
