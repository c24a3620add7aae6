"""Constant log-normal noise, Achille & Soatto's "Log-normal" baseline (2017, §4, Fig. 3).

Works with ``torch.compile``; under ``torch.func`` transforms use evaluation mode or a replayed noise.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

from droplab._checks import check_positive
from droplab.nn import functional as F
from droplab.nn import laws
from droplab.nn.base import NoiseLayer


class LogNormalDropout(NoiseLayer):
    """``y = x ⊙ ε``, ε ~ logN(0, α²) with a constant α (Information Dropout without the learned α(x)).

    E ε = e^{α²/2} and Var ε = (e^{α²} − 1)e^{α²} (:meth:`noise_moments`); evaluation multiplies
    by E ε. ``alpha`` ≥ 0, a float or per-unit tensor.

    >>> LogNormalDropout(0.0).noise_moments()
    (1.0, 0.0)
    """

    def __init__(self, alpha: float | Tensor = 0.5, *, shared_dims: Sequence[int] = (),
                 generator: torch.Generator | None = None) -> None:
        super().__init__(generator)
        check_positive("alpha", alpha, allow_zero=True)
        self.set_law_parameter("alpha", alpha)
        self.shared_dims = tuple(shared_dims)

    def noise_moments(self) -> tuple[float | Tensor, float | Tensor]:
        return laws.lognormal_moments(self.alpha)

    def functional(self, x: Tensor, training: bool = True, **kwargs: Any) -> Tensor | tuple[Tensor, Tensor]:
        return F.lognormal_dropout(x, self.alpha, training, shared_dims=self.shared_dims, **kwargs)

    def extra_repr(self) -> str:
        a = f"tensor{tuple(self.alpha.shape)}" if isinstance(self.alpha, Tensor) else f"{self.alpha}"
        return f"alpha={a}" + (f", shared_dims={self.shared_dims}" if self.shared_dims else "")
