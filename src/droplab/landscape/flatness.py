"""Interval flatness (Zhang, Zhou & Xu 2024, Definition 2), by bracketing and bisection, along any direction."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from droplab._checks import check_positive
from droplab._params import LossFn
from droplab.landscape.directions import check_direction
from droplab.landscape.profiles import loss_at


@dataclass(frozen=True)
class IntervalFlatness:
    """θ_l < 0 < θ_r where the profile first reaches the threshold; ``width`` = θ_r − θ_l.

    ``bounded_left``/``bounded_right`` are False when the loss never reached the threshold
    within the search radius on that side (the end is then reported as ∓radius).
    """

    left: float
    right: float
    width: float
    threshold: float
    loss_at_zero: float
    bounded_left: bool
    bounded_right: bool

    @property
    def bounded(self) -> bool:
        return self.bounded_left and self.bounded_right


def _grid(radius: float, initial: float) -> list[float]:
    """The bracketing steps: ``initial`` doubled until it reaches ``radius`` (the last one is ``radius``)."""
    steps = [min(initial, radius)]
    while steps[-1] < radius:
        steps.append(min(2 * steps[-1], radius))
    return steps


def _crossings(evaluate: Callable[[Tensor, Tensor], Tensor], n: int, thresholds: Tensor, radius: float,
               initial: float, tol: float, atol: float) -> tuple[Tensor, Tensor]:
    """Distance to the first crossing of every threshold on both sides of ``n`` profiles at once.

    ``evaluate(index, delta)`` is the loss of profile ``index[j]`` at step ``delta[j]`` (1-D tensors).
    On each side the first crossing is bracketed on the geometric grid :func:`_grid` (one batched
    evaluation for all profiles and sides), then located by bisection, every open bracket of every
    profile, side and threshold advancing in one batched evaluation per round. A bracket [lo, hi]
    stops once shorter than ``max(tol·lo, atol)``: its midpoint is within a relative ``tol/2`` of the
    crossing, however sharp the minimum. Returns the distances and whether each end was bounded,
    both shaped (n, 2 sides (+, −), thresholds); an unbounded end is reported as ``radius``.
    """
    f64 = torch.float64
    grid = torch.tensor(_grid(radius, initial), dtype=f64)
    signs = torch.tensor([1.0, -1.0], dtype=f64)
    k = len(grid)
    index = torch.arange(n).repeat_interleave(2 * k)
    values = evaluate(index, (signs[:, None] * grid).reshape(-1).repeat(n)).to(f64).reshape(n, 2, k)
    above = ~(values[..., None] <= thresholds)  # (n, 2, k, T); a NaN counts as above
    bounded = above.any(2)
    first = above.to(torch.int8).argmax(2)  # the first grid step above the threshold
    hi = grid[first]
    lo = torch.where(first > 0, grid[(first - 1).clamp_min(0)], torch.zeros((), dtype=f64))
    while True:
        active = bounded & (hi - lo > torch.clamp(tol * lo, min=atol))
        if not active.any():
            break
        which = active.nonzero()  # (P, 3): profile, side, threshold
        mid = 0.5 * (lo[active] + hi[active])
        points, inverse = torch.unique(torch.stack([which[:, 0].to(f64), signs[which[:, 1]] * mid], 1), dim=0,
                                       return_inverse=True)  # thresholds sharing a bracket share the point
        below = evaluate(points[:, 0].long(), points[:, 1]).to(f64)[inverse] <= thresholds[which[:, 2]]
        lo[active] = torch.where(below, mid, lo[active])
        hi[active] = torch.where(below, hi[active], mid)
    return torch.where(bounded, 0.5 * (lo + hi), torch.full_like(lo, radius)), bounded


def _thresholds(loss0: float, factors: Sequence[float], levels: Sequence[float]) -> list[float]:
    """Definition 2's thresholds c·L(θ*) for each factor c, then the absolute ``levels``; one line on bad input."""
    if factors and (not math.isfinite(loss0) or loss0 <= 0):
        raise ValueError(f"interval flatness is undefined: the loss at θ* must be finite and > 0, got {loss0}")
    for c in factors:
        check_positive("factor", c)
        if c <= 1:
            raise ValueError(f"factor must be > 1 (the threshold is factor·L(θ*)), got {c}")
    for level in levels:
        if not loss0 < level:
            raise ValueError(f"level must exceed the loss at θ* ({loss0}), got {level}")
    return [c * loss0 for c in factors] + [float(v) for v in levels]


