"""Loss profiles along directions: 1D ``L(θ* + α d)`` and 2D ``L(θ* + α d₁ + β d₂)``.

The loss analysed is the evaluation-mode loss (dropout replaced by its mean) unless a fixed
mask is replayed by the caller (:func:`droplab.nn.replay_masks`); the model's mode is restored.
Profiles are evaluated in batches of parameter points with ``torch.func.vmap`` over
``functional_call``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn
from torch.func import functional_call, vmap

from droplab._params import LossFn
from droplab.landscape.directions import check_direction
from droplab.nn.modes import evaluation


def _points_loss(model: nn.Module, loss_fn: LossFn, x: Tensor, y: Tensor,
                 names: list[str], points: list[Tensor], chunk: int) -> Tensor:
    """Loss at a batch of parameter points (each entry of ``points`` has a leading point dim)."""

    def one(*flat: Tensor) -> Tensor:
        return loss_fn(functional_call(model, dict(zip(names, flat)), (x,)), y)

    n = points[0].shape[0]
    if n == 1:  # one point (bisection steps): a plain call, without vmap's per-call set-up
        return one(*[p[0] for p in points]).reshape(1)
    out = []
    for i in range(0, n, chunk):
        out.append(vmap(one)(*[p[i:i + chunk] for p in points]))
    return torch.cat(out)


def _steps(name: str, steps: Tensor | Sequence[float], dtype: torch.dtype) -> Tensor:
    """The step sizes along a direction as a 1-D tensor with at least one finite entry each."""
    out = torch.as_tensor(steps, dtype=dtype).reshape(-1)
    if out.numel() == 0 or not torch.isfinite(out).all():
        raise ValueError(f"{name} must be a non-empty sequence of finite step sizes, got {out.tolist()}")
    return out


def loss_profile(model: nn.Module, loss_fn: LossFn, data: tuple[Tensor, Tensor],
                 direction: Sequence[Tensor], alphas: Tensor | Sequence[float], *, chunk: int = 16) -> Tensor:
    """Losses at θ* + α·direction for every α in ``alphas`` (evaluation-mode loss).

    >>> net = nn.Linear(2, 1)
    >>> x, y = torch.randn(8, 2), torch.randn(8, 1)
    >>> d = [torch.ones_like(p) for p in net.parameters()]
    >>> loss_profile(net, nn.functional.mse_loss, (x, y), d, [0.0]).item() == nn.functional.mse_loss(net(x), y).item()
    True
    """
    direction = check_direction(model, direction)
    alphas = _steps("alphas", alphas, next(model.parameters()).dtype)
    names = [n for n, _ in model.named_parameters()]
    params = [p.detach() for p in model.parameters()]
    points = [p + alphas.reshape(-1, *([1] * p.dim())) * d for p, d in zip(params, direction)]
    x, y = data
    with evaluation(model), torch.no_grad():
        return _points_loss(model, loss_fn, x, y, names, points, chunk)


def loss_surface(model: nn.Module, loss_fn: LossFn, data: tuple[Tensor, Tensor],
                 directions: tuple[Sequence[Tensor], Sequence[Tensor]], alphas: Tensor | Sequence[float],
                 betas: Tensor | Sequence[float], *, chunk: int = 16) -> Tensor:
    """Losses on the grid θ* + α d₁ + β d₂, shape (len(alphas), len(betas))."""
    d1, d2 = (check_direction(model, d) for d in directions)
    dtype = next(model.parameters()).dtype
    a, b = _steps("alphas", alphas, dtype), _steps("betas", betas, dtype)
    aa, bb = torch.meshgrid(a, b, indexing="ij")
    aa, bb = aa.reshape(-1), bb.reshape(-1)
    names = [n for n, _ in model.named_parameters()]
    points = []
    for p, u, v in zip(model.parameters(), d1, d2):
        shape = (-1, *([1] * p.dim()))
        points.append(p.detach() + aa.reshape(shape) * u + bb.reshape(shape) * v)
    x, y = data
    with evaluation(model), torch.no_grad():
        return _points_loss(model, loss_fn, x, y, names, points, chunk).reshape(len(a), len(b))
