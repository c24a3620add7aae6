"""Callbacks that record what happens during :func:`droplab.training.fit`.

A callback is called as ``cb(step, model, info)`` after every optimizer step (``step`` counts
from 1, ``info`` holds at least ``loss``); returning ``True`` stops training. Callbacks with
state expose ``state_dict()`` / ``load_state_dict()`` so a resumed run records exactly what an
uninterrupted one would.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor, nn


class RecordParameters:
    """Record a flat copy of the chosen parameters every ``every`` steps (the trajectory), or at the
    steps listed in ``at`` (e.g. log-spaced snapshots of one training run)."""

    def __init__(self, every: int = 1, params: Callable[[nn.Module], list[Tensor]] | None = None,
                 at: Sequence[int] | None = None) -> None:
        if at is not None and any(not isinstance(s, int) or s < 1 for s in at):
            raise ValueError(f"at must list steps ≥ 1 (step 1 is after the first update), got {list(at)}")
        self.every = every
        self.at = None if at is None else frozenset(at)
        self.select = params or (lambda m: list(m.parameters()))
        self.steps: list[int] = []
        self.values: list[Tensor] = []

    def __call__(self, step: int, model: nn.Module, info: dict[str, Any]) -> None:
        if (step in self.at) if self.at is not None else step % self.every == 0:
            self.steps.append(step)
            self.values.append(torch.cat([p.detach().reshape(-1) for p in self.select(model)]).clone())

    def trajectory(self) -> Tensor:
        """(n_records, n_params) tensor of the recorded parameters."""
        return torch.stack(self.values)

    def state_dict(self) -> dict[str, Any]:
        return {"steps": list(self.steps), "values": list(self.values)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.steps, self.values = list(state["steps"]), list(state["values"])


class RecordMetric:
    """Record ``fn(model)`` (a float) every ``every`` steps under ``name``."""

    def __init__(self, name: str, fn: Callable[[nn.Module], float], every: int = 1) -> None:
        self.name, self.fn, self.every = name, fn, every
        self.steps: list[int] = []
        self.values: list[float] = []

    def __call__(self, step: int, model: nn.Module, info: dict[str, Any]) -> None:
        if step % self.every == 0:
            self.steps.append(step)
            self.values.append(float(self.fn(model)))

    def state_dict(self) -> dict[str, Any]:
        return {"steps": list(self.steps), "values": list(self.values)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.steps, self.values = list(state["steps"]), list(state["values"])
