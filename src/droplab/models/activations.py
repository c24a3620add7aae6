"""Activations by name, including Baldi & Sadowski's logistic family (eq. 27)."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from droplab._checks import check_choice, check_positive


class Logistic(nn.Module):
    """σ(S) = 1 / (1 + c·e^{−λS}) (Baldi & Sadowski 2014, eq. 27): gain λ, offset c > 0.

    λ = 1, c = 1 is the standard sigmoid; σ(S) = sigmoid(λS − log c).
    """

    def __init__(self, gain: float = 1.0, c: float = 1.0) -> None:
        super().__init__()
        check_positive("c", c)
        self.gain = float(gain)
        self.c = float(c)

    def forward(self, x: Tensor) -> Tensor:
        return torch.sigmoid(self.gain * x - math.log(self.c))

    def extra_repr(self) -> str:
        return f"gain={self.gain}, c={self.c}"


ACTIVATIONS = ("relu", "tanh", "softplus", "logistic", "linear")


def make_activation(name: str, *, gain: float = 1.0, c: float = 1.0) -> nn.Module:
    """An activation module by name (one of :data:`ACTIVATIONS`); ``gain``/``c`` for ``logistic``."""
    check_choice("activation", name, ACTIVATIONS)
    if name == "logistic":
        return Logistic(gain, c)
    return {"relu": nn.ReLU, "tanh": nn.Tanh, "softplus": nn.Softplus, "linear": nn.Identity}[name]()
