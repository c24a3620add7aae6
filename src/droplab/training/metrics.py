"""Evaluation metrics on a whole dataset, computed in evaluation mode."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from droplab.nn.modes import evaluation


def accuracy(model: nn.Module, x: Tensor, y: Tensor, chunk: int = 4096, ignore_index: int | None = None) -> float:
    """Fraction of targets whose argmax prediction is right (evaluation mode).

    Works for class labels ``y`` (N,) and for token targets (N, L); targets equal to
    ``ignore_index`` (padding) are not counted.
    """
    correct = total = 0
    with evaluation(model), torch.no_grad():
        for i in range(0, len(x), chunk):
            target = y[i:i + chunk]
            hit = model(x[i:i + chunk]).argmax(-1) == target
            keep = target != ignore_index if ignore_index is not None else torch.ones_like(hit)
            correct += int((hit & keep).sum())
            total += int(keep.sum())
    return correct / max(total, 1)
