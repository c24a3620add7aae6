"""The dropout invariants PyTorch checks for its own dropout, and one-line errors naming the argument."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from droplab.nn import (
    Backpercolation,
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
    _random,
    functional,
    laws,
)


@pytest.mark.parametrize("layer", [BernoulliDropout(0.4), GaussianDropout(p=0.4), GaussianDropout(sigma=2.0),
                                   OUDropout(0.5, 2.0), VariationalDropout(3)], ids=repr)
def test_inverted_layers_are_the_identity_in_eval(layer):
    x = torch.randn(4, 3)
    assert torch.equal(layer.eval()(x), x)


def test_mask_structure_zero_or_inverse_keep():
    y = BernoulliDropout(0.25, generator=torch.Generator().manual_seed(0)).train()(torch.ones(1000, 4))
    assert set(y.unique().tolist()) <= {0.0, torch.tensor(1 / 0.75).item()}


def test_masks_are_a_function_of_the_generator_state_only():
    # the same seed gives the same masks; a large draw (generated in blocks, serially or by
    # parallel threads) equals its pieces drawn one by one from the same keyed stream
    x = torch.randn(3, 5)
    assert torch.equal(functional.bernoulli_dropout(x, 0.5, generator=torch.Generator().manual_seed(0)),
                       functional.bernoulli_dropout(x, 0.5, generator=torch.Generator().manual_seed(0)))
    key = _random.rng_key(torch.Generator().manual_seed(1))
    n = 3 * (1 << 18) + 7
    whole = _random.random_int32(n, key=key)
    cuts = [0, 1, 2, 12345, 1 << 18, n]
    pieces = torch.cat([_random.random_int32(b - a, key=key, offset=a) for a, b in zip(cuts, cuts[1:])])
    assert torch.equal(whole, pieces)
    previous = torch.get_num_threads()  # the suite runs on one thread: generate the blocks in parallel threads too
    try:
        torch.set_num_threads(3)
        assert torch.equal(whole, _random.random_int32(n, key=key))
    finally:
        torch.set_num_threads(previous)
    for p in (0.5, 0.3):  # one bit per mask (p = ½) and 32-bit integers: slices of a keyed stream add up
        whole = laws.bernoulli_noise((n,), p, key=key)
        cuts = [0, 1, 63, 64, 65, 1000, 1 << 18, n]
        pieces = torch.cat([laws.bernoulli_noise((b - a,), p, key=key, offset=a) for a, b in zip(cuts, cuts[1:])])
        assert torch.equal(whole, pieces)


@pytest.mark.parametrize("keep", [0.8, 0.5, 0.37, 1.0])
@pytest.mark.parametrize("per_unit", [False, True])
def test_bernoulli_noise_law(keep, per_unit):
    n = 400_000
    p = torch.full((n,), 1 - keep, dtype=torch.float64) if per_unit else 1 - keep
    noise = laws.bernoulli_noise((n,), p, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    assert set(noise.unique().tolist()) <= {0.0, 1 / keep}
    freq = float((noise > 0).double().mean())
    # kept fraction of n Bernoulli(keep') draws, keep' = round(keep·2³²)/2³² (|keep' − keep| ≤ 2⁻³³): 5 SE
    assert abs(freq - keep) <= 5 * math.sqrt(keep * (1 - keep) / n) + 2 ** -33


def test_per_unit_p_draws_the_masks_of_the_equal_scalar_p():
    per_unit = laws.bernoulli_noise((100, 7), torch.full((7,), 0.3, dtype=torch.float64),
                                          generator=torch.Generator().manual_seed(5))
    scalar = laws.bernoulli_noise((100, 7), 0.3, generator=torch.Generator().manual_seed(5))
    assert torch.equal(per_unit > 0, scalar > 0)


def test_random_int32_is_uniform_on_32_bits():
    # each of the 32 bits of u = word + 2³¹ is a fair coin: with 2¹⁸ words the mean of a bit has
    # standard error 0.5/512 ≈ 0.001; 0.006 is 6 SE (two-sided p ≈ 2e-9 per bit, 6e-8 for all 32)
    u = _random.random_int32(1 << 18, torch.Generator().manual_seed(0)).to(torch.int64) + 2 ** 31
    bits = (u.unsqueeze(1) >> torch.arange(32)) & 1
    assert (bits.double().mean(0) - 0.5).abs().max() < 0.006


def test_shared_dims_spatial_mask():
    y = BernoulliDropout(0.5, shared_dims=(2, 3), generator=torch.Generator().manual_seed(0)).train()(
        torch.ones(4, 6, 3, 3))
    assert torch.equal(y, y[:, :, :1, :1].expand_as(y))
    y = GaussianDropout(sigma=1.0, shared_dims=(0,)).train()(torch.ones(5, 3))
    assert torch.equal(y, y[:1].expand_as(y))


def test_dropin_sets_units_to_one():
    y = Dropin(0.5, generator=torch.Generator().manual_seed(0)).train()(torch.full((100, 4), 3.0))
    assert set(y.unique().tolist()) == {1.0, 3.0}


def test_p_zero_is_the_identity_in_training():
    x = torch.randn(4, 3)
    assert torch.equal(BernoulliDropout(0.0).train()(x), x)
    assert torch.equal(Dropin(0.0).train()(x), x)


BAD = [
    ("p", lambda: BernoulliDropout(1.0)),
    ("p", lambda: BernoulliDropout(-0.1)),
    ("p", lambda: BernoulliDropout(float("nan"))),
    ("p", lambda: BernoulliDropout(torch.tensor([0.2, 1.2]))),
    ("scale", lambda: BernoulliDropout(0.2, "inverse")),
    ("p", lambda: DropConnectLinear(3, 2, 1.0)),
    ("p", lambda: DropConnectLinear(3, 2, torch.full((3, 3), 0.5))),
    ("in_features", lambda: DropConnectLinear(0, 2, 0.5)),
    ("p", lambda: Dropin(1.5)),
    ("sigma", lambda: GaussianDropout(sigma=-1.0)),
    ("p", lambda: GaussianDropout(p=1.0)),
    ("p or sigma", lambda: GaussianDropout()),
    ("p or sigma", lambda: GaussianDropout(p=0.2, sigma=0.5)),
    ("sigma", lambda: OUDropout(-0.5, 2.0)),
    ("correlation_steps", lambda: OUDropout(0.5, -1.0)),
    ("alpha", lambda: LogNormalDropout(-0.1)),
    ("max_alpha", lambda: InformationDropout(3, max_alpha=0.0)),
    ("max_alpha", lambda: InformationDropout(3, max_alpha=float("inf"))),
    ("prior", lambda: InformationDropout(3, prior="gaussian")),
    ("features", lambda: InformationDropout(0)),
    ("init_alpha", lambda: VariationalDropout(3, init_alpha=2.0)),
    ("max_alpha", lambda: VariationalDropoutLinear(3, 2, max_alpha=-1.0)),
    ("r", lambda: StochasticSpiking(0.0)),
    ("mode", lambda: StochasticSpiking(1.0, "local")),
    ("linear", lambda: StochasticSpiking(1.0, "connection")),
    ("keep", lambda: Backpercolation(keep=1.5)),
    ("activity", lambda: StochasticSpiking(1.0).train()(torch.tensor([0.5, 1.5]))),
    ("activity", lambda: StochasticSpiking(1.0, "connection", linear=nn.Linear(2, 2))(torch.tensor([[-0.1, 0.5]]))),
    ("p", lambda: BernoulliDropout(torch.full((4,), 0.5)).train()(torch.ones(2, 3))),
    ("sigma", lambda: GaussianDropout(sigma=torch.ones(4)).train()(torch.ones(2, 3))),
    ("shared_dims", lambda: BernoulliDropout(0.5, shared_dims=(5,)).train()(torch.ones(2, 3))),
]


@pytest.mark.parametrize("name,call", BAD, ids=[f"{i}-{n}" for i, (n, _) in enumerate(BAD)])
def test_bad_input_is_a_one_line_value_error_naming_the_argument(name, call):
    with pytest.raises(ValueError) as info:
        call()
    message = str(info.value)
    assert name in message and "\n" not in message
