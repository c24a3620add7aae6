"""Backpercolation (Baldi & Sadowski 2014, §10.2): dropout in the backward pass of an activation.

The backward is a custom ``torch.autograd.Function`` with ``setup_context`` and a generated vmap
rule, and the Bernoulli factor is drawn in the forward, so ``torch.func.grad``/``vmap`` work on a
replayed factor or in evaluation mode; ``torch.compile`` is not tested.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from droplab._checks import check_probability
from droplab.nn import functional as F
from droplab.nn import laws
from droplab.nn.base import NoiseLayer


class Backpercolation(NoiseLayer):
    """An elementwise activation f whose backward multiplies the gradient by a Bernoulli sample, not f'(s).

    Forward: f(s) unchanged. Backward while sampling (training or Monte Carlo): with ``keep=None``
    (adaptive) the factor is δ ~ Bernoulli(min(|f'(s)|, 1)) times ``sign(f')·max(|f'|, 1)``, so
    its expectation is f'(s) and the mean gradient over many passes is backprop's (B&S: "backpropagation
    corresponds to the ensemble average of many backpercolation passes"); with ``keep=q``, B&S's
    fixed-probability variant δ ~ Bernoulli(q) (biased unless f' = q). In evaluation mode the
    backward is ordinary backprop. ``derivative`` (f', elementwise) defaults to autograd's.
    The factor is drawn in the forward pass, so it records and replays like a dropout mask.

    :meth:`noise_moments` are the moments of the factor relative to f'(s) for the last forward:
    adaptive (1, (1 − q)/q), q = min(|f'|, 1); fixed (keep/f', keep(1 − keep)/f'²).
    """

    input_dependent = True  # δ ~ Bernoulli(f'(s)): the law is the input's derivative

    def __init__(self, activation: Callable[[Tensor], Tensor] = torch.sigmoid,
                 derivative: Callable[[Tensor], Tensor] | None = None, keep: float | None = None, *,
                 generator: torch.Generator | None = None) -> None:
        super().__init__(generator)
        if keep is not None:
            check_probability("keep", keep, low_open=True, high_open=False)
        if not callable(activation):
            raise ValueError(f"activation must be an elementwise callable, got {activation!r}")
        self.activation, self.derivative, self.keep = activation, derivative, keep
        self.last_derivative: Tensor | None = None

    def _derivative(self, s: Tensor) -> Tensor:
        d = self.derivative(s.detach()) if self.derivative is not None else laws.derivative_of(self.activation, s)
        self.last_derivative = d.detach()
        return self.last_derivative

    def noise_moments(self) -> tuple[float | Tensor, float | Tensor]:
        if self.last_derivative is None:
            raise RuntimeError("Backpercolation.noise_moments() depends on the input: run a forward pass first")
        d = self.last_derivative
        if self.keep is None:
            q = d.abs().clamp(max=1)
            return 1.0, (1 - q) / q
        return self.keep / d, self.keep * (1 - self.keep) / (d * d)

    def functional(self, x: Tensor, training: bool = True, **kwargs: Any) -> Tensor | tuple[Tensor, Tensor]:
        return F.backpercolation(x, self.activation, self._derivative, self.keep, training, **kwargs)

    def extra_repr(self) -> str:
        name = getattr(self.activation, "__name__", type(self.activation).__name__)
        return f"activation={name}" + (f", keep={self.keep}" if self.keep is not None else "")


def _sigmoid_derivative(s: Tensor) -> Tensor:
    o = torch.sigmoid(s)
    return o * (1 - o)


class BackpercolationSigmoid(Backpercolation):
    """The logistic unit σ(s) with backpercolation (B&S §10.2): backward factor δ ~ Bernoulli(σ'(s)).

    σ' = σ(1 − σ) ≤ 1/4 is itself a probability, B&S's reading of backprop as the dropout ensemble
    of the reverse linear network. ``keep`` gives the fixed-probability variant.

    >>> s = torch.zeros(4, requires_grad=True)
    >>> BackpercolationSigmoid().eval()(s).sum().backward(); s.grad
    tensor([0.2500, 0.2500, 0.2500, 0.2500])
    """

    def __init__(self, keep: float | None = None, *, generator: torch.Generator | None = None) -> None:
        super().__init__(torch.sigmoid, _sigmoid_derivative, keep, generator=generator)

