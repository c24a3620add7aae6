"""Directions in parameter space for loss-landscape plots (Li et al. 2017; Zhang, Zhou & Xu 2024, §5).

A direction is a list of tensors shaped like ``list(model.parameters())``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from droplab._checks import check_choice, check_generator
from droplab._params import block_size, parameter_block, unflatten_block

GRANULARITIES = ("filter", "layer")


def _filter_norms(t: Tensor, granularity: str) -> Tensor:
    """Norms of each filter of ``t`` (dim 0 slices), broadcastable to ``t``; one norm per layer if asked."""
    if granularity == "layer" or t.dim() < 2:
        return t.norm()
    return t.flatten(1).norm(dim=1).reshape(-1, *([1] * (t.dim() - 1)))


def filter_normalized_direction(model: nn.Module, generator: torch.Generator | None = None,
                                granularity: str = "filter", *, ignore_bias: bool = True) -> list[Tensor]:
    """A random Gaussian direction with each filter rescaled to the norm of the same filter of θ.

    ``granularity="filter"`` (Li et al. 2017): every slice along dim 0 of a weight — an output
    unit's row of a linear layer, an output channel of a convolution — gets the norm of the
    same slice of the parameter: d_{i,j} ← d_{i,j} / ‖d_{i,j}‖ · ‖θ_{i,j}‖.
    ``granularity="layer"``: each parameter tensor is one filter (Zhang, Zhou & Xu 2024, §5,
    "for FNN, each layer can be regarded as a filter").
    One-dimensional parameters (biases, batch-norm scales) get a zero direction when
    ``ignore_bias`` (Li et al.'s ``biasbn`` default); otherwise they are normalized as one filter.

    >>> net = nn.Linear(3, 2)
    >>> d = filter_normalized_direction(net, torch.Generator().manual_seed(0))
    >>> torch.allclose(d[0].norm(dim=1), net.weight.norm(dim=1)), bool(d[1].abs().sum() == 0)
    (True, True)
    """
    check_choice("granularity", granularity, GRANULARITIES)
    check_generator("generator", generator)
    direction = []
    for p in model.parameters():
        theta = p.detach()
        if theta.dim() < 2 and ignore_bias:
            direction.append(torch.zeros_like(theta))
            continue
        d = torch.randn(theta.shape, generator=generator, dtype=theta.dtype).to(theta.device)
        d = d / _filter_norms(d, granularity).clamp_min(1e-12) * _filter_norms(theta, granularity)
        direction.append(d)
    return direction


def check_direction(model: nn.Module, direction: Sequence[Tensor]) -> list[Tensor]:
    """Validate that ``direction`` is shaped like ``model.parameters()``; one-line error otherwise."""
    params = list(model.parameters())
    direction = list(direction)
    if len(direction) != len(params) or any(d.shape != p.shape for d, p in zip(direction, params)):
        want = [tuple(p.shape) for p in params]
        got = [tuple(d.shape) for d in direction]
        raise ValueError(f"direction must be shaped like model.parameters() {want}, got {got}")
    return direction


def direction_from_vector(model: nn.Module, vector: Tensor, *, params: Sequence[Tensor] | None = None) -> list[Tensor]:
    """Turn a flat vector over ``params`` (default all parameters) into a full direction.

    Parameters not in ``params`` get zero; this is how an eigenvector of a parameter block's
    covariance or Hessian becomes a direction for :func:`loss_profile`.
    """
    names = parameter_block(model, params)
    size = block_size(model, names)
    if vector.numel() != size:
        raise ValueError(f"vector has {vector.numel()} entries but the parameter block has {size}")
    if not torch.isfinite(vector).all():
        raise ValueError(f"vector must be finite, got {int((~torch.isfinite(vector)).sum())} NaN or infinite entries")
    block = unflatten_block(model, names, vector.reshape(-1))
    return [block[k].to(p) if k in block else torch.zeros_like(p) for k, p in model.named_parameters()]
