"""The mode context managers restore every module's flag; ``lend_generator`` makes draws a function of the
lent generator and restores the layers' own; ``record_outputs`` / ``record_inputs`` capture every call."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from droplab._hooks import record_inputs, record_outputs
from droplab.models import FNN
from droplab.nn import BernoulliDropout, GaussianDropout, evaluation, lend_generator, mc_mode, noise_layers, training


def _mixed_net() -> nn.Sequential:
    net = nn.Sequential(nn.Linear(4, 4), BernoulliDropout(0.5), nn.BatchNorm1d(4), GaussianDropout(p=0.3))
    net.train()
    net[2].eval()  # a caller's mixed state: batch norm frozen, noise on
    return net


@pytest.mark.parametrize("mode, flag", [(evaluation, False), (training, True)])
def test_modes_set_every_module_and_restore_a_mixed_state(mode, flag):
    net = _mixed_net()
    before = [m.training for m in net.modules()]
    with mode(net) as inside:
        assert inside is net and all(m.training is flag for m in net.modules())
    assert [m.training for m in net.modules()] == before
    with pytest.raises(RuntimeError), mode(net):  # restored on error too
        raise RuntimeError
    assert [m.training for m in net.modules()] == before


def test_lend_generator_draws_from_the_lent_generator_and_restores_the_layers_own():
    net = FNN([6, 5, 5, 2], dropout=0.5)
    own = torch.Generator().manual_seed(7)
    noise_layers(net)[0].generator = own
    x = torch.randn(3, 6)
    outs = []
    for _ in range(2):
        with lend_generator(net, torch.Generator().manual_seed(0)), mc_mode(net), torch.no_grad():
            outs.append(net(x))
    assert torch.equal(*outs)
    assert noise_layers(net)[0].generator is own and noise_layers(net)[1].generator is None
    with lend_generator(net, None):  # lends nothing
        assert noise_layers(net)[0].generator is own
    with pytest.raises(TypeError, match="generator must be a torch.Generator or None, got int"), \
            lend_generator(net, 3):
        pass


def test_record_outputs_keeps_every_call_and_removes_its_hooks():
    net = nn.Sequential(nn.Linear(3, 2), nn.ReLU())
    with record_outputs({"lin": net[0]}) as out, record_inputs([net[1]]) as ins:
        a, b = net(torch.ones(4, 3)), net(-torch.ones(5, 3))
    assert [o.shape[0] for o in out["lin"]] == [4, 5]
    assert torch.equal(ins[0][1], out["lin"][1]) and torch.equal(b, ins[0][1].relu())
    assert torch.equal(a, out["lin"][0].relu())
    assert not net[0]._forward_hooks and not net[1]._forward_hooks
    assert not out["lin"][0].requires_grad  # detached
    with pytest.raises(TypeError, match=r"modules\['x'\] must be an nn.Module"), record_outputs({"x": 3}):
        pass
