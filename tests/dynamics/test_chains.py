"""Batched Gaussian-dropout GD chains: equal to the one-chain reference, gradients equal to autograd, bad input."""

from __future__ import annotations

import pytest
import torch

from droplab import data
from droplab.dynamics import FlatModel, dropout_gd_chains, gaussian_dropout_gd, reach_zero_loss
from droplab.models import FNN
from droplab.nn import GaussianDropout


def _student(widths, seed=0):
    torch.manual_seed(seed)
    noise = {k: 0.1 for k in range(1, len(widths) - 1)}
    return FNN(widths, "relu", dropout=noise, noise=lambda _: GaussianDropout(sigma=0.3)).double()


@pytest.fixture(scope="module")
def problem():
    ds = data.load("teacher", "train", n_train=6, dim=3, hidden=3)
    x, y = ds.x.double(), ds.y.double()
    model = _student([3, 10, 8, 1])
    w0, _ = reach_zero_loss(model, x, y, lr=0.1, tol=1e-3)
    return model, x, y, w0


@pytest.mark.parametrize("tau", [0.0, 3.0], ids=["independent", "ou"])
def test_one_chain_is_gaussian_dropout_gd(problem, tau):
    model, x, y, w0 = problem
    kw = dict(alpha=0.05, sigma=0.4, t_end=0.2, n_records=3, correlation_steps=tau)
    ref = gaussian_dropout_gd(model, x, y, w0, generator=torch.Generator().manual_seed(1), **kw)
    out = dropout_gd_chains(model, x, y, w0[None], generator=torch.Generator().manual_seed(1), **kw)
    assert (ref.params[-1] - ref.params[0]).norm() > 0.05  # the path moves
    torch.testing.assert_close(out[0], ref.params, rtol=0, atol=1e-12)


def test_each_chain_takes_the_autograd_step_of_its_own_data_step_and_noise(problem):
    model, x, y, w0 = problem
    xs = torch.stack([x, x.flip(0), 0.5 * x])
    ys = torch.stack([y, y.flip(0), y])
    w = torch.stack([w0, w0 + 0.01, w0 - 0.02])
    alphas, sigmas = [0.1, 0.05, 0.02], [0.3, 0.5, 0.2]
    # one step per chain: each α_c σ_c² equals t_end, so the record at t_end follows one step
    rate = alphas[0] * sigmas[0] ** 2
    alphas = [rate / s**2 for s in sigmas]
    state = torch.Generator().manual_seed(3)  # the draws of that step: layer by layer, all chains at once
    z = torch.randn((3, len(x), 10), dtype=x.dtype, generator=state)
    z2 = torch.randn((3, len(x), 8), dtype=x.dtype, generator=state)
    out = dropout_gd_chains(model, xs, ys, w, alpha=alphas, sigma=sigmas, t_end=rate, n_records=2,
                            generator=torch.Generator().manual_seed(3))
    for c in range(3):
        flat = FlatModel(model, xs[c], ys[c])
        noise = dict(zip(flat.space.names, (1 + sigmas[c] * z[c], 1 + sigmas[c] * z2[c])))
        wc = w[c].clone().requires_grad_(True)
        (g,) = torch.autograd.grad(torch.nn.functional.mse_loss(flat.output(wc, noise), ys[c]), wc)
        torch.testing.assert_close(out[c, 0], w[c], rtol=0, atol=0)
        torch.testing.assert_close(out[c, 1], w[c] - alphas[c] * g, rtol=0, atol=1e-12)


def test_bad_input(problem, raises_one_line):
    model, x, y, w0 = problem
    kw = dict(sigma=0.3, t_end=0.1)
    raises_one_line(lambda: dropout_gd_chains(model, x, y, w0, alpha=0.1, **kw), r"w0 must be \(chains, parameters\)")
    raises_one_line(lambda: dropout_gd_chains(model, x, y, w0[None], alpha=[0.1, 0.2], **kw),
                    r"alpha must be one number or one per chain \(1\), got 2")
    raises_one_line(lambda: dropout_gd_chains(model, x, y, w0[None], alpha=0.0, **kw), r"alpha\[0\] must be")
    raises_one_line(lambda: dropout_gd_chains(model, x, y, w0[None, :-1], alpha=0.1, **kw),
                    "w0 must hold the model's")
    raises_one_line(lambda: dropout_gd_chains(model, x[:, :2], y, w0[None], alpha=0.1, **kw),
                    "x must have 3 features")
    plain = FNN([3, 4, 1]).double()
    raises_one_line(lambda: dropout_gd_chains(plain, x, y, torch.zeros(1, 21, dtype=x.dtype), alpha=0.1, **kw),
                    "model has no droplab noise layer")
    tanh = FNN([3, 4, 1], "tanh", dropout={1: 0.1}).double()
    raises_one_line(lambda: dropout_gd_chains(tanh, x, y, torch.zeros(1, 21, dtype=x.dtype), alpha=0.1, **kw),
                    "model layer 1 is Tanh")
