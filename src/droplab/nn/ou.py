"""Ornstein–Uhlenbeck dropout: Gaussian noise correlated across training steps (Shalova, Peletier & Schlichting).

The state η is a buffer, so it travels with ``state_dict``; sampling mutates it, so the layer is
not a pure function: ``torch.func`` transforms need evaluation mode or a replayed noise, and
``torch.compile`` is not tested for it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor

from droplab._checks import check_positive
from droplab.nn import functional as F
from droplab.nn import laws
from droplab.nn.base import NoiseLayer


class OUDropout(NoiseLayer):
    """``y = x ⊙ (1 + η_k)`` with η following a stationary OU process over successive sampling calls.

    .. math:: \\eta_{k+1} = e^{-1/\\tau}\\eta_k + \\sigma\\sqrt{1 - e^{-2/\\tau}}\\;\\xi_k,\\quad \\xi_k \\sim N(0,1)

    τ = ``correlation_steps`` (SPS's "Ornstein–Uhlenbeck dropout"); the marginal is N(0, σ²), so
    :meth:`noise_moments` is (1, σ²) as for :class:`~droplab.nn.GaussianDropout`, and the lag-k
    autocorrelation is e^{−k/τ}; τ = 0 recovers independent Gaussian dropout. The first call (and
    the first after :meth:`reset`) draws from the stationary law. η has the noise shape: one value
    per unit, shared by the batch (``shared_dims=(0,)``, the default). Evaluation is the identity
    and leaves η alone; a replayed noise (:func:`droplab.nn.replay_masks`) does not advance it.

    >>> layer = OUDropout(0.1, 10.0, generator=torch.Generator().manual_seed(0))
    >>> _ = layer(torch.ones(5, 3)); layer.eta.shape
    torch.Size([1, 3])
    """

    def __init__(self, sigma: float = 0.5, correlation_steps: float = 1.0, *, shared_dims: Sequence[int] = (0,),
                 generator: torch.Generator | None = None) -> None:
        super().__init__(generator)
        check_positive("sigma", sigma, allow_zero=True)
        check_positive("correlation_steps", correlation_steps, allow_zero=True)
        self.sigma, self.correlation_steps = float(sigma), float(correlation_steps)
        self.shared_dims = tuple(shared_dims)
        self.register_buffer("eta", torch.empty(0))

    @property
    def rho(self) -> float:
        """Per-step autocorrelation e^{−1/τ}."""
        return laws.ou_rho(self.correlation_steps)

    def reset(self) -> None:
        """Forget η: the next sampling call draws from the stationary law N(0, σ²)."""
        self.eta = torch.empty(0, dtype=self.eta.dtype, device=self.eta.device)

    def noise_moments(self) -> tuple[float | Tensor, float | Tensor]:
        return 1.0, self.sigma * self.sigma

    def functional(self, x: Tensor, training: bool = True, **kwargs: Any) -> Tensor | tuple[Tensor, Tensor]:
        """One OU step from the layer's state η (which :meth:`forward` advances; this call does not)."""
        return F.ou_dropout(x, self.eta if self.eta.numel() else None, self.sigma, self.correlation_steps, training,
                            shared_dims=self.shared_dims, **kwargs)

    def forward(self, x: Tensor) -> Tensor:
        if not self.sampling:
            return self.functional(x, False)  # type: ignore[return-value]
        replay = self._replayed()
        out, noise = self.functional(x, True, generator=self.generator, noise=replay, return_noise=True)
        if replay is None:
            self.eta = (noise - 1).detach()  # the next state; a replayed noise does not advance it
        if self._record is not None:
            self._record.append(noise.detach())
        return out

    def _load_from_state_dict(self, state_dict: Mapping[str, Any], prefix: str, *args: Any, **kwargs: Any) -> None:
        saved = state_dict.get(prefix + "eta")
        if isinstance(saved, Tensor) and saved.shape != self.eta.shape:
            self.eta = torch.empty_like(saved, device=self.eta.device)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def extra_repr(self) -> str:
        return f"sigma={self.sigma}, correlation_steps={self.correlation_steps}" + (
            f", shared_dims={self.shared_dims}" if self.shared_dims != (0,) else "")