def _widths(evaluate: Callable[[Tensor, Tensor], Tensor], n: int, loss0: float, factors: Sequence[float],
            levels: Sequence[float], radius: float, tol: float, atol: float | None,
            initial: float | None) -> tuple[dict[float, list[IntervalFlatness]], dict[float, list[IntervalFlatness]]]:
    """Interval flatness of ``n`` profiles for each factor and level (see :func:`flatness_table`)."""
    check_positive("radius", radius)
    check_positive("tol", tol)
    atol = radius * 1e-12 if atol is None else atol
    check_positive("atol", atol)
    thresholds = _thresholds(loss0, factors, levels)
    start = initial if initial is not None else radius / 1024
    check_positive("initial", start)
    ends, bounded = _crossings(evaluate, n, torch.tensor(thresholds, dtype=torch.float64), radius, start, tol, atol)
    table = [[IntervalFlatness(-float(ends[i, 1, t]), float(ends[i, 0, t]), float(ends[i, 0, t] + ends[i, 1, t]),
                               thr, loss0, bool(bounded[i, 1, t]), bool(bounded[i, 0, t])) for i in range(n)]
             for t, thr in enumerate(thresholds)]
    return dict(zip(factors, table[:len(factors)])), dict(zip(levels, table[len(factors):]))


def interval_flatness(profile: Callable[[float], float], factor: float = 2.0, radius: float = 10.0,
                      tol: float = 1e-4, *, atol: float | None = None, initial: float | None = None,
                      level: float | None = None) -> IntervalFlatness:
    """Width of the region around δ = 0 where ``profile(δ) ≤ factor · profile(0)`` (Definition 2).

    ``profile`` is δ ↦ L(θ* + δ v). On each side the first crossing is bracketed by doubling
    the step from ``initial`` (default ``radius / 1024``) and located by bisection to a relative
    ``tol``: each reported end is within ``tol/2`` of its own distance from a crossing (so the
    width too), with an absolute floor ``atol`` (default ``radius·1e-12``) for a crossing at 0.
    The crossing found is the first on that geometric grid: a loss that dips back below the
    threshold between grid points is not resolved. ``level`` replaces the relative threshold by an
    absolute loss level.

    For a quadratic L(δ) = L₀ + ½λδ² the closed form is
    ``width = 2·sqrt(2·L₀·(factor − 1)/λ)`` (solve L₀ + ½λδ² = factor·L₀).

    >>> fl = interval_flatness(lambda d: 1.0 + 0.5 * 4.0 * d * d, tol=1e-8)
    >>> round(fl.width, 6)  # 2*sqrt(2*1*(2-1)/4)
    1.414214
    """
    check_positive("factor", factor)

    def evaluate(index: Tensor, delta: Tensor) -> Tensor:
        return torch.tensor([float(profile(float(d))) for d in delta], dtype=torch.float64)

    factors, levels = ((factor,), ()) if level is None else ((), (level,))
    by_factor, by_level = _widths(evaluate, 1, float(profile(0.0)), factors, levels, radius, tol, atol, initial)
    return (by_factor[factor] if level is None else by_level[level])[0]


def flatness_table(model: nn.Module, loss_fn: LossFn, data: tuple[Tensor, Tensor],
                   directions: Iterable[Sequence[Tensor]], factors: Sequence[float] = (2.0,),
                   levels: Sequence[float] = (), radius: float = 10.0, tol: float = 1e-4, *,
                   initial: float | None = None, chunk: int = 1,
                   ) -> tuple[dict[float, list[IntervalFlatness]], dict[float, list[IntervalFlatness]]]:
    """Interval flatness F_v (Definition 2) along every direction, for every pre-factor and every level.

    Returns ``(by_factor, by_level)``: for each factor c of ``factors`` the widths of
    {δ : L(θ* + δv) ≤ c·L(θ*)}, for each of ``levels`` those of {δ : L(θ* + δv) ≤ level}, one per
    direction, all from one search: the bracketing grid is shared by every threshold, and each
    bisection round evaluates the open brackets of every direction, side and threshold in one
    batched call (:func:`loss_at`, ``chunk`` points per vmapped call; 1, the default, evaluates them one
    by one, the fastest on a CPU). Same ends as :func:`interval_flatness` run on each profile.
    """
    directions = [check_direction(model, d) for d in directions]
    if not directions:
        raise ValueError("directions must hold at least one direction")
    loss0 = float(loss_at(model, loss_fn, data, directions[:1], torch.zeros(1, 1), chunk=chunk)[0])
    eye = torch.eye(len(directions), dtype=torch.float64)

    def evaluate(index: Tensor, delta: Tensor) -> Tensor:
        return loss_at(model, loss_fn, data, directions, eye[index] * delta[:, None], chunk=chunk)

    return _widths(evaluate, len(directions), loss0, factors, levels, radius, tol, None, initial)


