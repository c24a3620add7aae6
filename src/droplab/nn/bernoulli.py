"""Bernoulli unit dropout (Baldi & Sadowski 2014, §2–5; Zhang, Zhou & Xu 2024, §3.3)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

from droplab._checks import check_choice, check_probability
from droplab.nn import functional as F
from droplab.nn import laws
from droplab.nn.base import NoiseLayer, noise_shape


class BernoulliDropout(NoiseLayer):
    """Unit dropout: each unit kept with probability ``1 − p`` (``p`` is the drop probability).

    Baldi & Sadowski's keep probability p_i (and Zhang–Zhou–Xu's "dropout rate") is ``1 − p``
    here. With ``scale="inverted"`` the kept units are divided by ``1 − p`` while training and
    evaluation is the identity; with ``scale="none"`` training does not rescale and evaluation
    multiplies by ``1 − p`` (weight scaling, Baldi & Sadowski eq. 8). ``p`` may be a tensor of
    per-unit probabilities broadcastable to the input. ``shared_dims`` shares the mask along
    those input dims (``(2, 3)`` for spatial dropout on (N, C, H, W), ``(0,)`` for one mask per
    batch). Works with ``torch.compile``; under ``torch.func`` transforms sampling is random
    per call, so use :func:`droplab.nn.replay_masks` with a fixed mask (or ``eval``) inside them.

    >>> layer = BernoulliDropout(0.25)
    >>> layer.noise_moments()
    (1.0, 0.3333333333333333)
    """

    def __init__(self, p: float | Tensor = 0.5, scale: str = "inverted", *,
                 shared_dims: Sequence[int] = (), generator: torch.Generator | None = None) -> None:
        super().__init__(generator)
        check_probability("p", p)
        check_choice("scale", scale, laws.SCALES)
        self.set_law_parameter("p", p)
        self.scale = scale
        self.shared_dims = tuple(shared_dims)

    def noise_moments(self) -> tuple[float | Tensor, float | Tensor]:
        return laws.bernoulli_moments(self.p, self.scale)

    def functional(self, x: Tensor, training: bool = True, **kwargs: Any) -> Tensor | tuple[Tensor, Tensor]:
        return F.bernoulli_dropout(x, self.p, training, scale=self.scale, shared_dims=self.shared_dims, **kwargs)

    def sample_noise(self, x: Tensor) -> Tensor:
        """The twin's draw for ``x`` without its product ``x ⊙ ξ`` (a pass :func:`~droplab.nn.draw_noise` discards)."""
        return laws.bernoulli_noise(noise_shape(x, self.shared_dims), self.p, scale=self.scale, dtype=x.dtype,
                                    device=x.device, generator=self.generator)

    def extra_repr(self) -> str:
        p = f"tensor{tuple(self.p.shape)}" if isinstance(self.p, Tensor) else f"{self.p}"
        return f"p={p}, scale={self.scale!r}" + (f", shared_dims={self.shared_dims}" if self.shared_dims else "")
