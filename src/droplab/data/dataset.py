"""The small dataset object every loader returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor


@dataclass
class Dataset:
    """Tensors of one split: inputs ``x`` (N, ...) and targets ``y`` (N,) or (N, k).

    ``n_classes`` is ``None`` for regression. ``meta`` holds provenance (source files, seed).
    """

    name: str
    split: str
    x: Tensor
    y: Tensor
    n_classes: int | None
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.x.shape[0] != self.y.shape[0]:
            raise ValueError(f"dataset {self.name!r} ({self.split}): {self.x.shape[0]} inputs but {self.y.shape[0]} "
                             "targets; every input needs one target")

    def __len__(self) -> int:
        return self.x.shape[0]

    def subset(self, n: int | None) -> Dataset:
        """The first ``n`` examples (as the papers' "first 10,000 training examples")."""
        if n is None:
            return self
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValueError(f"n must be a positive integer or None, got {n!r}")
        n = min(n, len(self))
        return Dataset(self.name, self.split, self.x[:n], self.y[:n], self.n_classes, dict(self.meta, n=n))

    def to(self, device: torch.device | str, dtype: torch.dtype | None = None) -> Dataset:
        x = self.x.to(device=device, dtype=dtype) if dtype is not None else self.x.to(device)
        return Dataset(self.name, self.split, x, self.y.to(device), self.n_classes, self.meta)

    def flat(self) -> Dataset:
        """Inputs reshaped to (N, features) for fully connected nets."""
        return Dataset(self.name, self.split, self.x.reshape(len(self), -1), self.y, self.n_classes, self.meta)

    def pooled(self, k: int) -> Dataset:
        """Images (N, C, H, W) average-pooled over k × k blocks (a CPU-sized input: 28×28 → 14×14 for k = 2)."""
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise ValueError(f"pool must be a positive integer, got {k!r}")
        if k == 1:
            return self
        if self.x.dim() != 4:
            raise ValueError(f"pool needs images (N, C, H, W); dataset {self.name!r} has inputs of shape "
                             f"{tuple(self.x.shape)}")
        x = torch.nn.functional.avg_pool2d(self.x, k)
        return Dataset(self.name, self.split, x, self.y, self.n_classes, dict(self.meta, pooled=k))

    def class_counts(self) -> list[int] | None:
        """Examples per class ``[count of 0, ..., count of n_classes - 1]``; None unless ``y`` holds one class a row."""
        if self.n_classes is None or self.y.dim() != 1:
            return None
        return torch.bincount(self.y, minlength=self.n_classes).tolist()

    @property
    def in_features(self) -> int:
        return int(self.x[0].numel())