def direction_flatness(model: nn.Module, loss_fn: LossFn, data: tuple[Tensor, Tensor],
                       directions: Iterable[Sequence[Tensor]], factor: float = 2.0, radius: float = 10.0,
                       tol: float = 1e-4, *, initial: float | None = None,
                       level: float | None = None) -> list[IntervalFlatness]:
    """Interval flatness F_v (Definition 2) of the evaluation-mode loss δ ↦ L(θ* + δ v) along each direction v.

    The width of a minimum along a direction, one home for it: ``directions`` are shaped like
    ``model.parameters()`` (:func:`filter_normalized_direction` draws, or eigenvectors through
    :func:`direction_from_vector`); ``factor``, ``level``, ``radius``, ``tol`` and ``initial`` as in
    :func:`interval_flatness`; several factors or levels at once: :func:`flatness_table`.

    >>> import torch
    >>> net = nn.Linear(1, 1, bias=False)
    >>> x, y = torch.ones(1, 1), torch.zeros(1, 1)
    >>> with torch.no_grad():
    ...     _ = net.weight.fill_(1.0)  # L(1 + δ) = (1 + δ)² ≤ 4·L(1) for δ in [−3, 1]
    >>> fl = direction_flatness(net, nn.functional.mse_loss, (x, y), [[torch.ones(1, 1)]], factor=4.0,
    ...                         tol=1e-9)[0]
    >>> round(fl.left, 6), round(fl.right, 6)
    (-3.0, 1.0)
    """
    check_positive("factor", factor)
    factors, levels = ((factor,), ()) if level is None else ((), (level,))
    by_factor, by_level = flatness_table(model, loss_fn, data, directions, factors, levels, radius, tol,
                                         initial=initial)
    return by_factor[factor] if level is None else by_level[level]


def widened_flatness(model: nn.Module, loss_fn: LossFn, data: tuple[Tensor, Tensor],
                     directions: Sequence[Sequence[Tensor]], radius: float, max_radius: float, tol: float = 1e-4,
                     *, factor: float = 2.0) -> tuple[Tensor, int]:
    """Definition 2's F_v (``factor``) per direction, the search radius widened ×4 from ``radius`` up to
    ``max_radius`` until both ends are bounded; directions still unbounded are censored: NaN in the returned
    widths (to be left out of any fit, never fitted as if measured) and counted in the second value.

    >>> import torch
    >>> net = nn.Linear(1, 1, bias=False)
    >>> x, y = torch.ones(1, 1), torch.zeros(1, 1)
    >>> with torch.no_grad():
    ...     _ = net.weight.fill_(1.0)  # F along v = 1 is 4 (δ in [−3, 1]); a radius of 0.5 cannot bound it
    >>> widened_flatness(net, nn.functional.mse_loss, (x, y), [[torch.ones(1, 1)]], 0.5, 8.0, 1e-9, factor=4.0)
    (tensor([4.0000]), 0)
    """
    check_positive("radius", radius)
    check_positive("max_radius", max_radius)
    widths = torch.full((len(directions),), float("nan"))
    todo = list(range(len(directions)))
    r = radius
    while todo and r <= max_radius:
        found = direction_flatness(model, loss_fn, data, [directions[i] for i in todo], factor=factor, radius=r,
                                   tol=tol, initial=radius / 64)
        for i, fl in zip(todo, found):
            if fl.bounded:
                widths[i] = fl.width
        todo = [i for i, fl in zip(todo, found) if not fl.bounded]
        r *= 4
    return widths, len(todo)
