"""The dropout invariants PyTorch checks for its own dropout, and one-line errors naming the argument."""

from __future__ import annotations

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
    functional,
)


@pytest.mark.parametrize("layer", [BernoulliDropout(0.4), GaussianDropout(p=0.4), GaussianDropout(sigma=2.0),
                                   OUDropout(0.5, 2.0), VariationalDropout(3)], ids=repr)
def test_inverted_layers_are_the_identity_in_eval(layer):
    x = torch.randn(4, 3)
    assert torch.equal(layer.eval()(x), x)


def test_mask_structure_zero_or_inverse_keep():
    y = BernoulliDropout(0.25, generator=torch.Generator().manual_seed(0)).train()(torch.ones(1000, 4))
    assert set(y.unique().tolist()) <= {0.0, torch.tensor(1 / 0.75).item()}


def test_batched_equals_unbatched_under_a_fixed_rng():
    x = torch.randn(3, 5)
    batched = functional.bernoulli_dropout(x, 0.5, generator=torch.Generator().manual_seed(0))
    g = torch.Generator().manual_seed(0)
    rows = torch.stack([functional.bernoulli_dropout(r, 0.5, generator=g) for r in x])
    assert torch.equal(batched, rows)


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
