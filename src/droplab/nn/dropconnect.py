"""DropConnect: dropout on connections (Baldi & Sadowski 2014, eqs. 14, 18–20, 23, 26).

Works with ``torch.compile``; under ``torch.func`` transforms use evaluation mode or a replayed
mask (:func:`droplab.nn.replay_masks`), since sampling is random per call.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor, nn

from droplab._checks import check_broadcast, check_choice, check_int, check_probability
from droplab.nn import functional as F
from droplab.nn import laws
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

    elementwise = False  # the noise is on the connections: (rows, out, in)

    def __init__(self, in_features: int, out_features: int, p: float | Tensor = 0.5, bias: bool = True,
                 per_example: bool = True, *, scale: str = "inverted", chunk_elements: int = laws.CHUNK_ELEMENTS,
                 generator: torch.Generator | None = None) -> None:
        super().__init__(generator)
        check_int("in_features", in_features, minimum=1)
        check_int("out_features", out_features, minimum=1)
        check_int("chunk_elements", chunk_elements, minimum=1)
        check_probability("p", p)
        check_choice("scale", scale, laws.SCALES)
        self.in_features, self.out_features = in_features, out_features
        self.weight = nn.Parameter(torch.empty(out_features, in_features))
        self.bias = nn.Parameter(torch.empty(out_features)) if bias else None
        if isinstance(p, Tensor):
            check_broadcast("p", p, self.weight)
        self.set_law_parameter("p", p)
        self.scale, self._per_example, self.chunk_elements = scale, per_example, chunk_elements
        self.reset_parameters()

    @property
    def per_example(self) -> bool:
        """Whether every row of the input gets its own connection mask (else one (out, in) mask per call)."""
        return self._per_example

    def reset_parameters(self) -> None:
        """``torch.nn.Linear``'s initialization."""
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            bound = 1 / math.sqrt(self.in_features)
            nn.init.uniform_(self.bias, -bound, bound)

    def noise_moments(self) -> tuple[float | Tensor, float | Tensor]:
        return laws.bernoulli_moments(self.p, self.scale)

    def functional(self, x: Tensor, training: bool = True, **kwargs: Any) -> Tensor | tuple[Tensor, Tensor]:
        return F.dropconnect_linear(x, self.weight, self.bias, self.p, training, scale=self.scale,
                                    per_example=self.per_example, chunk_elements=self.chunk_elements, **kwargs)

    def extra_repr(self) -> str:
        p = f"tensor{tuple(self.p.shape)}" if isinstance(self.p, Tensor) else f"{self.p}"
        return (f"in_features={self.in_features}, out_features={self.out_features}, p={p}, "
                f"bias={self.bias is not None}, per_example={self.per_example}, scale={self.scale!r}")
