"""DropConnect: dropout on connections (Baldi & Sadowski 2014, eqs. 14, 18–20, 23, 26).

Works with ``torch.compile``; under ``torch.func`` transforms use evaluation mode or a replayed
mask (:func:`droplab.nn.replay_masks`), since sampling is random per call.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from droplab._checks import check_choice, check_int, check_probability
from droplab.nn import functional as F
from droplab.nn.base import NoiseLayer


class DropConnectLinear(NoiseLayer):
    """A linear layer whose connections are dropped: ``S_i = Σ_j δ_ij w_ij I_j + b_i`` (B&S eq. 14).

    δ_ij ~ Bernoulli(1 − p) independently per connection and, with ``per_example=True``, per
    example (mask batch × out × in, drawn in chunks of at most ``chunk_elements`` entries so
    memory stays bounded); ``per_example=False`` draws one (out, in) mask per forward call. ``p``
    is the **drop** probability (float or (out, in) tensor; B&S's p_ij is ``1 − p``). Scaling
    as :class:`~droplab.nn.BernoulliDropout`. Expectation (evaluation): the linear layer with
    weights ``w·E[ξ]`` (eqs. 18, 26, and through depth eq. 23); two outputs are uncorrelated
    given the input (eq. 20), whereas unit dropout correlates them (eq. 17).

    :meth:`noise_moments` are those of the multiplicative **weight** noise ξ = δ·c. Recording or
    replaying materializes the whole (batch, out, in) noise; plain sampling never does.
    The bias is not dropped.

    >>> layer = DropConnectLinear(4, 2, 0.5, generator=torch.Generator().manual_seed(0))
    >>> layer(torch.ones(3, 4)).shape, layer.noise_moments()
    (torch.Size([3, 2]), (1.0, 1.0))
    """

    def __init__(self, in_features: int, out_features: int, p: float | Tensor = 0.5, bias: bool = True,
                 per_example: bool = True, *, scale: str = "inverted", chunk_elements: int = F.CHUNK_ELEMENTS,
                 generator: torch.Generator | None = None) -> None:
        super().__init__(generator)
        check_int("in_features", in_features, minimum=1)
        check_int("out_features", out_features, minimum=1)
        check_int("chunk_elements", chunk_elements, minimum=1)
        check_probability("p", p)
        check_choice("scale", scale, F.SCALES)
        self.in_features, self.out_features = in_features, out_features
        self.weight = nn.Parameter(torch.empty(out_features, in_features))
        self.bias = nn.Parameter(torch.empty(out_features)) if bias else None
        if isinstance(p, Tensor):
            F.check_broadcast("p", p, self.weight)
            self.register_buffer("p", p.detach().clone())
        else:
            self.p = float(p)
        self.scale, self.per_example, self.chunk_elements = scale, per_example, chunk_elements
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """``torch.nn.Linear``'s initialization."""
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            bound = 1 / math.sqrt(self.in_features)
            nn.init.uniform_(self.bias, -bound, bound)

    def noise_moments(self) -> tuple[float | Tensor, float | Tensor]:
        return F.bernoulli_moments(self.p, self.scale)

    def sample_noise(self, x: Tensor) -> Tensor:
        """The whole weight noise: (rows of x, out, in) per example, else (out, in)."""
        rows = x.reshape(-1, x.shape[-1]).shape[0] if x.dim() else 1
        shape = (rows, *self.weight.shape) if self.per_example else tuple(self.weight.shape)
        return F.bernoulli_noise(shape, self.p, scale=self.scale, dtype=x.dtype, device=x.device,
                                 generator=self.generator)

    def forward(self, x: Tensor) -> Tensor:
        if not self.sampling:
            return F.dropconnect_linear(x, self.weight, self.bias, self.p, training=False, scale=self.scale)
        if self._record is None and self._replay is None:
            return F.dropconnect_linear(x, self.weight, self.bias, self.p, scale=self.scale,
                                        per_example=self.per_example, chunk_elements=self.chunk_elements,
                                        generator=self.generator)
        x2 = x.reshape(-1, self.in_features) if x.dim() and x.shape[-1] == self.in_features else None
        if x2 is None:
            raise ValueError(f"input must have {self.in_features} features in its last dim, got {tuple(x.shape)}")
        noise = self.take_noise(x)
        y = F.masked_linear(x2, self.weight, self.bias, noise=noise)
        return y.reshape(*x.shape[:-1], self.out_features)

    def extra_repr(self) -> str:
        p = f"tensor{tuple(self.p.shape)}" if isinstance(self.p, Tensor) else f"{self.p}"
        return (f"in_features={self.in_features}, out_features={self.out_features}, p={p}, "
                f"bias={self.bias is not None}, per_example={self.per_example}, scale={self.scale!r}")
