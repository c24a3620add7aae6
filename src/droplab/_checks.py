"""Argument validators: one home for every one-line ``ValueError`` of the public API.

Each check names the argument, says what is allowed and what was given, so that a user
reading the single line knows the fix.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import torch


def _describe(value: Any) -> str:
    if isinstance(value, torch.Tensor):
        if value.numel() == 1:
            return repr(value.item())
        return f"a tensor with min {value.min().item():g} and max {value.max().item():g}"
    return repr(value)


def check_probability(name: str, value: float | torch.Tensor, *, low_open: bool = False,
                      high_open: bool = True) -> None:
    """Check ``value`` (float or tensor) lies in [0, 1) by default; the ends can be opened/closed."""
    check_number(name, value)
    if _skip_values(value):
        return
    if isinstance(value, numbers.Real):  # plain Python: no tensor, nothing for torch.compile to trace
        v = float(value)
        ok = (v > 0 if low_open else v >= 0) and (v < 1 if high_open else v <= 1)
    else:
        t = torch.as_tensor(value, dtype=torch.float64)
        lo_ok = (t > 0).all() if low_open else (t >= 0).all()
        hi_ok = (t < 1).all() if high_open else (t <= 1).all()
        ok = not torch.isnan(t).any() and bool(lo_ok and hi_ok)
    if not ok:
        lo = "(" if low_open else "["
        hi = ")" if high_open else "]"
        raise ValueError(f"{name} must be in {lo}0, 1{hi}, got {_describe(value)}")


def check_number(name: str, value: Any) -> None:
    """``TypeError`` unless ``value`` is a real number, array or tensor (not a bool, string, None, complex, ...)."""
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        return
    if value is None or isinstance(value, (bool, str, bytes)):
        raise TypeError(f"{name} must be a real number or a tensor, got {type(value).__name__} {value!r}")
    try:
        t = torch.as_tensor(value)
    except (TypeError, ValueError, RuntimeError):
        raise TypeError(f"{name} must be a real number or a tensor, got {type(value).__name__}") from None
    if t.dtype == torch.bool or t.is_complex():
        raise TypeError(f"{name} must be real-valued, got a {t.dtype} value")


def _skip_values(value: Any) -> bool:
    """Tensor values cannot be inspected while ``torch.compile`` traces (data-dependent branching)."""
    return isinstance(value, torch.Tensor) and torch.compiler.is_compiling()


def check_positive(name: str, value: float | torch.Tensor, *, allow_zero: bool = False) -> None:
    """Check ``value`` > 0 (or >= 0 with ``allow_zero``) and finite."""
    check_number(name, value)
    if _skip_values(value):
        return
    if isinstance(value, numbers.Real):
        v = float(value)
        ok = math.isfinite(v) and (v >= 0 if allow_zero else v > 0)
    else:
        t = torch.as_tensor(value, dtype=torch.float64)
        ok = bool(torch.isfinite(t).all()) and bool((t >= 0).all() if allow_zero else (t > 0).all())
    if not ok:
        rel = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{name} must be finite and {rel}, got {_describe(value)}")


def check_int(name: str, value: Any, *, minimum: int = 0) -> None:
    """Check ``value`` is an integer >= ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")


def check_choice(name: str, value: Any, allowed: Iterable[Any]) -> None:
    """Check ``value`` is one of ``allowed``; the message lists them."""
    allowed = list(allowed)
    if value not in allowed:
        listed = ", ".join(repr(a) for a in allowed)
        raise ValueError(f"{name} must be one of {listed}; got {value!r}")


def check_finite(name: str, value: float) -> None:
    """Check a scalar is finite."""
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value!r}")


def check_in_range(name: str, value: float | torch.Tensor, low: float, high: float, *,
                   low_open: bool = False, high_open: bool = False) -> None:
    """Check every entry of ``value`` (float or tensor) lies in [low, high]; either end can be opened."""
    t = torch.as_tensor(value, dtype=torch.float64)
    lo_ok = (t > low).all() if low_open else (t >= low).all()
    hi_ok = (t < high).all() if high_open else (t <= high).all()
    if torch.isnan(t).any() or not (lo_ok and hi_ok):
        raise ValueError(f"{name} must lie in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}, "
                         f"got {_describe(value)}")


def check_unit_interval_values(name: str, values: torch.Tensor) -> None:
    """Check every entry of ``values`` lies in [0, 1] (NWGM and complements need it)."""
    if torch.isnan(values).any() or (values < 0).any() or (values > 1).any():
        raise ValueError(f"{name} must lie in [0, 1], got {_describe(values)}")


