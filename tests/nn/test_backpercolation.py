"""Backpercolation (Baldi & Sadowski 2014, §10.2): the mean backward over many passes is backprop."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from droplab.nn import Backpercolation, BackpercolationSigmoid, replay_masks

N = 100_000


def test_mean_backward_of_the_unit_is_the_derivative(check_moments):
    s = torch.tensor([-2.0, 0.0, 1.5])
    x = s.expand(N, 3).clone().requires_grad_(True)
    layer = BackpercolationSigmoid(generator=torch.Generator().manual_seed(0)).train()
    layer(x).sum().backward()
    d = torch.sigmoid(s) * (1 - torch.sigmoid(s))
    for j in range(3):  # factor δ ~ Bernoulli(σ'): mean σ', variance σ'(1 − σ')
        check_moments(x.grad[:, j], d[j], d[j] * (1 - d[j]))


def test_mean_parameter_gradient_over_many_passes_matches_autograd():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(3, 4), BackpercolationSigmoid(generator=torch.Generator().manual_seed(1)),
                        nn.Linear(4, 1))
    x = torch.tensor([[0.5, -1.0, 0.3]])
    groups, per = 50, 2000  # 1e5 passes, in 50 groups whose means estimate the standard error
    net.eval()
    net(x).sum().backward()
    exact = net[0].weight.grad.clone()
    net.zero_grad()
    net.train()
    means = []
    for _ in range(groups):
        net(x.expand(per, 3)).sum().backward()  # the batch sums `per` independent passes
        means.append(net[0].weight.grad.clone() / per)
        net.zero_grad()
    means = torch.stack(means)
    est = means.mean(0)
    se = means.std(0) / groups**0.5  # SE of the mean of 50 group means (each the mean of 2000 passes)
    assert torch.all((est - exact).abs() <= 5 * se + 1e-7), (est, exact, se)


def test_general_wrapper_with_autograd_derivative_tanh(check_moments):
    s = torch.tensor([0.3, -1.2])
    x = s.expand(N, 2).clone().requires_grad_(True)
    layer = Backpercolation(torch.tanh, generator=torch.Generator().manual_seed(0)).train()
    y = layer(x)
    assert torch.allclose(y, torch.tanh(x))
    y.sum().backward()
    d = 1 - torch.tanh(s) ** 2
    for j in range(2):
        check_moments(x.grad[:, j], d[j], d[j] * (1 - d[j]))


def test_derivative_above_one_is_still_unbiased(check_moments):
    layer = Backpercolation(lambda s: 3 * s, generator=torch.Generator().manual_seed(0)).train()
    x = torch.zeros(N, requires_grad=True)
    layer(x).sum().backward()
    check_moments(x.grad, 3.0, 0.0 + 1e-30)


def test_fixed_keep_uses_bernoulli_in_place_of_the_derivative(check_moments):
    layer = BackpercolationSigmoid(keep=0.5, generator=torch.Generator().manual_seed(0)).train()
    x = torch.zeros(N, requires_grad=True)
    layer(x).sum().backward()
    check_moments(x.grad, 0.5, 0.25)


def test_eval_is_backprop_and_replayed_factor_is_deterministic():
    net = nn.Sequential(BackpercolationSigmoid())
    x = torch.randn(5, requires_grad=True)
    net.eval()(x).sum().backward()
    assert torch.allclose(x.grad, torch.sigmoid(x) * (1 - torch.sigmoid(x)))
    factor = torch.tensor([1.0, 0.0, 1.0, 0.0, 1.0])
    x.grad = None
    with replay_masks(net.train(), {"0": factor}):
        net(x).sum().backward()
    assert torch.equal(x.grad, factor)


def test_torch_func_grad_with_replayed_factor():
    layer = BackpercolationSigmoid().train()
    factor = torch.tensor([1.0, 0.0, 1.0])
    model = nn.Sequential(layer)
    with replay_masks(model, {"0": factor}):
        g = torch.func.grad(lambda s: model(s).sum())(torch.zeros(3))
    assert torch.equal(g, factor)


def test_bad_keep_raises():
    with pytest.raises(ValueError, match="keep"):
        BackpercolationSigmoid(keep=0.0)
