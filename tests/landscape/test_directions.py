"""Filter-normalized directions (Li et al. 2017; ZZX §5) and eigenvector directions: norms, zeros, shapes."""

import pytest
import torch
from torch import nn

from droplab.landscape import check_direction, direction_from_vector, filter_normalized_direction


def net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(2, 3, 3), nn.Flatten(), nn.Linear(12, 4), nn.ReLU(), nn.Linear(4, 2))


def test_every_filter_gets_the_norm_of_the_same_filter_of_theta():
    model = net()
    d = filter_normalized_direction(model, torch.Generator().manual_seed(1))
    for p, v in zip(model.parameters(), d):
        if p.dim() < 2:
            assert torch.count_nonzero(v) == 0  # biases: zero direction (Li et al.'s default)
        else:  # conv: an output channel; linear: an output unit's row
            torch.testing.assert_close(v.flatten(1).norm(dim=1), p.detach().flatten(1).norm(dim=1))


def test_layer_granularity_and_biases_normalized_as_one_filter():
    model = net()
    d = filter_normalized_direction(model, torch.Generator().manual_seed(1), "layer", ignore_bias=False)
    for p, v in zip(model.parameters(), d):
        torch.testing.assert_close(v.norm(), p.detach().norm())
        assert v.shape == p.shape


def test_the_generator_fixes_the_direction_and_the_global_stream_is_untouched():
    model = net()
    torch.manual_seed(5)
    state = torch.get_rng_state()
    a = filter_normalized_direction(model, torch.Generator().manual_seed(7))
    b = filter_normalized_direction(model, torch.Generator().manual_seed(7))
    assert all(torch.equal(u, v) for u, v in zip(a, b))
    assert torch.equal(torch.get_rng_state(), state)


def test_direction_from_vector_places_the_block_and_zeros_elsewhere():
    model = net()
    block = [model[2].weight, model[2].bias]
    vector = torch.arange(52, dtype=torch.float32)
    d = direction_from_vector(model, vector, params=block)
    torch.testing.assert_close(torch.cat([d[2].reshape(-1), d[3]]), vector)
    assert all(torch.count_nonzero(d[i]) == 0 for i in (0, 1, 4, 5))
    whole = direction_from_vector(model, torch.cat([p.detach().reshape(-1) for p in model.parameters()]))
    assert all(torch.equal(u, p.detach()) for u, p in zip(whole, model.parameters()))


@pytest.mark.parametrize(("call", "match"), [
    (lambda m: filter_normalized_direction(m, granularity="unit"), "granularity must be one of"),
    (lambda m: direction_from_vector(m, torch.zeros(3), params=[m[2].weight]), "vector has 3 entries"),
    (lambda m: direction_from_vector(m, torch.zeros(48), params=[nn.Linear(12, 4).weight]), "params must be"),
    (lambda m: check_direction(m, [torch.zeros(1)]), "direction must be shaped like model.parameters"),
], ids=["granularity", "vector-size", "foreign-params", "direction-shape"])
def test_directions_bad_input(call, match):
    with pytest.raises(ValueError, match=match):
        call(net())
