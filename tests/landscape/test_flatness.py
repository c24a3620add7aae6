"""Interval flatness (ZZX Definition 2) against closed forms: quadratic and asymmetric minima, sharp and flat."""

import math

import pytest
import torch
from torch import nn

from droplab.landscape import direction_flatness, flatness_table, interval_flatness, loss_profile, widened_flatness

MSE = nn.functional.mse_loss


def quadratic(loss0: float, curvature: float):
    return lambda d: loss0 + 0.5 * curvature * d * d


@pytest.mark.parametrize("curvature", [1e-2, 1.0, 1e2, 4.9e5], ids=["flat", "unit", "sharp", "width-0.009"])
def test_quadratic_width_to_the_relative_tolerance(curvature):
    # L₀ + ½λδ² = 2·L₀  ⇔  δ = ±sqrt(2·L₀/λ): width 2·sqrt(2·L₀/λ); λ = 4.9e5, L₀ = 1 gives 0.00904
    # (issue 14: an absolute tol resolved that one only to 0.5 %).
    tol = 1e-4
    fl = interval_flatness(quadratic(1.0, curvature), radius=500.0, tol=tol)
    exact = 2 * math.sqrt(2 / curvature)
    assert fl.bounded
    assert abs(fl.width - exact) <= tol / 2 * exact  # each end within tol/2 of its own distance
    assert fl.left == pytest.approx(-exact / 2, rel=tol) and fl.right == pytest.approx(exact / 2, rel=tol)


def test_absolute_level_and_an_asymmetric_profile():
    # L(δ) = (1 + δ)²: below 4 on [−3, 1], below 2·L(0) = 2 on [−1 − √2, √2 − 1]
    profile = lambda d: (1 + d) ** 2  # noqa: E731
    fl = interval_flatness(profile, level=4.0, tol=1e-8)
    assert (fl.left, fl.right) == (pytest.approx(-3.0, rel=1e-8), pytest.approx(1.0, rel=1e-8))
    rel = interval_flatness(profile, tol=1e-8)
    assert rel.width == pytest.approx(2 * math.sqrt(2), rel=1e-8) and rel.threshold == 2.0


def test_an_end_beyond_the_radius_is_reported_unbounded():
    fl = interval_flatness(lambda d: 1.0 + max(d, 0.0) ** 2, radius=5.0)  # flat on the left
    assert not fl.bounded_left and fl.left == -5.0
    assert fl.bounded_right and fl.right == pytest.approx(1.0, rel=1e-4)
    assert not fl.bounded


def test_direction_flatness_of_a_linear_model_is_the_quadratic_closed_form():
    # w ↦ mean((w·x − y)²) along d is quadratic in δ: L(δ) = L₀ + δ·g + ½λδ² with
    # λ = 2·mean((d·x)²), g = 2·mean((w·x − y)(d·x)); the ends solve L(δ) = level in closed form.
    torch.manual_seed(0)
    net = nn.Linear(3, 1, bias=False).double()
    x, y = torch.randn(20, 3, dtype=torch.float64), torch.randn(20, 1, dtype=torch.float64)
    d = torch.randn(1, 3, dtype=torch.float64)
    r, s = (net(x) - y).detach().reshape(-1), (x @ d.T).reshape(-1)
    loss0, g, lam = float((r ** 2).mean()), float(2 * (r * s).mean()), float(2 * (s ** 2).mean())
    level = loss0 + 1.0
    disc = math.sqrt(g * g + 2 * lam * (level - loss0))
    fl = direction_flatness(net, MSE, (x, y), [[d]], radius=100.0, tol=1e-9, level=level)[0]
    assert fl.right == pytest.approx((-g + disc) / lam, rel=1e-8)
    assert fl.left == pytest.approx((-g - disc) / lam, rel=1e-8)
    assert fl.loss_at_zero == pytest.approx(loss0, rel=1e-12)


def test_flatness_table_gives_every_factor_and_level_in_closed_form():
    # A linear model under MSE is exactly quadratic along each direction d_k: L(δ) = L₀ + δ·g_k + ½λ_k δ²,
    # so each end solves ½λ_k δ² + g_k δ − (t − L₀) = 0 for the threshold t = c·L₀ or the level.
    torch.manual_seed(2)
    net = nn.Linear(4, 1, bias=False).double()
    x, y = torch.randn(30, 4, dtype=torch.float64), torch.randn(30, 1, dtype=torch.float64)
    dirs = [[torch.randn(1, 4, dtype=torch.float64)] for _ in range(3)]
    factors, levels = (1.5, 2.0, 3.0), (2.5,)
    by_factor, by_level = flatness_table(net, MSE, (x, y), dirs, factors, levels, radius=100.0, tol=1e-9)
    r = (net(x) - y).detach().reshape(-1)
    loss0 = float((r ** 2).mean())
    for k, (d,) in enumerate(dirs):
        s = (x @ d.T).reshape(-1)
        g, lam = float(2 * (r * s).mean()), float(2 * (s ** 2).mean())
        for t, fl in [(c * loss0, by_factor[c][k]) for c in factors] + [(v, by_level[v][k]) for v in levels]:
            disc = math.sqrt(g * g + 2 * lam * (t - loss0))
            assert fl.bounded and fl.threshold == pytest.approx(t, rel=1e-12)
            assert (fl.left, fl.right) == (pytest.approx((-g - disc) / lam, rel=1e-8),
                                           pytest.approx((-g + disc) / lam, rel=1e-8))


