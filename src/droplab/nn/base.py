"""The shared idea under every droplab noise layer: multiply by noise ``1 + η`` of known law.

A :class:`NoiseLayer` subclass says how to draw its multiplicative noise
(:meth:`NoiseLayer.sample_noise`) and what its first two moments are
(:meth:`NoiseLayer.noise_moments`); the base class does the modes (training, evaluation,
Monte Carlo) and mask record/replay (:mod:`droplab.nn.modes`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import ClassVar

import torch
from torch import Tensor, nn


class NoiseLayer(nn.Module):
    """Base class: ``y = x ⊙ ξ`` with ξ random while sampling and ``E[ξ]`` at evaluation.

    Sampling happens when the module is in training mode or when :func:`droplab.nn.mc_mode`
    is active. At evaluation the noise is replaced by its expectation, so the layer is
    the deterministic ensemble layer (Baldi & Sadowski 2014, §3).

    NaN in the input propagates as NaN; nothing raises on it.
    """

    input_dependent: ClassVar[bool] = False
    """Whether the law of the noise depends on the input's values (not only its shape): then
    :meth:`sample_noise` needs the real input, and :func:`droplab.nn.draw_noise` a forward pass."""

    def __init__(self, generator: torch.Generator | None = None) -> None:
        super().__init__()
        self.generator = generator
        self.mc = False
        self._record: list[Tensor] | None = None
        self._replay: Tensor | list[Tensor] | None = None

    @property
    def sampling(self) -> bool:
        """Whether a forward pass draws noise (training or Monte Carlo mode)."""
        return self.training or self.mc

    def noise_moments(self) -> tuple[float | Tensor, float | Tensor]:
        """Mean and variance of the multiplicative noise ξ applied while sampling."""
        raise NotImplementedError(f"{type(self).__name__} must define noise_moments()")

    def sample_noise(self, x: Tensor) -> Tensor:
        """Draw multiplicative noise broadcastable to ``x``."""
        raise NotImplementedError(f"{type(self).__name__} must define sample_noise()")

    def take_noise(self, x: Tensor, sample: Callable[[], Tensor] | None = None) -> Tensor:
        """Return the noise for this call: replayed if a replay is active, else sampled; record it.

        ``sample`` (no arguments) draws the noise instead of :meth:`sample_noise` when the layer
        already holds what the law needs (e.g. α(x) computed once in ``forward``).
        """
        if self._replay is None:
            noise = self.sample_noise(x) if sample is None else sample()
        elif isinstance(self._replay, Tensor):
            noise = self._replay
        else:
            if not self._replay:
                raise ValueError("masks replay is exhausted: the recording has fewer calls than the replay")
            noise = self._replay.pop(0)
        if self._record is not None:
            self._record.append(noise.detach())
        return noise

    def forward(self, x: Tensor) -> Tensor:
        if not self.sampling:
            mean, _ = self.noise_moments()
            return x * mean
        return x * self.take_noise(x)


def noise_shape(x: Tensor, shared_dims: Sequence[int]) -> tuple[int, ...]:
    """Shape of a mask for ``x`` that is shared (size 1) along ``shared_dims``.

    ``shared_dims=(2, 3)`` on an (N, C, H, W) input gives one mask per example and channel
    (spatial dropout); ``shared_dims=(0,)`` gives one mask for the whole batch.
    """
    shape = list(x.shape)
    for d in shared_dims:
        if not -x.dim() <= d < x.dim():
            raise ValueError(f"shared_dims entry {d} is out of range for an input with {x.dim()} dims")
        shape[d] = 1
    return tuple(shape)
