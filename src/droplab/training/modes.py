"""Mode context managers that restore the caller's train/eval state on exit."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from torch import nn


@contextmanager
def evaluation(model: nn.Module) -> Iterator[nn.Module]:
    """Evaluation mode inside the block (noise replaced by its mean); previous modes restored."""
    previous = {m: m.training for m in model.modules()}
    model.eval()
    try:
        yield model
    finally:
        for m, flag in previous.items():
            m.training = flag


@contextmanager
def training(model: nn.Module) -> Iterator[nn.Module]:
    """Training mode inside the block (noise sampled); previous modes restored."""
    previous = {m: m.training for m in model.modules()}
    model.train()
    try:
        yield model
    finally:
        for m, flag in previous.items():
            m.training = flag
