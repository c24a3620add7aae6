"""Dropin: units set to 1 instead of 0 (Baldi & Sadowski 2014, §11.6).

Works with ``torch.compile``; under ``torch.func`` transforms use evaluation mode or a replayed mask.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from droplab._checks import check_probability
from droplab.nn import functional as F
from droplab.nn.base import NoiseLayer, noise_shape


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
        if isinstance(p, Tensor):
            self.register_buffer("p", p.detach().clone())
        else:
            self.p = float(p)
        self.shared_dims = tuple(shared_dims)

    def noise_moments(self) -> tuple[float | Tensor, float | Tensor]:
        keep = 1 - self.p
        return keep, self.p * keep

    def sample_noise(self, x: Tensor) -> Tensor:
        if isinstance(self.p, Tensor):
            F.check_broadcast("p", self.p, x)
        return F.bernoulli_noise(noise_shape(x, self.shared_dims), self.p, scale="none", dtype=x.dtype,
                                 device=x.device, generator=self.generator)

    def forward(self, x: Tensor) -> Tensor:
        if not self.sampling:
            return F.dropin(x, self.p, training=False)
        m = self.take_noise(x)
        return m * x + (1 - m)

    def extra_repr(self) -> str:
        p = f"tensor{tuple(self.p.shape)}" if isinstance(self.p, Tensor) else f"{self.p}"
        return f"p={p}" + (f", shared_dims={self.shared_dims}" if self.shared_dims else "")
