"""Every noise layer: modes, record/replay, state_dict, NaN, dtype, Sequential, deepcopy."""

from __future__ import annotations

import copy

import torch
from torch import nn

from droplab.nn import NoiseLayer, mc_mode, noise_layers, record_masks, replay_masks


def _out_and_grad(model: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    x = x.clone().requires_grad_(True)
    y = model(x)
    (g,) = torch.autograd.grad(y.sum(), x)
    return y.detach(), g


def test_is_a_noise_layer_in_sequential(case):
    layer = case.make(torch.Generator().manual_seed(0))
    model = nn.Sequential(layer)
    assert isinstance(layer, NoiseLayer) and noise_layers(model) == [layer]
    y = model(case.x())
    assert torch.isfinite(y).all()
    assert repr(layer).startswith(type(layer).__name__)


def test_eval_is_deterministic_and_draws_nothing(case):
    model = nn.Sequential(case.make(torch.Generator().manual_seed(0))).eval()
    x = case.x()
    with record_masks(model) as rec:
        y1, g1 = _out_and_grad(model, x)
        y2, g2 = _out_and_grad(model, x)
    assert torch.equal(y1, y2) and torch.equal(g1, g2)
    assert rec["0"] == []


def test_mc_mode_samples_in_eval_and_restores(case):
    model = nn.Sequential(case.make(torch.Generator().manual_seed(0))).eval()
    x = case.x()
    with mc_mode(model), record_masks(model) as rec:
        model(x)
        model(x)
    assert len(rec["0"]) == 2 and not torch.equal(rec["0"][0], rec["0"][1])
    assert not model.training and noise_layers(model)[0].mc is False
    with record_masks(model) as rec:
        model(x)
    assert rec["0"] == []


def test_record_then_replay_reproduces_output_and_gradient(case):
    model = nn.Sequential(case.make(torch.Generator().manual_seed(0))).train()
    x = case.x()
    with record_masks(model) as rec:
        y1, g1 = _out_and_grad(model, x)
    y_fresh, g_fresh = _out_and_grad(model, x)
    with replay_masks(model, {"0": rec["0"]}):
        y2, g2 = _out_and_grad(model, x)
    assert torch.equal(y1, y2) and torch.equal(g1, g2)
    assert not (torch.equal(y1, y_fresh) and torch.equal(g1, g_fresh))


def test_state_dict_round_trip(case):
    torch.manual_seed(0)
    a = case.make(None).train()
    a(case.x())  # stateful layers (OU) now hold a state
    torch.manual_seed(1)
    b = case.make(None)
    b.load_state_dict(a.state_dict())
    for key, value in a.state_dict().items():
        assert torch.equal(value, b.state_dict()[key]), key
    a.eval(), b.eval()
    x = case.x()
    assert torch.equal(a(x), b(x))


def test_nan_input_propagates_without_raising(case):
    layer = case.make(torch.Generator().manual_seed(0))
    x = case.x()
    x.view(-1)[0] = float("nan")
    for mode in (True, False):
        y = layer.train(mode)(x)
        assert torch.isnan(y).any(), f"training={mode}"


def test_float64_in_float64_out(case):
    layer = case.make(torch.Generator().manual_seed(0)).double()
    x = case.x().double()
    assert layer(x).dtype == torch.float64
    assert layer.eval()(x).dtype == torch.float64


def test_generator_makes_sampling_reproducible(case):
    x = case.x()
    outs = []
    for _ in range(2):
        torch.manual_seed(0)
        model = nn.Sequential(case.make(torch.Generator().manual_seed(7))).train()
        with record_masks(model) as rec:
            model(x)
        outs.append(rec["0"][0])
    assert torch.equal(outs[0], outs[1])


def test_deepcopy_after_forward(case):
    layer = case.make(torch.Generator().manual_seed(0)).train()
    layer(case.x())
    clone = copy.deepcopy(layer)
    assert type(clone) is type(layer)


def test_noise_moments_are_mean_and_variance(case):
    layer = case.make(torch.Generator().manual_seed(0))
    layer(case.x())
    mean, var = layer.noise_moments()
    assert torch.all(torch.as_tensor(var) >= 0)
    assert torch.all(torch.isfinite(torch.as_tensor(mean)))
