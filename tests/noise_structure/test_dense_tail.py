"""The fused dense-tail S_grad path equals the mask-replaying loop draw for draw, over tiles and tails."""

import pytest
import torch
from torch import nn

from droplab.models import FNN
from droplab.noise_structure import dense_tail, gradient_samples

CE = nn.functional.cross_entropy

TAILS = [  # (FNN keywords, block): each tail after the block is [activation,] noise layer, Linear
    pytest.param({"activation": "relu"}, ["net.2.weight", "net.2.bias"], id="relu-bias"),
    pytest.param({"activation": "tanh", "bias": False}, ["net.2.weight"], id="tanh-no-bias"),
    pytest.param({"activation": "linear", "noise": "gaussian"}, ["net.2.weight", "net.2.bias"], id="identity-gaussian"),
    pytest.param({"activation": "softplus"}, ["net.2.weight", "net.2.bias"], id="softplus"),
]


@pytest.mark.parametrize(("kwargs", "block"), TAILS)
@pytest.mark.parametrize("tile_rows", [7, None], ids=["tiles-of-7-rows", "one-tile"])
def test_dense_tail_equals_loop_draw_for_draw(kwargs, block, tile_rows, monkeypatch):
    torch.manual_seed(0)
    model = FNN([8, 6, 5, 3], dropout={2: 0.4}, **kwargs).double()
    x, y = torch.randn(30, 8, dtype=torch.float64), torch.randint(0, 3, (30,))
    chunk = 4
    if tile_rows is not None:  # 30 rows in tiles of 7 per torch thread: full tiles and a partial one
        monkeypatch.setattr(dense_tail, "TILE_BYTES", chunk * 5 * 8 * tile_rows)
    used = []
    real = dense_tail.dense_tail_gradients
    monkeypatch.setattr("droplab.noise_structure.sampling.dense_tail_gradients",
                        lambda *a, **k: used.append(real(*a, **k)) or used[-1])
    fused = gradient_samples(model, CE, (x, y), 11, block, generator=torch.Generator().manual_seed(5), chunk=chunk)
    loop = gradient_samples(model, CE, (x, y), 11, block, generator=torch.Generator().manual_seed(5), chunk=chunk,
                            method="loop")
    assert used and used[0] is not None  # the fused path ran
    torch.testing.assert_close(fused.samples, loop.samples, rtol=1e-12, atol=1e-14)


def test_other_tails_fall_back_to_autograd():
    torch.manual_seed(0)
    model = FNN([8, 6, 5, 3], dropout={2: 0.4}).double()
    y = torch.randint(0, 3, (30,))
    names = ["net.4"]
    params = {k: v.detach() for k, v in model.named_parameters()}
    tail = [(f"net.{i}", model.net[i]) for i in range(3, 6)]
    a, z = torch.randn(30, 7, dtype=torch.float64), torch.randn(30, 5, dtype=torch.float64)
    assert dense_tail.dense_tail_gradients(tail, names, params, CE, a, z, y) is not None
    assert dense_tail.dense_tail_gradients(tail, names, params, nn.functional.nll_loss, a, z, y) is None
    assert dense_tail.dense_tail_gradients(tail[:2], names, params, CE, a, z, y) is None   # no last Linear
    assert dense_tail.dense_tail_gradients(tail, ["net.1", *names], params, CE, a, z, y) is None  # two noise layers
