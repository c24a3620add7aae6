"""Exact linear-network moments (eqs. 15–26) against enumeration over every mask."""

from __future__ import annotations

import itertools

import pytest
import torch
from torch import nn

from droplab.ensemble.linear import (
    connection_dropout_layer,
    deep_linear_moments,
    enumerate_subnetworks,
    joint_linear_moments,
    linear_moments,
)
from droplab.models import FNN
from droplab.nn import BernoulliDropout, NoiseLayer

F64 = torch.float64


def _net(case: dict) -> nn.Module:
    torch.manual_seed(case["seed"])
    layers: list[nn.Module] = []
    widths = case["widths"]
    for k in range(len(widths) - 1):
        if k in case["drop"]:
            layers.append(BernoulliDropout(case["drop"][k], scale=case["scale"]))
        layers.append(nn.Linear(widths[k], widths[k + 1], bias=case["bias"]))
    return nn.Sequential(*layers).to(F64)


CASES = [
    {"id": "one-layer-inverted", "widths": [5, 3], "drop": {0: 0.5}, "scale": "inverted", "bias": True, "seed": 0},
    {"id": "deep-none", "widths": [3, 4, 3, 2], "drop": {0: 0.2, 1: 0.5, 2: 0.3}, "scale": "none", "bias": True,
     "seed": 1},
    {"id": "per-unit-p", "widths": [4, 5, 2], "drop": {0: torch.tensor([0.1, 0.0, 0.6, 0.3]),
                                                     1: torch.tensor([0.5, 0.2, 0.0, 0.9, 0.4])},
     "scale": "inverted", "bias": False, "seed": 2},
]


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_recursion_equals_enumeration(case):
    model = _net(case)
    x = torch.randn(6, case["widths"][0], dtype=F64, generator=torch.Generator().manual_seed(9))
    exact = enumerate_subnetworks(model, x)
    rec = linear_moments(model, x)[-1]
    torch.testing.assert_close(rec.mean, exact.mean, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(rec.cov, exact.cov, rtol=1e-10, atol=1e-12)


def test_single_layer_closed_forms_eqs_15_17():
    g = torch.Generator().manual_seed(0)
    w, x = torch.randn(3, 4, generator=g, dtype=F64), torch.randn(1, 4, generator=g, dtype=F64)
    keep = torch.tensor([0.9, 0.5, 0.3, 0.7], dtype=F64)
    m = deep_linear_moments(x, [w], unit_keep=[keep])[0]
    pq = keep * (1 - keep)
    torch.testing.assert_close(m.mean[0], w @ (keep * x[0]))  # eq. 15
    torch.testing.assert_close(m.variance[0], (w ** 2 * pq * x[0] ** 2).sum(1))  # eq. 16
    torch.testing.assert_close(m.cov[0, 0, 1], (w[0] * w[1] * pq * x[0] ** 2).sum())  # eq. 17
    c = deep_linear_moments(x, [w], connection_keep=[0.6])[0]
    torch.testing.assert_close(c.variance[0], (w ** 2 * 0.24 * x[0] ** 2).sum(1))  # eq. 19
    off = c.cov[0] - torch.diag(c.variance[0])
    assert off.abs().max() == 0  # eq. 20


def test_unit_keep_matches_bernoulli_layers_without_rescaling():
    g = torch.Generator().manual_seed(3)
    w1, w2 = torch.randn(4, 3, generator=g, dtype=F64), torch.randn(2, 4, generator=g, dtype=F64)
    b1 = torch.randn(4, generator=g, dtype=F64)
    x = torch.randn(5, 3, generator=g, dtype=F64)
    model = nn.Sequential(BernoulliDropout(0.3, scale="none"), nn.Linear(3, 4),
                          BernoulliDropout(torch.tensor([0.5, 0.1, 0.4, 0.2]), scale="none"), nn.Linear(4, 2,
                                                                                                     bias=False)).to(F64)
    with torch.no_grad():
        model[1].weight.copy_(w1), model[1].bias.copy_(b1), model[3].weight.copy_(w2)
    keeps = [0.7, torch.tensor([0.5, 0.9, 0.6, 0.8], dtype=F64)]
    rec = deep_linear_moments(x, [w1, w2], [b1, None], unit_keep=keeps)[-1]
    exact = enumerate_subnetworks(model, x)
    torch.testing.assert_close(rec.mean, exact.mean)
    torch.testing.assert_close(rec.cov, exact.cov)


def test_connection_dropout_against_brute_force():
    # 2 → 2 → 2 net with per-connection keep probabilities: 8 gates, 256 masks enumerated here.
    g = torch.Generator().manual_seed(4)
    ws = [torch.randn(2, 2, generator=g, dtype=F64) for _ in range(2)]
    bs = [torch.randn(2, generator=g, dtype=F64) for _ in range(2)]
    keeps = [torch.tensor([[0.9, 0.4], [0.6, 0.7]], dtype=F64), torch.tensor([[0.5, 0.8], [0.3, 0.95]], dtype=F64)]
    x = torch.randn(3, 2, generator=g, dtype=F64)
    mean = torch.zeros(3, 2, dtype=F64)
    second = torch.zeros(3, 2, 2, dtype=F64)
    for bits in itertools.product([0.0, 1.0], repeat=8):
        d = torch.tensor(bits, dtype=F64).reshape(2, 2, 2)
        prob = torch.prod(torch.where(d == 1, torch.stack(keeps), 1 - torch.stack(keeps)))
        h = x @ (ws[0] * d[0]).T + bs[0]
        y = h @ (ws[1] * d[1]).T + bs[1]
        mean += prob * y
        second += prob * y[:, :, None] * y[:, None, :]
    rec = deep_linear_moments(x, ws, bs, connection_keep=keeps)[-1]
    torch.testing.assert_close(rec.mean, mean)
    torch.testing.assert_close(rec.cov, second - mean[:, :, None] * mean[:, None, :])


def test_connection_dropout_layer_enumerates_to_the_recursion():
    g = torch.Generator().manual_seed(5)
    ws = [torch.randn(3, 2, generator=g, dtype=F64), torch.randn(2, 3, generator=g, dtype=F64)]
    keeps = [torch.rand(3, 2, generator=g, dtype=F64) * 0.8 + 0.1, 0.5]
    model = nn.Sequential(connection_dropout_layer(ws[0], None, keeps[0]), connection_dropout_layer(ws[1], None, 0.5))
    x = torch.randn(3, 2, generator=g, dtype=F64)
    exact = enumerate_subnetworks(model, x)
    rec = deep_linear_moments(x, ws, connection_keep=keeps)[-1]
    assert exact.n_masks == 2 ** 12
    torch.testing.assert_close(rec.mean, exact.mean)
    torch.testing.assert_close(rec.cov, exact.cov)


def test_fnn_linear_activation_and_every_layer_returned():
    torch.manual_seed(0)
    model = FNN([3, 4, 2], "linear", dropout={0: 0.2, 1: 0.5}).to(F64)
    x = torch.randn(2, 3, dtype=F64)
    moments = linear_moments(model, x)
    assert [m.mean.shape for m in moments] == [(2, 4), (2, 2)]
    torch.testing.assert_close(moments[-1].cov, enumerate_subnetworks(model, x).cov)


def test_enumeration_is_exact_for_a_nonlinear_net_on_a_hand_case():
    # y = relu(δ1·x1 − δ2·x2) with keep 1/2 each: outputs over the 4 masks are (1−2)₊, 1, 0, 0 for x=(1, 2).
    model = nn.Sequential(BernoulliDropout(0.5, scale="none"), nn.Linear(2, 1, bias=False), nn.ReLU()).to(F64)
    with torch.no_grad():
        model[1].weight.copy_(torch.tensor([[1.0, -1.0]]))
    e = enumerate_subnetworks(model, torch.tensor([[1.0, 2.0]], dtype=F64))
    torch.testing.assert_close(e.mean, torch.tensor([[0.25]], dtype=F64))
    torch.testing.assert_close(e.variance, torch.tensor([[0.25 - 0.0625]], dtype=F64))
    assert e.n_masks == 4


def test_shared_batch_mask_and_chunking_do_not_change_the_ensemble():
    torch.manual_seed(0)
    a = nn.Sequential(BernoulliDropout(0.4), nn.Linear(5, 3), nn.Tanh(), BernoulliDropout(0.3), nn.Linear(3, 2)).to(F64)
    b = nn.Sequential(BernoulliDropout(0.4, shared_dims=(0,)), *list(a)[1:]).to(F64)
    x = torch.randn(4, 5, dtype=F64)
    ea, eb = enumerate_subnetworks(a, x, chunk_size=7), enumerate_subnetworks(b, x)
    torch.testing.assert_close(ea.mean, eb.mean)
    torch.testing.assert_close(ea.cov, eb.cov)


def test_modes_are_restored():
    model = _net(CASES[1]).train()
    model[2].eval()
    enumerate_subnetworks(model, torch.randn(2, 3, dtype=F64))
    assert model.training and not model[2].training and not any(getattr(m, "mc", False) for m in model)


class _Gauss(NoiseLayer):
    def noise_moments(self):
        return 1.0, 0.25

    def sample_noise(self, x):
        return 1 + 0.5 * torch.randn(x.shape, generator=self.generator, dtype=x.dtype)


def test_bad_input():
    x = torch.randn(2, 3, dtype=F64)
    with pytest.raises(ValueError, match="no droplab noise layer"):
        enumerate_subnetworks(nn.Linear(3, 2).to(F64), x)
    with pytest.raises(ValueError, match="is a _Gauss; enumerate_subnetworks needs BernoulliDropout"):
        enumerate_subnetworks(nn.Sequential(_Gauss(), nn.Linear(3, 2)).to(F64), x)
    with pytest.raises(ValueError, match="25 droppable units .* more than max_units=20"):
        enumerate_subnetworks(nn.Sequential(BernoulliDropout(0.5), nn.Linear(25, 2)), torch.randn(1, 25))
    with pytest.raises(ValueError, match="model must be an FNN or nn.Sequential"):
        linear_moments(nn.Sequential(nn.Linear(3, 3), nn.ReLU()), x)
    with pytest.raises(ValueError, match="unit_keep must have one entry per weight matrix"):
        deep_linear_moments(x, [torch.randn(2, 3, dtype=F64)], unit_keep=[0.5, 0.5])
    with pytest.raises(ValueError, match="connection_keep\\[0\\] must be in"):
        deep_linear_moments(x, [torch.randn(2, 3, dtype=F64)], connection_keep=[1.5])


def test_gaussian_noise_law_enters_the_recursion():
    # Any independent per-unit noise: the recursion needs only its mean and variance.
    torch.manual_seed(0)
    model = nn.Sequential(_Gauss(), nn.Linear(3, 2)).to(F64)
    x = torch.randn(1, 3, dtype=F64)
    m = linear_moments(model, x)[-1]
    w = model[1].weight
    torch.testing.assert_close(m.cov[0], (w * 0.25 * x[0] ** 2) @ w.T)


class _Taps(nn.Module):
    """Runs a Sequential and returns every nn.Linear output concatenated (to enumerate their joint law)."""

    def __init__(self, net: nn.Sequential) -> None:
        super().__init__()
        self.net = net

    def forward(self, x):
        outs = []
        for m in self.net:
            x = m(x)
            if isinstance(m, nn.Linear):
                outs.append(x)
        return torch.cat(outs, -1)


def test_cross_layer_covariances_eq25_equal_enumeration():
    model = _net(CASES[2])
    x = torch.randn(3, 4, dtype=F64, generator=torch.Generator().manual_seed(2))
    joint = joint_linear_moments(model, x)
    exact = enumerate_subnetworks(_Taps(model), x)
    torch.testing.assert_close(joint.mean, exact.mean)
    torch.testing.assert_close(joint.cov, exact.cov)
    torch.testing.assert_close(joint.cov[:, 5:, 5:], linear_moments(model, x)[-1].cov)