def check_weights(name: str, weights: torch.Tensor, values: torch.Tensor, *, atol: float = 1e-6) -> None:
    """Check probability ``weights`` broadcast to ``values`` (..., m), are >= 0 and sum to 1 over the last dim."""
    try:
        shape = torch.broadcast_shapes(tuple(weights.shape), tuple(values.shape))
    except RuntimeError:
        shape = None
    if shape != tuple(values.shape) or weights.dim() == 0 or weights.shape[-1] != values.shape[-1]:
        raise ValueError(f"{name} of shape {tuple(weights.shape)} must match values of shape "
                         f"{tuple(values.shape)} (same last dim, broadcastable leading dims)")
    if torch.isnan(weights).any() or (weights < 0).any():
        raise ValueError(f"{name} must be >= 0, got {_describe(weights)}")
    total = weights.sum(-1)
    if weights.is_floating_point():  # allow the rounding of a long float32 sum
        atol = max(atol, 4 * weights.shape[-1] * torch.finfo(weights.dtype).eps)
    if ((total - 1).abs() > atol).any():
        raise ValueError(f"{name} must sum to 1 over the last dim (within {atol:g}), got sums {_describe(total)}")


def check_activities(name: str, values: torch.Tensor) -> None:
    """Check every non-NaN entry of ``values`` lies in [0, 1] (NaN is let through to propagate)."""
    finite = values[~torch.isnan(values)]
    if finite.numel() and ((finite < 0).any() or (finite > 1).any()):
        raise ValueError(f"{name} must lie in [0, 1] (firing probabilities), got {_describe(finite)}")


def check_exactly_one(**named: Any) -> None:
    """Check exactly one of the keyword arguments is not None; the message names them all."""
    given = [k for k, v in named.items() if v is not None]
    if len(given) != 1:
        names = " or ".join(named)
        raise ValueError(f"give exactly one of {names}, got {', '.join(given) if given else 'neither'}")


def check_batch(name: str, x: torch.Tensor) -> None:
    """Check ``x`` is a tensor with a batch dim holding at least one example."""
    if not isinstance(x, torch.Tensor) or x.dim() < 1 or x.shape[0] < 1:
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"{name} must be a tensor (N, ...) with at least one example, got {shape}")


def check_generator(name: str, generator: Any) -> None:
    """Check ``generator`` is a ``torch.Generator`` or None."""
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(f"{name} must be a torch.Generator or None, got {type(generator).__name__}; "
                        "make one with torch.Generator().manual_seed(seed)")


def check_data(name: str, data: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """Check ``data`` is a pair ``(inputs, targets)`` of tensors with the same number (>= 1) of examples."""
    if not isinstance(data, (tuple, list)) or len(data) != 2 or not all(isinstance(t, torch.Tensor) for t in data):
        raise ValueError(f"{name} must be a pair (inputs, targets) of tensors, got {type(data).__name__}")
    x, y = data
    check_batch(f"{name}[0] (inputs)", x)
    if y.dim() < 1 or len(y) != len(x):
        raise ValueError(f"{name} must hold as many targets as inputs, got {len(x)} inputs and targets of shape "
                         f"{tuple(y.shape)}")
    return x, y


#: Words of torch's shape and dtype errors (matmul, convolution, broadcasting, view) that ``model_input`` rewrites.
_SHAPE_ERRORS = ("shape", "size", "dimension", "dtype", "Expected", "expected")


@contextmanager
def model_input(name: str, x: torch.Tensor) -> Iterator[None]:
    """Inside the block, a shape error of a model's forward on ``x`` becomes one line naming ``name``."""
    try:
        yield
    except RuntimeError as e:
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        if not any(word in first for word in _SHAPE_ERRORS):
            raise
        raise ValueError(f"{name} of shape {tuple(x.shape)} does not fit the model's input: {first}") from None


def check_broadcast(name: str, param: torch.Tensor, x: torch.Tensor) -> None:
    """One-line error when a per-unit parameter does not broadcast against the input or lives on another device."""
    if param.device != x.device:
        raise ValueError(f"{name} is on {param.device} but the input on {x.device}; move it with .to(input.device)")
    try:
        torch.broadcast_shapes(tuple(param.shape), tuple(x.shape))
    except RuntimeError:
        raise ValueError(
            f"{name} of shape {tuple(param.shape)} does not broadcast against an input of shape "
            f"{tuple(x.shape)}; give one value per unit of the trailing dims"
        ) from None


def check_floating(name: str, x: Any) -> None:
    """``TypeError`` unless ``x`` is a floating-point tensor (noise layers, like ``torch.nn.Dropout``, need one)."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a floating-point tensor, got {type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got dtype {x.dtype}; convert it with .float()")
