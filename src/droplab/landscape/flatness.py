"""Interval flatness (Zhang, Zhou & Xu 2024, Definition 2), by bracketing and bisection, along any direction."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from torch import Tensor, nn

from droplab._checks import check_positive
from droplab._params import LossFn
from droplab.landscape.directions import check_direction
from droplab.landscape.profiles import loss_profile


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


def _crossing(profile: Callable[[float], float], sign: int, threshold: float, radius: float,
              initial: float, tol: float, atol: float) -> tuple[float, bool]:
    """Distance to the first crossing on one side: geometric bracketing, then bisection.

    Bisection stops once the bracket [lo, hi] is shorter than ``max(tol·lo, atol)``: the midpoint
    is then within a relative ``tol/2`` of the crossing, however sharp the minimum.
    """
    inside, step = 0.0, min(initial, radius)
    while True:
        value = float(profile(sign * step))
        if not value <= threshold:  # above the threshold (a NaN counts as above)
            break
        inside = step
        if step >= radius:
            return radius, False
        step = min(2 * step, radius)
    lo, hi = inside, step
    while hi - lo > max(tol * lo, atol):
        mid = 0.5 * (lo + hi)
        if float(profile(sign * mid)) <= threshold:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi), True


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
    check_positive("radius", radius)
    check_positive("tol", tol)
    atol = radius * 1e-12 if atol is None else atol
    check_positive("atol", atol)
    loss0 = float(profile(0.0))
    if level is None:
        if not math.isfinite(loss0) or loss0 <= 0:
            raise ValueError(f"interval flatness is undefined: the loss at θ* must be finite and > 0, got {loss0}")
        if factor <= 1:
            raise ValueError(f"factor must be > 1 (the threshold is factor·L(θ*)), got {factor}")
        threshold = factor * loss0
    else:
        if not loss0 < level:
            raise ValueError(f"level must exceed the loss at θ* ({loss0}), got {level}")
        threshold = level
    start = initial if initial is not None else radius / 1024
    right, br = _crossing(profile, +1, threshold, radius, start, tol, atol)
    left, bl = _crossing(profile, -1, threshold, radius, start, tol, atol)
    return IntervalFlatness(-left, right, right + left, threshold, loss0, bl, br)


def direction_flatness(model: nn.Module, loss_fn: LossFn, data: tuple[Tensor, Tensor],
                       directions: Iterable[Sequence[Tensor]], factor: float = 2.0, radius: float = 10.0,
                       tol: float = 1e-4, *, initial: float | None = None,
                       level: float | None = None) -> list[IntervalFlatness]:
    """Interval flatness F_v (Definition 2) of the evaluation-mode loss δ ↦ L(θ* + δ v) along each direction v.

    The width of a minimum along a direction, one home for it: ``directions`` are shaped like
    ``model.parameters()`` (:func:`filter_normalized_direction` draws, or eigenvectors through
    :func:`direction_from_vector`); ``factor``, ``level``, ``radius``, ``tol`` and ``initial`` as in
    :func:`interval_flatness`.

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
    out = []
    for direction in directions:
        direction = check_direction(model, direction)

        def profile(delta: float, direction: list[Tensor] = direction) -> float:
            return float(loss_profile(model, loss_fn, data, direction, [delta])[0])

        out.append(interval_flatness(profile, factor, radius, tol, initial=initial, level=level))
    return out
