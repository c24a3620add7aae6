"""The shared idea under every droplab noise layer: multiply by noise ``1 + η`` of known law.

A :class:`NoiseLayer` subclass says what it computes (:meth:`NoiseLayer.functional`, its functional
twin) and what the first two moments of its noise are (:meth:`NoiseLayer.noise_moments`); the base
class does the modes (training, evaluation, Monte Carlo) and mask record/replay
(:mod:`droplab.nn.modes`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import ClassVar

import torch
from torch import Tensor, nn

from droplab._checks import check_generator


class NoiseLayer(nn.Module):
    """Base class: ``y = x ⊙ ξ`` with ξ random while sampling and ``E[ξ]`` at evaluation.

    Sampling happens when the module is in training mode or when :func:`droplab.nn.mc_mode`
    is active. At evaluation the noise is replaced by its expectation, so the layer is
    the deterministic ensemble layer (Baldi & Sadowski 2014, §3).

    A subclass says what it computes in one place, :meth:`functional`: its functional twin of
    :mod:`droplab.nn.functional` called with the layer's parameters. ``forward`` and
    :meth:`sample_noise` call it (replaying and recording the noise for :mod:`droplab.nn.modes`),
    and :meth:`noise_moments` gives the law's first two moments. What analyses read instead of
    listing classes: :attr:`shared_dims`, :attr:`per_example`, :attr:`input_dependent`,
    :attr:`has_kl` and :meth:`kl_divergence`.

    NaN in the input propagates as NaN; nothing raises on it.
    """

    input_dependent: ClassVar[bool] = False
    """Whether the law of the noise depends on the input's values (not only its shape): then
    :meth:`sample_noise` needs the real input, and :func:`droplab.nn.draw_noise` a forward pass."""
    has_kl: ClassVar[bool] = False
    """Whether the layer adds a KL term to the loss (:meth:`kl_divergence`; Information and variational dropout)."""
    shared_dims: tuple[int, ...] = ()
    """Input dims along which the noise is shared (size 1); ``(0,)`` shares it across the batch."""
    elementwise: bool = True
    """Whether the noise multiplies the input elementwise (it broadcasts to the input's shape); False for
    connection noise (DropConnect, connection spiking) and pre-activation noise (VariationalDropoutLinear)."""

    def __init__(self, generator: torch.Generator | None = None) -> None:
        super().__init__()
        check_generator("generator", generator)
        self.generator = generator
        self.mc = False
        self._record: list[Tensor] | None = None
        self._replay: Tensor | list[Tensor] | None = None
        self._replay_name = ""

    def set_law_parameter(self, name: str, value: float | Tensor) -> None:
        """Hold a noise-law parameter: a per-unit tensor as a buffer (``state_dict``, ``.to()``), else a float."""
        if isinstance(value, Tensor):
            self.register_buffer(name, value.detach().clone())
        else:
            setattr(self, name, float(value))

    @property
    def sampling(self) -> bool:
        """Whether a forward pass draws noise (training or Monte Carlo mode)."""
        return self.training or self.mc

    @property
    def per_example(self) -> bool:
        """Whether every example gets its own noise (it is not shared along the batch dim 0)."""
        return 0 not in self.shared_dims

    def noise_moments(self) -> tuple[float | Tensor, float | Tensor]:
        """Mean and variance of the multiplicative noise ξ applied while sampling."""
        raise NotImplementedError(f"{type(self).__name__} must define noise_moments()")

    def functional(self, x: Tensor, training: bool = True, *, generator: torch.Generator | None = None,
                   noise: Tensor | None = None, return_noise: bool = False) -> Tensor | tuple[Tensor, Tensor]:
        """The layer's functional twin with its parameters: ``f(x, …, training, *, generator, noise, return_noise)``.

        The droplab layers call their function of :mod:`droplab.nn.functional`. This default is the plain
        multiplicative law of a subclass that defines only :meth:`sample_noise` and :meth:`noise_moments`:
        ``x ⊙ ξ`` while sampling, ``x · E ξ`` at evaluation.
        """
        if type(self).sample_noise is NoiseLayer.sample_noise:
            raise NotImplementedError(f"{type(self).__name__} must define functional() or sample_noise()")
        if not training and noise is None:
            noise = torch.as_tensor(self.noise_moments()[0], dtype=x.dtype, device=x.device)
        elif noise is None:
            previous, self.generator = self.generator, generator
            try:
                noise = self.sample_noise(x)
            finally:
                self.generator = previous
        return (x * noise, noise) if return_noise else x * noise

    def kl_divergence(self) -> Tensor:
        """The layer's KL term of the loss for the last forward pass (nats; a batch mean where it is per
        example), what :func:`droplab.losses.information_bottleneck` sums. Only where :attr:`has_kl`."""
        raise NotImplementedError(f"{type(self).__name__} has no KL term (has_kl is False)")

    def sample_noise(self, x: Tensor) -> Tensor:
        """Draw the noise the layer would apply to ``x`` (its functional twin's own draw)."""
        return self.functional(x, True, generator=self.generator, return_noise=True)[1]

    def _replayed(self) -> Tensor | None:
        if self._replay is None or isinstance(self._replay, Tensor):
            return self._replay
        if not self._replay:
            raise ValueError("masks replay is exhausted: the recording has fewer calls than the replay")
        return self._replay.pop(0)

    def call_twin(self, fn: Callable[..., Tensor | tuple[Tensor, Tensor]], x: Tensor) -> Tensor:
        """``fn(x, training, *, generator, noise, return_noise)`` in this layer's mode: deterministic unless
        sampling; the noise replayed if a replay is active and recorded if a recording is."""
        if not self.sampling:
            return fn(x, False)  # type: ignore[return-value]
        replay = self._replayed()
        if replay is not None:
            return self._replay_call(fn, x, replay)
        if self._record is None:
            return fn(x, True, generator=self.generator)  # type: ignore[return-value]
        out, noise = fn(x, True, generator=self.generator, return_noise=True)
        self._record.append(noise.detach())
        return out

    def _replay_call(self, fn: Callable[..., Tensor | tuple[Tensor, Tensor]], x: Tensor, noise: Tensor) -> Tensor:
        """``fn`` with a replayed noise, which must fit the input: a one-line error naming the layer if not."""
        where = f"replayed noise for layer {self._replay_name!r}"
        if not isinstance(noise, Tensor):
            raise TypeError(f"{where} must be a tensor, got {type(noise).__name__}")
        if self.elementwise:
            try:
                fits = torch.broadcast_shapes(tuple(noise.shape), tuple(x.shape)) == tuple(x.shape)
            except RuntimeError:
                fits = False
            if not fits:
                raise ValueError(f"{where} has shape {tuple(noise.shape)}, which does not broadcast to its input's "
                                 f"shape {tuple(x.shape)}")
        try:
            out = fn(x, True, generator=self.generator, noise=noise)
        except RuntimeError as e:
            raise ValueError(f"{where} of shape {tuple(noise.shape)} does not fit its input of shape "
                             f"{tuple(x.shape)}: {str(e).splitlines()[0]}") from None
        if self._record is not None:
            self._record.append(noise.detach())
        return out  # type: ignore[return-value]

    def forward(self, x: Tensor) -> Tensor:
        return self.call_twin(self.functional, x)


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