def test_flatness_table_finds_the_ends_the_one_profile_search_finds():
    # The batched search (shared grid, every bracket advanced per round) must take the very steps of the
    # sequential search of interval_flatness on each profile: equal ends, not merely close ones.
    torch.manual_seed(3)
    net = nn.Sequential(nn.Linear(3, 8), nn.Tanh(), nn.Linear(8, 2)).double()
    x, y = torch.randn(40, 3, dtype=torch.float64), torch.randint(0, 2, (40,))
    ce = nn.functional.cross_entropy
    dirs = [[torch.randn_like(p) for p in net.parameters()] for _ in range(4)]
    by_factor, by_level = flatness_table(net, ce, (x, y), dirs, (1.5, 3.0), (1.0,), radius=8.0, tol=1e-3)
    for k, d in enumerate(dirs):
        def profile(delta: float, d=d) -> float:
            return float(loss_profile(net, ce, (x, y), d, [delta])[0])
        for got, want in [(by_factor[c][k], interval_flatness(profile, c, 8.0, 1e-3)) for c in (1.5, 3.0)] + \
                [(by_level[1.0][k], interval_flatness(profile, radius=8.0, tol=1e-3, level=1.0))]:
            assert got == want


def test_direction_flatness_leaves_the_model_and_its_mode_alone():
    net = nn.Sequential(nn.Linear(2, 2), nn.Dropout(0.5), nn.Linear(2, 1))
    before = [p.detach().clone() for p in net.parameters()]
    net.train()
    direction_flatness(net, MSE, (torch.randn(5, 2), torch.randn(5, 1)),
                       [[torch.ones_like(p) for p in net.parameters()]], radius=1.0, tol=1e-2)
    assert net.training and all(torch.equal(a, b) for a, b in zip(before, net.parameters()))


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"factor": 1.0}, "factor must be > 1"),
    ({"tol": 0.0}, "tol must be finite and > 0"),
    ({"radius": -1.0}, "radius must be finite and > 0"),
    ({"atol": -1.0}, "atol must be finite and > 0"),
    ({"level": 0.5}, "level must exceed the loss at θ"),
], ids=["factor-1", "tol-0", "radius-negative", "atol-negative", "level-below-minimum"])
def test_interval_flatness_bad_input(kwargs, match):
    with pytest.raises(ValueError, match=match):
        interval_flatness(quadratic(1.0, 1.0), **kwargs)


def test_direction_flatness_rejects_a_misshapen_direction():
    net = nn.Linear(2, 1)
    with pytest.raises(ValueError, match="direction must be shaped like model.parameters"):
        direction_flatness(net, MSE, (torch.randn(3, 2), torch.randn(3, 1)), [[torch.ones(2)]])


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"factors": (0.5,)}, "factor must be > 1"),
    ({"factors": (), "levels": (1e-9,)}, "level must exceed the loss at θ"),
    ({"initial": 0.0}, "initial must be finite and > 0"),
], ids=["factor-below-1", "level-below-minimum", "initial-0"])
def test_flatness_table_bad_input(kwargs, match):
    net = nn.Linear(2, 1)
    with pytest.raises(ValueError, match=match):
        flatness_table(net, MSE, (torch.randn(3, 2), torch.randn(3, 1)), [[torch.ones(1, 2), torch.ones(1)]],
                       **kwargs)


def test_widened_flatness_widens_until_bounded_and_censors_the_rest():
    net = nn.Linear(1, 1, bias=False)
    x, y = torch.ones(1, 1), torch.zeros(1, 1)
    with torch.no_grad():
        net.weight.fill_(1.0)  # L(1 + δ) = (1 + δ)²: factor 4 bounds δ ∈ [−3, 1], width 4 along v = 1
    dirs = [[torch.ones(1, 1)], [torch.full((1, 1), 1e-3)]]  # the second needs a radius ≥ 3,000
    widths, censored = widened_flatness(net, MSE, (x, y), dirs, radius=0.5, max_radius=100.0, tol=1e-9, factor=4.0)
    assert censored == 1 and torch.isnan(widths[1])
    assert widths[0].item() == pytest.approx(4.0, rel=1e-6)
