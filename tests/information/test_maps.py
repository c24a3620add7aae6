"""KL-mass-in-box fractions against a brute-force pixel-level reference."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from droplab.information import alpha_values, box_fraction, peak_in_box
from droplab.nn import InformationDropout


def test_box_fraction_matches_upsampled_pixel_reference():
    """With maps whose cells tile the image exactly (input 24, maps 6×6: 4-pixel cells) and boxes on
    cell boundaries, the cell-centre rule equals counting every input pixel of the upsampled map."""
    g = torch.Generator().manual_seed(0)
    maps = torch.rand(5, 6, 6, generator=g, dtype=torch.float64)
    cells = torch.randint(0, 6, (5, 2), generator=g)
    boxes = torch.cat([cells * 4, (cells + torch.randint(1, 3, (5, 2), generator=g)).clamp(max=6) * 4], 1)
    mass, area = box_fraction(maps, boxes, 24)
    up = maps.repeat_interleave(4, 1).repeat_interleave(4, 2) / 16  # mass spread over each cell's pixels
    for i in range(5):
        t, left, b, r = boxes[i].tolist()
        assert mass[i] == pytest.approx(float(up[i, t:b, left:r].sum() / up[i].sum()), rel=1e-12)
        assert area[i] == pytest.approx((b - t) * (r - left) / 24**2, rel=1e-12)


def test_bad_input():
    with pytest.raises(ValueError, match="boxes must be shaped"):
        box_fraction(torch.ones(2, 3, 3), torch.zeros(3, 4), 9)
    with pytest.raises(ValueError, match="non-negative"):
        box_fraction(-torch.ones(1, 3, 3), torch.zeros(1, 4), 9)


def test_kl_maps_sum_to_each_layers_per_sample_kl_and_restore_modes():
    from droplab.information import information_layers, kl_maps
    from droplab.models import AllCNN
    from droplab.nn.modes import evaluation

    torch.manual_seed(0)
    model = AllCNN("allcnn96", in_channels=1, width=0.1, noise="information").train()
    x = torch.rand(5, 1, 32, 32)
    maps = kl_maps(model, x, chunk=2)
    assert model.training
    assert [tuple(m.shape) for m in maps.values()] == [(5, 16, 16), (5, 8, 8), (5, 4, 4), (5, 2, 2)]
    with evaluation(model), torch.no_grad():
        model(x)
    for name, layer in information_layers(model).items():
        assert torch.allclose(maps[name].sum((1, 2)), layer.kl, rtol=1e-5)
        assert (maps[name] >= 0).all()
    with pytest.raises(ValueError, match="no droplab.nn.InformationDropout layers"):
        kl_maps(AllCNN(in_channels=1, width=0.1), x)


def test_peak_in_box_matches_a_loop_over_examples():
    """Against the definition per example: the argmax cell's centre (in input pixels) inside the box."""
    g = torch.Generator().manual_seed(1)
    maps = torch.rand(40, 5, 5, generator=g)
    corner = torch.randint(0, 12, (40, 2), generator=g)
    boxes = torch.cat([corner, corner + torch.randint(1, 9, (40, 2), generator=g)], 1)
    got = peak_in_box(maps, boxes, 20)
    for i in range(40):
        r, c = divmod(int(maps[i].argmax()), 5)
        y, x = (r + 0.5) * 4, (c + 0.5) * 4
        t, left, b, rt = boxes[i].tolist()
        assert bool(got[i]) == (t <= y < b and left <= x < rt)
    assert got.any() and not got.all()  # the sample exercises both outcomes


def test_alpha_values_are_the_layers_alpha_in_evaluation_mode_and_restore_the_mode():
    """α read through the model equals the layer's own α(f(x)) on the same input; the caller's train
    flag is kept, and the values respect the cap."""
    torch.manual_seed(0)
    body = nn.Sequential(nn.Conv2d(1, 3, 3, padding=1), nn.BatchNorm2d(3), nn.ReLU())
    drop = InformationDropout(3, max_alpha=0.4, conv=True)
    net = nn.Sequential(body, drop).train()
    x = torch.randn(7, 1, 6, 6)
    got = alpha_values(net, x, chunk=3)["1"]
    assert net.training
    body.eval()
    with torch.no_grad():
        want = drop.alpha(body(x))
    assert got.shape == (7, 3, 6, 6)
    torch.testing.assert_close(got, want)
    assert float(got.max()) < 0.4 and float(got.min()) >= drop.min_alpha
