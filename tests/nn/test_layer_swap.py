"""Each layer in place of dropout in a small FNN on sklearn's digits: a few Adam steps lower the loss."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
from sklearn.datasets import load_digits
from torch import nn

from droplab.losses import information_bottleneck
from droplab.nn import (
    BackpercolationSigmoid,
    BernoulliDropout,
    DropConnectLinear,
    Dropin,
    GaussianDropout,
    InformationDropout,
    LogNormalDropout,
    OUDropout,
    StochasticSpiking,
    VariationalDropout,
    VariationalDropoutLinear,
)

H = 32


def _swap(layer: nn.Module) -> Callable[[], nn.Sequential]:
    return lambda: nn.Sequential(nn.Linear(64, H), nn.ReLU(), layer, nn.Linear(H, 10))


NETS = {  # nn.Sequential(Linear, ReLU, Layer, Linear), with the variants each layer needs
    "bernoulli": _swap(BernoulliDropout(0.3)),
    "dropin": _swap(Dropin(0.1)),
    "gaussian": _swap(GaussianDropout(p=0.3)),
    "ou": _swap(OUDropout(0.5, 5.0)),
    "lognormal": _swap(LogNormalDropout(0.5)),
    "information": _swap(InformationDropout(H)),
    "variational": _swap(VariationalDropout(H)),
    # connection layers replace the last Linear; spiking and backpercolation need activities in [0, 1]
    "dropconnect": lambda: nn.Sequential(nn.Linear(64, H), nn.ReLU(), DropConnectLinear(H, 10, 0.3)),
    "variational-linear": lambda: nn.Sequential(nn.Linear(64, H), nn.ReLU(), VariationalDropoutLinear(H, 10)),
    "spiking": lambda: nn.Sequential(nn.Linear(64, H), nn.Sigmoid(), StochasticSpiking(1.0), nn.Linear(H, 10)),
    "spiking-connection": lambda: nn.Sequential(nn.Linear(64, H), nn.Sigmoid(),
                                                StochasticSpiking(1.0, "connection", linear=nn.Linear(H, 10))),
    "backpercolation": lambda: nn.Sequential(nn.Linear(64, H), BackpercolationSigmoid(), nn.Linear(H, 10)),
}


@pytest.fixture(scope="module")
def digits() -> tuple[torch.Tensor, torch.Tensor]:
    x, y = load_digits(return_X_y=True)
    return torch.tensor(x[:256] / 16.0, dtype=torch.float32), torch.tensor(y[:256])


@pytest.mark.parametrize("name", list(NETS))
def test_layer_trains_on_digits(name, digits):
    x, y = digits
    torch.manual_seed(0)
    net = NETS[name]().train()
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    uses_kl = name in ("information", "variational", "variational-linear")

    def eval_loss() -> float:
        net.eval()
        with torch.no_grad():
            loss = nn.functional.cross_entropy(net(x), y).item()
        net.train()
        return loss

    before = eval_loss()
    for _ in range(25):
        opt.zero_grad()
        logits = net(x)
        loss = (information_bottleneck(logits, y, net, beta=1.0, n_train=len(x)) if uses_kl
                else nn.functional.cross_entropy(logits, y))
        loss.backward()
        opt.step()
    after = eval_loss()
    assert after < 0.8 * before, (before, after)
