"""One way to draw per-example noise: ``draw_noise`` equals recording a Monte Carlo forward pass draw for draw,
takes the forward path for input-dependent layers, leaves modes and generators as it found them."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from droplab.models import FNN
from droplab.nn import (
    BernoulliDropout,
    GaussianDropout,
    InformationDropout,
    OUDropout,
    StochasticSpiking,
    VariationalDropout,
    draw_noise,
    lend_generator,
    loss_masks,
    mc_mode,
    noise_layers,
    noise_space,
    record_masks,
)


def _recorded(model: nn.Module, x: torch.Tensor, n_draws: int, seed: int) -> dict[str, torch.Tensor]:
    """The reference: one Monte Carlo pass of the batch repeated n_draws times, recording each layer's noise."""
    with torch.no_grad(), mc_mode(model), lend_generator(model, torch.Generator().manual_seed(seed)), \
            record_masks(model) as rec:
        model(x.repeat(n_draws, 1))
    return {k: v[0].reshape(n_draws, len(x), *v[0].shape[1:]) for k, v in rec.items()}


NETS = {
    "bernoulli": lambda: FNN([5, 4, 3, 2], dropout={0: 0.2, 1: 0.5, 2: 0.3}),
    "gaussian+bernoulli": lambda: nn.Sequential(nn.Linear(5, 4), GaussianDropout(p=0.4), nn.ReLU(), nn.Linear(4, 3),
                                                BernoulliDropout(0.5)),
    "variational": lambda: nn.Sequential(nn.Linear(5, 4), VariationalDropout(4), nn.Linear(4, 2)),
    "information": lambda: nn.Sequential(nn.Linear(5, 4), nn.ReLU(), InformationDropout(4), nn.Linear(4, 2)),
    "spiking": lambda: nn.Sequential(nn.Linear(5, 4), nn.Sigmoid(), StochasticSpiking(), nn.Linear(4, 2)),
}


@pytest.mark.parametrize("name", NETS)
def test_draw_noise_equals_a_recorded_monte_carlo_pass(name):
    torch.manual_seed(0)
    model = NETS[name]().train()
    x = torch.rand(6, 5)
    drawn = draw_noise(model, x, 3, torch.Generator().manual_seed(4))
    reference = _recorded(model, x, 3, seed=4)
    assert drawn.keys() == reference.keys()
    for key in drawn:
        assert drawn[key].shape[:2] == (3, 6) and torch.equal(drawn[key], reference[key]), key


def test_draw_noise_leaves_modes_and_generators_alone():
    model = FNN([5, 4, 2], dropout=0.5).eval()
    own = torch.Generator().manual_seed(1)
    noise_layers(model)[0].generator = own
    state = own.get_state()
    draw_noise(model, torch.rand(3, 5), 2, torch.Generator().manual_seed(0))
    assert not model.training and not noise_layers(model)[0].mc
    assert noise_layers(model)[0].generator is own and torch.equal(own.get_state(), state)


def test_shared_batch_noise_and_missing_layers_are_one_line_errors():
    shared = nn.Sequential(nn.Linear(3, 3), OUDropout(0.5))  # one η across the batch
    with pytest.raises(ValueError, match="shares its noise across the batch"):
        draw_noise(shared, torch.rand(4, 3), 2)
    with pytest.raises(ValueError, match="model has no droplab noise layer"):
        draw_noise(nn.Linear(3, 3), torch.rand(4, 3), 2)
    with pytest.raises(ValueError, match="n_draws must be an integer >= 1"):
        draw_noise(shared, torch.rand(4, 3), 0)


def test_loss_masks_expected_are_draw_noise_draws_and_the_space_matches_their_units():
    model = FNN([5, 4, 3, 2], dropout=0.3)
    x = torch.rand(6, 5)
    masks = loss_masks(model, x, "expected", n_masks=3, generator=torch.Generator().manual_seed(2))
    drawn = draw_noise(model, x, 3, torch.Generator().manual_seed(2))
    assert len(masks) == 3 and all(torch.equal(masks[s][k], drawn[k][s]) for s in range(3) for k in drawn)
    space = noise_space(model, x)
    assert [tuple(drawn[k].shape[2:]) for k in space.names] == [s[1:] for s in space.shapes]
    assert loss_masks(model, x, "eval") == [None]
