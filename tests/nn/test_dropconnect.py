"""DropConnect vs unit dropout: Baldi & Sadowski 2014 eqs. 15–20 by Monte Carlo; chunking."""

from __future__ import annotations

import torch
from torch import nn

from droplab.nn import BernoulliDropout, DropConnectLinear, functional

N = 100_000
W = torch.tensor([[1.0, -0.5, 2.0, 0.7], [0.8, 1.5, -1.0, 0.3]])
INPUT = torch.tensor([1.0, 2.0, -0.5, 1.5])
P_DROP = 0.4
KEEP = 1 - P_DROP


def _cov_and_se(s: torch.Tensor) -> tuple[float, float]:
    """Sample covariance of the two columns and its standard error sqrt((E[(a−ā)²(b−b̄)²] − cov²)/n)."""
    c = (s - s.mean(0)).double()
    prod = c[:, 0] * c[:, 1]
    cov = prod.mean().item()
    return cov, ((prod.pow(2).mean().item() - cov**2) / len(s)) ** 0.5


def test_dropconnect_outputs_uncorrelated_eq20(check_moments):
    layer = DropConnectLinear(4, 2, P_DROP, bias=False, scale="none", generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        layer.weight.copy_(W)
        s = layer.train()(INPUT.expand(N, 4))
    cov, se = _cov_and_se(s)
    assert abs(cov) <= 5 * se, (cov, se)  # eq. 20: Cov(S_i, S_l) = 0
    for i in range(2):  # eqs. 18 and 19 (B&S's p_ij = keep)
        check_moments(s[:, i], (W[i] * KEEP * INPUT).sum(), (W[i] ** 2 * KEEP * P_DROP * INPUT**2).sum())


def test_unit_dropout_outputs_correlated_eq17(check_moments):
    g = torch.Generator().manual_seed(0)
    model = nn.Sequential(BernoulliDropout(P_DROP, "none", generator=g), nn.Linear(4, 2, bias=False)).train()
    with torch.no_grad():
        model[1].weight.copy_(W)
        s = model(INPUT.expand(N, 4))
    cov, se = _cov_and_se(s)
    expected = (W[0] * W[1] * KEEP * P_DROP * INPUT**2).sum().item()  # eq. 17
    assert abs(expected) > 20 * se
    assert abs(cov - expected) <= 5 * se, (cov, expected, se)
    for i in range(2):  # eqs. 15 and 16
        check_moments(s[:, i], (W[i] * KEEP * INPUT).sum(), (W[i] ** 2 * KEEP * P_DROP * INPUT**2).sum())


def test_chunked_sampling_equals_one_big_draw():
    x = torch.randn(64, 6, generator=torch.Generator().manual_seed(2))
    w = torch.randn(5, 6, generator=torch.Generator().manual_seed(3))
    small = functional.dropconnect_linear(x, w, None, 0.3, chunk_elements=37,
                                          generator=torch.Generator().manual_seed(4))
    big = functional.dropconnect_linear(x, w, None, 0.3, generator=torch.Generator().manual_seed(4))
    full, noise = functional.dropconnect_linear(x, w, None, 0.3, generator=torch.Generator().manual_seed(4),
                                                return_noise=True)
    assert noise.shape == (64, 5, 6)
    assert torch.allclose(small, big, atol=1e-5) and torch.allclose(big, full, atol=1e-5)
    assert torch.allclose(full, torch.einsum("noi,ni->no", noise * w, x), atol=1e-5)


def test_batch_mask_is_shared_and_per_example_mask_is_not():
    x = torch.ones(3, 6)
    shared = DropConnectLinear(6, 4, 0.5, bias=False, per_example=False, generator=torch.Generator().manual_seed(0))
    y = shared.train()(x)
    assert torch.allclose(y[0], y[1]) and torch.allclose(y[1], y[2])
    per = DropConnectLinear(6, 4, 0.5, bias=False, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        per.weight.copy_(shared.weight)
    y = per.train()(x)
    assert not (torch.allclose(y[0], y[1]) and torch.allclose(y[1], y[2]))


def test_eval_is_the_expected_linear_layer_eq26():
    layer = DropConnectLinear(4, 2, P_DROP, scale="none")
    x = torch.randn(5, 4)
    assert torch.allclose(layer.eval()(x), x @ (layer.weight * KEEP).T + layer.bias)
    inv = DropConnectLinear(4, 2, P_DROP)
    assert torch.allclose(inv.eval()(x), x @ inv.weight.T + inv.bias)


def test_leading_dims_are_kept():
    layer = DropConnectLinear(4, 3, 0.2)
    assert layer.train()(torch.randn(2, 5, 4)).shape == (2, 5, 3)
