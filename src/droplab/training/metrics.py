"""Evaluation metrics on a whole dataset, computed in evaluation mode."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from droplab.training.modes import evaluation


def accuracy(model: nn.Module, x: Tensor, y: Tensor, chunk: int = 4096) -> float:
    """Fraction of ``x`` whose argmax prediction equals ``y`` (evaluation mode)."""
    correct = 0
    with evaluation(model), torch.no_grad():
        for i in range(0, len(x), chunk):
            correct += int((model(x[i:i + chunk]).argmax(-1) == y[i:i + chunk]).sum())
    return correct / max(len(x), 1)
