"""The contract every functional twin shares: input checks and the ``out`` / ``(out, noise)`` result."""

from __future__ import annotations

import torch
from torch import Tensor

from droplab._checks import check_floating, check_generator

Out = Tensor | tuple[Tensor, Tensor]


def _check(x: Tensor, generator: torch.Generator | None) -> None:
    check_floating("input", x)
    check_generator("generator", generator)


def _result(out: Tensor, noise: Tensor | float, return_noise: bool) -> Out:
    return (out, torch.as_tensor(noise)) if return_noise else out


def _flatten_features(x: Tensor, in_features: int) -> Tensor:
    if x.dim() == 0 or x.shape[-1] != in_features:
        raise ValueError(f"input must have {in_features} features in its last dim, got shape {tuple(x.shape)}")
    return x.reshape(-1, in_features)
