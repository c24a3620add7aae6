"""Dropin: units set to 1 instead of 0 (Baldi & Sadowski 2014, §11.6).

Works with ``torch.compile``; under ``torch.func`` transforms use evaluation mode or a replayed mask.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

from droplab._checks import check_probability
from droplab.nn import functional as F
from droplab.nn import laws
from droplab.nn.base import NoiseLayer


class Dropin(NoiseLayer):
    """Each unit is set to **1** with probability ``p``: ``y = m ⊙ x + (1 − m)``, m ~ Bernoulli(1 − p).

    Baldi & Sadowski 2014, §11.6: "superficially symmetric to dropout", it maximizes variances
    (Var y = p(1 − p)(x − 1)²) and does not work as a regularizer; droplab ships it to show
    that. Dropin is not purely multiplicative: the recorded noise and :meth:`noise_moments`
    are those of the keep mask m (mean ``1 − p``, variance ``p(1 − p)``); evaluation gives the
    expectation ``(1 − p)x + p``. No rescaling.

    >>> Dropin(0.25).noise_moments()
    (0.75, 0.1875)
    """

    def __init__(self, p: float | Tensor = 0.5, *, shared_dims: Sequence[int] = (),
                 generator: torch.Generator | None = None) -> None:
        super().__init__(generator)
        check_probability("p", p)
        self.set_law_parameter("p", p)
        self.shared_dims = tuple(shared_dims)

    def noise_moments(self) -> tuple[float | Tensor, float | Tensor]:
        return laws.bernoulli_moments(self.p, "none")

    def functional(self, x: Tensor, training: bool = True, **kwargs: Any) -> Tensor | tuple[Tensor, Tensor]:
        return F.dropin(x, self.p, training, shared_dims=self.shared_dims, **kwargs)

    def extra_repr(self) -> str:
        p = f"tensor{tuple(self.p.shape)}" if isinstance(self.p, Tensor) else f"{self.p}"
        return f"p={p}" + (f", shared_dims={self.shared_dims}" if self.shared_dims else "")
