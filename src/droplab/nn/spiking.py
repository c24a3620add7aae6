"""Stochastic spiking units (Baldi & Sadowski 2014, §10.1): dropout whose keep probability is the activity.

Works with ``torch.compile`` apart from the data-dependent activity check (a graph break);
``torch.func``: evaluation mode or replayed spikes only.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from droplab._checks import check_choice, check_positive
from droplab.nn import functional as F
from droplab.nn.base import NoiseLayer

MODES = ("global", "connection")


class StochasticSpiking(NoiseLayer):
    """A unit with activity O ∈ [0, 1] emits ``r`` with probability O (Baldi & Sadowski 2014, §10.1).

    ``mode="global"``: one coin per unit, the same spike sent along every outgoing connection —
    unit dropout with keep probability O and scale r; output ``r·Δ``, Δ ~ Bernoulli(O).
    ``mode="connection"``: one coin per outgoing connection (dropout on connections); the layer
    then owns those connections, ``linear`` (an ``nn.Linear``), and outputs
    ``S_i = Σ_j w_ij r Δ_ij + b_i`` — put it in place of the (activation → Linear) pair's Linear.
    Its mask is batch × out × in, drawn in chunks.

    Evaluation gives the expectation (r·O, or W(r·O) + b); the gradient is that of the
    expectation (straight-through). The multiplicative view ``r·Δ = O·ξ`` gives
    :meth:`noise_moments` = (r, r²(1 − O)/O) for the last forward's O (∞ where O = 0).
    Activities outside [0, 1] raise; NaN propagates.

    >>> StochasticSpiking(2.0).eval()(torch.tensor([0.25, 1.0]))
    tensor([0.5000, 2.0000])
    """

    input_dependent = True  # spikes Δ ~ Bernoulli(O): the law is the input's activity

    def __init__(self, r: float = 1.0, mode: str = "global", *, linear: nn.Linear | None = None,
                 generator: torch.Generator | None = None) -> None:
        super().__init__(generator)
        check_positive("r", r)
        check_choice("mode", mode, MODES)
        if (mode == "connection") != (linear is not None):
            raise ValueError("linear (an nn.Linear for the outgoing connections) must be given exactly when "
                             f"mode='connection', got mode={mode!r} and linear={linear!r}")
        self.r, self.mode, self.linear = float(r), mode, linear
        self.last_activity: Tensor | None = None

    def noise_moments(self) -> tuple[float | Tensor, float | Tensor]:
        if self.last_activity is None:
            raise RuntimeError("StochasticSpiking.noise_moments() depends on the activities: run a forward pass first")
        o = self.last_activity
        return self.r, self.r * self.r * (1 - o) / o

    @property
    def elementwise(self) -> bool:  # type: ignore[override]
        """Global spikes multiply the units; connection spikes are (rows, out, in)."""
        return self.linear is None

    def functional(self, x: Tensor, training: bool = True, **kwargs: Any) -> Tensor | tuple[Tensor, Tensor]:
        if self.linear is None:
            return F.stochastic_spiking(x, self.r, training, **kwargs)
        return F.spiking_linear(x, self.linear.weight, self.linear.bias, self.r, training, **kwargs)

    def forward(self, x: Tensor) -> Tensor:
        self.last_activity = x.detach()
        return self.call_twin(self.functional, x)

    def extra_repr(self) -> str:
        return f"r={self.r}, mode={self.mode!r}"
