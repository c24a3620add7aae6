"""Explicit/implicit decomposition: no noise → all modes agree; the explicit step is the expected gradient."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from droplab.nn import BernoulliDropout
from droplab.regularization import MODES, expected_dropout_gradient, explicit_implicit, train_decomposed

MSE = nn.functional.mse_loss


def net(p: float) -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(3, 6), nn.Tanh(), BernoulliDropout(p), nn.Linear(6, 1)).double()


def data():
    g = torch.Generator().manual_seed(1)
    return torch.randn(8, 3, generator=g, dtype=torch.float64), torch.randn(
        8, 1, generator=g, dtype=torch.float64
    )


def test_without_noise_all_modes_are_ensemble_gd():
    runs = explicit_implicit(net(0.0), MSE, data(), lr=0.1, steps=6, n_mean_samples=3, eval_every=2)
    assert set(runs) == set(MODES)
    for mode in MODES:
        assert runs[mode]["step"] == [0, 2, 4, 6]
        assert runs[mode]["train_loss"] == pytest.approx(runs["none"]["train_loss"], rel=1e-12)
    assert runs["none"]["train_loss"][-1] < runs["none"]["train_loss"][0]


def test_the_four_runs_share_the_generator_stream_and_leave_it_alone():
    g = torch.Generator().manual_seed(7)
    state = g.get_state()
    a = explicit_implicit(net(0.5), MSE, data(), lr=0.1, steps=4, n_mean_samples=3, eval_every=2, generator=g)
    assert torch.equal(g.get_state(), state)
    b = explicit_implicit(net(0.5), MSE, data(), lr=0.1, steps=4, n_mean_samples=3, eval_every=2,
                          generator=torch.Generator().manual_seed(7))
    assert all(a[m]["train_loss"] == b[m]["train_loss"] for m in MODES)
    c = explicit_implicit(net(0.5), MSE, data(), lr=0.1, steps=4, n_mean_samples=3, eval_every=2,
                          generator=torch.Generator().manual_seed(8))
    assert a["implicit"]["train_loss"] != c["implicit"]["train_loss"]


def test_explicit_step_is_the_expected_dropout_gradient():
    model, (x, y), lr, n = net(0.5), data(), 0.1, 4000
    trained, _ = train_decomposed(
        model,
        MSE,
        (x, y),
        "explicit",
        lr=lr,
        steps=1,
        n_mean_samples=n,
        generator=torch.Generator().manual_seed(2),
    )
    exact = expected_dropout_gradient(model, MSE, (x, y), None)
    spread = expected_dropout_gradient(model, MSE, (x, y), n, generator=torch.Generator().manual_seed(3))
    for (k, p0), p1 in zip(model.named_parameters(), trained.parameters()):
        step = (p0.detach() - p1.detach()) / lr
        # MC mean of n masks: per-coordinate error ~ N(0, stderr²); 25 coordinates, |z| < 5 (union: 1.4e-5)
        assert ((step - exact.mean[k]).abs() <= 5 * spread.stderr[k] + 1e-12).all(), k
    assert all(
        torch.equal(a, b) for a, b in zip(net(0.5).parameters(), model.parameters())
    )  # input untouched


def test_bad_mode():
    with pytest.raises(ValueError, match="mode must be one of 'none', 'explicit', 'implicit', 'both'"):
        train_decomposed(net(0.5), MSE, data(), "mean", lr=0.1, steps=1)
