"""Interval flatness (Zhang, Zhou & Xu 2024, Definition 2), by bracketing and bisection."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from droplab._checks import check_positive


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
              initial: float, tol: float) -> tuple[float, bool]:
    """Distance to the first crossing on one side: geometric bracketing, then bisection."""
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
    while hi - lo > tol:
        mid = 0.5 * (lo + hi)
        if float(profile(sign * mid)) <= threshold:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi), True


def interval_flatness(profile: Callable[[float], float], factor: float = 2.0, radius: float = 10.0,
                      tol: float = 1e-4, *, initial: float | None = None,
                      level: float | None = None) -> IntervalFlatness:
    """Width of the region around δ = 0 where ``profile(δ) ≤ factor · profile(0)`` (Definition 2).

    ``profile`` is δ ↦ L(θ* + δ v). On each side the first crossing is bracketed by doubling
    the step from ``initial`` (default ``radius / 1024``) and located by bisection to ``tol``
    (the reported ends are within ``tol/2`` of a crossing). The crossing found is the first on
    that geometric grid: a loss that dips back below the threshold between grid points is
    not resolved. ``level`` replaces the relative threshold by an absolute loss level.

    For a quadratic L(δ) = L₀ + ½λδ² the closed form is
    ``width = 2·sqrt(2·L₀·(factor − 1)/λ)`` (solve L₀ + ½λδ² = factor·L₀).

    >>> fl = interval_flatness(lambda d: 1.0 + 0.5 * 4.0 * d * d, tol=1e-8)
    >>> round(fl.width, 6)  # 2*sqrt(2*1*(2-1)/4)
    1.414214
    """
    check_positive("factor", factor)
    check_positive("radius", radius)
    check_positive("tol", tol)
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
    right, br = _crossing(profile, +1, threshold, radius, start, tol)
    left, bl = _crossing(profile, -1, threshold, radius, start, tol)
    return IntervalFlatness(-left, right, right + left, threshold, loss0, bl, br)
