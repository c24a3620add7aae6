"""Gaussian dropout: multiplicative N(1, σ²) noise (Srivastava et al. 2014; Shalova, Peletier & Schlichting).

Works with ``torch.compile`` (tested, ``fullgraph=True``); under ``torch.func`` transforms use
evaluation mode or a replayed noise (:func:`droplab.nn.replay_masks`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

from droplab.nn import functional as F
from droplab.nn import laws
from droplab.nn.base import NoiseLayer, noise_shape


class GaussianDropout(NoiseLayer):
    """``y = x ⊙ ξ``, ξ ~ N(1, σ²): SPS's Gaussian-dropout filter ``1 + η``, η ~ N(0, σ²).

    Give ``sigma`` or the drop probability ``p``; with ``p``, σ² = p/(1 − p) so the noise has
    the variance of inverted Bernoulli dropout (Srivastava et al. 2014, §10). Exactly one of
    them. Either may be a per-unit tensor. Evaluation is the identity (E ξ = 1).

    >>> GaussianDropout(p=0.5).noise_moments()
    (1.0, 1.0)
    """

    def __init__(self, p: float | Tensor | None = None, sigma: float | Tensor | None = None, *,
                 shared_dims: Sequence[int] = (), generator: torch.Generator | None = None) -> None:
        super().__init__(generator)
        s = laws.gaussian_sigma(p, sigma)
        self.p = float(p) if isinstance(p, (int, float)) else None
        self.set_law_parameter("sigma", s)
        self.shared_dims = tuple(shared_dims)

    def noise_moments(self) -> tuple[float | Tensor, float | Tensor]:
        return 1.0, self.sigma * self.sigma

    def functional(self, x: Tensor, training: bool = True, **kwargs: Any) -> Tensor | tuple[Tensor, Tensor]:
        return F.gaussian_dropout(x, sigma=self.sigma, training=training, shared_dims=self.shared_dims, **kwargs)

    def sample_noise(self, x: Tensor) -> Tensor:
        """The twin's draw for ``x`` without its product ``x ⊙ ξ`` (a pass :func:`~droplab.nn.draw_noise` discards)."""
        return laws.gaussian_noise(noise_shape(x, self.shared_dims), self.sigma, dtype=x.dtype, device=x.device,
                                   generator=self.generator)

    def extra_repr(self) -> str:
        s = f"tensor{tuple(self.sigma.shape)}" if isinstance(self.sigma, Tensor) else f"{self.sigma:.4g}"
        head = f"p={self.p}, sigma={s}" if self.p is not None else f"sigma={s}"
        return head + (f", shared_dims={self.shared_dims}" if self.shared_dims else "")
