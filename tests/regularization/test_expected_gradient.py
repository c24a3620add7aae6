"""Expected dropout gradient: exact enumeration vs Monte Carlo, B&S eqs. 147 and 155 vs enumeration."""

from __future__ import annotations

import itertools

import pytest
import torch
from torch import nn

from droplab.nn import BernoulliDropout, replay_masks
from droplab.regularization import (
    deep_linear_decomposition,
    ensemble_gradient,
    expected_dropout_gradient,
    linear_expected_gradient,
    sigmoid_expected_gradient,
)

MSE = nn.functional.mse_loss


def half_sse(o: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    return 0.5 * (o - t).pow(2).sum()


def small_net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(BernoulliDropout(0.25), nn.Linear(3, 4), nn.Tanh(), BernoulliDropout(0.5),
                         nn.Linear(4, 2)).double()


def data(n: int = 6, d: int = 3, m: int = 2, seed: int = 1):
    g = torch.Generator().manual_seed(seed)
    f64 = torch.float64
    return torch.randn(n, d, generator=g, dtype=f64), torch.randn(n, m, generator=g, dtype=f64)


def brute_force_expectation(model: nn.Module, loss_fn, x, y) -> dict[str, torch.Tensor]:
    """Σ over every 0/1 mask of P(mask)·∇L, one autograd call per mask (the reference, no vmap)."""
    layers = [(n, m) for n, m in model.named_modules() if isinstance(m, BernoulliDropout)]
    widths = [3, 4]
    total = {k: torch.zeros_like(p) for k, p in model.named_parameters()}
    model.train()
    for bits in itertools.product([0, 1], repeat=sum(widths)):
        b = torch.tensor(bits, dtype=torch.float64)
        masks, prob, start = {}, 1.0, 0
        for (name, layer), w in zip(layers, widths):
            keep = 1 - layer.p
            seg = b[start:start + w]
            prob *= float(torch.where(seg > 0, keep, 1 - keep).prod())
            masks[name] = (seg / keep).reshape(1, w)
            start += w
        model.zero_grad()
        with replay_masks(model, masks):
            loss_fn(model(x), y).backward()
        for k, p in model.named_parameters():
            total[k] += prob * p.grad
    return total


def test_exact_enumeration_matches_brute_force():
    model = small_net()
    x, y = data()
    exact = expected_dropout_gradient(model, MSE, (x, y), None)
    reference = brute_force_expectation(model, MSE, x, y)
    for k in reference:
        torch.testing.assert_close(exact.mean[k], reference[k], rtol=1e-10, atol=1e-12)
        assert exact.stderr[k].abs().max() == 0


def test_monte_carlo_within_standard_error_of_exact():
    model = small_net()
    x, y = data()
    exact = expected_dropout_gradient(model, MSE, (x, y), None)
    mc = expected_dropout_gradient(model, MSE, (x, y), 4000, generator=torch.Generator().manual_seed(0))
    # Each coordinate's z = (MC − exact)/stderr is ≈ N(0, 1) by the CLT (4000 samples). With 38
    # coordinates, P(max |z| > 4.5) ≤ 38·6.8e-6 ≈ 3e-4 (union bound); the seed is fixed anyway.
    z = torch.cat([((mc.mean[k] - exact.mean[k]) / mc.stderr[k]).reshape(-1) for k in exact.mean])
    assert z.abs().max() < 4.5
    assert mc.n_samples == 4000


def test_ensemble_gradient_is_evaluation_mode_gradient():
    model = small_net()
    x, y = data()
    ens = ensemble_gradient(model, MSE, x, y)
    model.eval()
    model.zero_grad()
    MSE(model(x), y).backward()
    for k, p in model.named_parameters():
        torch.testing.assert_close(ens[k], p.grad, rtol=1e-12, atol=1e-14)


def test_eq147_linear_unit_exact():
    torch.manual_seed(3)
    keep = torch.tensor([0.2, 0.5, 0.7, 0.9], dtype=torch.float64)
    model = nn.Sequential(BernoulliDropout(1 - keep, scale="none"), nn.Linear(4, 2, bias=False)).double()
    x, y = data(n=5, d=4, m=2)
    exact = expected_dropout_gradient(model, half_sse, (x, y), None)
    ens, decay = linear_expected_gradient(model[1].weight.detach(), x, y, keep)
    torch.testing.assert_close(exact.ensemble["1.weight"], ens, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(exact.mean["1.weight"], ens + decay, rtol=1e-12, atol=1e-12)


def test_eq155_deep_linear_exact():
    torch.manual_seed(4)
    model = nn.Sequential(BernoulliDropout(0.3, scale="none"), nn.Linear(3, 4),
                          BernoulliDropout(0.5, scale="none"), nn.Linear(4, 3),
                          BernoulliDropout(0.2, scale="none"), nn.Linear(3, 1)).double()
    x, y = data(n=5, d=3, m=1)
    dec = deep_linear_decomposition(model, x, y)
    exact = expected_dropout_gradient(model, half_sse, (x, y), None)
    for k in exact.mean:
        torch.testing.assert_close(dec.expected[k], exact.mean[k], rtol=1e-10, atol=1e-12)
        torch.testing.assert_close(dec.ensemble[k], exact.ensemble[k], rtol=1e-10, atol=1e-12)
        torch.testing.assert_close(dec.expected[k], dec.ensemble[k] + dec.weight_decay[k] + dec.covariance[k],
                                   rtol=1e-10, atol=1e-12)
    # eq. 155 remark: Cov(α, β) = 0 for the top layer of a linear net only when nothing below is dropped
    assert max(float(v.abs().max()) for v in dec.covariance.values()) > 1e-6


def test_eq164_error_is_higher_order_than_the_regularizer():
    """The NWGM + Taylor approximation error shrinks faster than the decay term as weights shrink."""
    g = torch.Generator().manual_seed(5)
    x = torch.randn(8, 5, generator=g, dtype=torch.float64)
    t = torch.rand(8, generator=g, dtype=torch.float64)
    w0 = torch.randn(5, generator=g, dtype=torch.float64)
    keep = 0.5
    ratios = []
    for scale in (1.0, 0.5, 0.25):
        model = nn.Sequential(BernoulliDropout(1 - keep, scale="none"), nn.Linear(5, 1, bias=False)).double()
        with torch.no_grad():
            model[1].weight.copy_(scale * w0.reshape(1, 5))

        def bce(o, tt):
            return nn.functional.binary_cross_entropy_with_logits(o[:, 0], tt, reduction="sum")

        exact = expected_dropout_gradient(model, bce, (x, t), None).mean["1.weight"][0]
        ens, decay = sigmoid_expected_gradient(scale * w0, x, t, keep)
        ratios.append(float((exact - ens - decay).norm() / decay.norm()))
    assert ratios[2] < ratios[1] < ratios[0]


def test_bad_input():
    x, y = data()
    with pytest.raises(ValueError, match="at most 20 are allowed"):
        wide = nn.Sequential(BernoulliDropout(0.5), nn.Linear(3, 30), BernoulliDropout(0.5), nn.Linear(30, 2))
        expected_dropout_gradient(wide.double(), MSE, (x, y), None)
    with pytest.raises(ValueError, match="n_samples must be an integer >= 2"):
        expected_dropout_gradient(small_net(), MSE, (x, y), 1)
    with pytest.raises(ValueError, match="keep must be in \\(0, 1\\]"):
        linear_expected_gradient(torch.ones(1, 3), x, y, 0.0)
    with pytest.raises(ValueError, match="model has no droplab noise layer"):
        expected_dropout_gradient(nn.Linear(3, 2).double(), MSE, (x, y), 10)


def test_eq181_ensemble_part_is_the_exact_ensemble_gradient_and_decay_is_weight_decay():
    from droplab.models import FNN
    from droplab.regularization import top_layer_expected_gradient

    torch.manual_seed(6)
    net = FNN([4, 5, 2], "logistic", dropout={1: 0.4},
              noise=lambda p: BernoulliDropout(p, scale="none")).double()
    x, _ = data(n=9, d=4, m=2)
    t = torch.rand(9, 2, generator=torch.Generator().manual_seed(7), dtype=torch.float64)

    def bce(o, tt):
        return nn.functional.binary_cross_entropy_with_logits(o, tt, reduction="sum")

    ens, decay = top_layer_expected_gradient(net, x, t)
    torch.testing.assert_close(ens, ensemble_gradient(net, bce, x, t)["net.3.weight"], rtol=1e-12, atol=1e-12)
    # eq. 181's extra term is w ⊙ A with A ≥ 0 (σ' > 0, variances ≥ 0): a weight decay, same sign as w
    assert (decay * net.net[3].weight.detach() >= 0).all() and decay.shape == ens.shape
