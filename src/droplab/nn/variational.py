"""Variational dropout (Kingma, Salimans & Welling 2015), the baseline Achille & Soatto compare to.

Two layers, one law. :class:`VariationalDropout` multiplies units by ξ ~ N(1, α) with a learned
α per unit, drawn fresh per example and unit — on the units this *is* the local
reparametrization of Gaussian weight noise on the next layer's rows ("Variational (A)").
:class:`VariationalDropoutLinear` puts the noise on the weights, w_ij ~ N(θ_ij, α_j θ_ij²), and
samples the pre-activations directly by the local reparametrization trick. Both cap α at
``max_alpha`` (default 1, as Kingma et al.; their KL fit is valid for α ≤ 1) and expose ``kl``
(the cubic approximation, :func:`droplab.nn.laws.variational_kl`). Both work with
``torch.compile`` and, in evaluation mode or with replayed noise, ``torch.func`` (not tested).
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor, nn

from droplab._checks import check_int, check_positive
from droplab.nn import functional as F
from droplab.nn import laws
from droplab.nn.base import NoiseLayer


def _check_alphas(init_alpha: float, max_alpha: float) -> None:
    check_positive("max_alpha", max_alpha)
    if max_alpha > 1:  # Kingma's cubic fit of the KL is far off above α = 1 (−18.6 nats at α = 4, exact −0.31)
        raise ValueError(f"max_alpha must be <= 1 (Kingma et al.'s KL approximation holds for α ≤ 1), got {max_alpha}")
    check_positive("init_alpha", init_alpha)
    if init_alpha > max_alpha:
        raise ValueError(f"init_alpha must be <= max_alpha={max_alpha}, got {init_alpha}")


class VariationalDropout(NoiseLayer):
    """``y = x ⊙ ξ``, ξ ~ N(1, α_u) with a learned α per unit u (Kingma et al. 2015).

    Units are the last dim of the input with ``conv=False``, dim 1 with ``conv=True`` (α per
    channel, noise per position); the default ``conv=None`` takes dim 1, which is both the
    features of an (N, features) input and the channels of an (N, C, *spatial) one. ``kl`` (a
    scalar tensor with graph) is Σ_u KL(α_u), one term per unit: a unit
    layer does not know its fan-out (Kingma's weight-level KL multiplies each term by it; use
    :class:`VariationalDropoutLinear` for that). :meth:`noise_moments` is (1, α) per unit. The
    recorded and replayed noise is the standard-normal z of ξ = 1 + sqrt(α)·z, so a replayed pass
    reproduces the gradient with respect to α too.
    Evaluation is the identity.

    >>> VariationalDropout(3, init_alpha=0.25).noise_moments()[1]
    tensor([0.2500, 0.2500, 0.2500])
    """

    has_kl = True

    def __init__(self, features: int, *, init_alpha: float = 0.25, max_alpha: float = 1.0,
                 conv: bool | None = None, generator: torch.Generator | None = None) -> None:
        super().__init__(generator)
        check_int("features", features, minimum=1)
        _check_alphas(init_alpha, max_alpha)
        self.features, self.max_alpha, self.conv = features, float(max_alpha), conv
        self.log_alpha = nn.Parameter(torch.full((features,), math.log(init_alpha)))

    def clamped_log_alpha(self) -> Tensor:
        return self.log_alpha.clamp(max=math.log(self.max_alpha))

    def _unit_shape(self, x: Tensor) -> Tensor:
        channels = self.conv if self.conv is not None else x.dim() >= 2
        dim = 1 if channels else -1
        if x.dim() < (2 if channels else 1) or x.shape[dim] != self.features:
            raise ValueError(f"input must have features={self.features} in dim {dim}, got shape {tuple(x.shape)}")
        la = self.clamped_log_alpha()
        return la.reshape(-1, *([1] * (x.dim() - 2))) if channels else la

    @property
    def kl(self) -> Tensor:
        return laws.variational_kl(self.clamped_log_alpha()).sum()

    def noise_moments(self) -> tuple[float | Tensor, float | Tensor]:
        return 1.0, self.clamped_log_alpha().detach().exp()

    def functional(self, x: Tensor, training: bool = True, **kwargs: Any) -> Tensor | tuple[Tensor, Tensor]:
        return F.variational_dropout(x, self._unit_shape(x), training, **kwargs)

    def kl_divergence(self) -> Tensor:
        return self.kl

    def extra_repr(self) -> str:
        return f"features={self.features}, max_alpha={self.max_alpha}" + (
            f", conv={self.conv}" if self.conv is not None else "")


class VariationalDropoutLinear(NoiseLayer):
    """Linear layer with Gaussian weight noise w_ij ~ N(θ_ij, α_j θ_ij²), α per input unit (Kingma et al. 2015).

    Sampling uses the local reparametrization trick: b_n = x_n θᵀ + b + sqrt((x_n²)(α θ²)ᵀ) ⊙ ζ_n,
    ζ ~ N(0, I) of shape (batch, out) — the recorded/replayed noise is ζ. ``kl`` = Σ_ij KL(α_j) =
    ``out_features``·Σ_j KL(α_j). :meth:`noise_moments` is (1, α) of the multiplicative weight
    noise, per input unit. Evaluation is the mean linear map.

    >>> VariationalDropoutLinear(4, 2)(torch.ones(3, 4)).shape
    torch.Size([3, 2])
    """

    elementwise = False  # the noise is the pre-activation ζ: (rows, out)
    has_kl = True

    def __init__(self, in_features: int, out_features: int, bias: bool = True, *, init_alpha: float = 0.25,
                 max_alpha: float = 1.0, generator: torch.Generator | None = None) -> None:
        super().__init__(generator)
        check_int("in_features", in_features, minimum=1)
        check_int("out_features", out_features, minimum=1)
        _check_alphas(init_alpha, max_alpha)
        self.in_features, self.out_features, self.max_alpha = in_features, out_features, float(max_alpha)
        self.weight = nn.Parameter(torch.empty(out_features, in_features))
        self.bias = nn.Parameter(torch.empty(out_features)) if bias else None
        self.log_alpha = nn.Parameter(torch.full((in_features,), math.log(init_alpha)))
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            nn.init.uniform_(self.bias, -1 / math.sqrt(in_features), 1 / math.sqrt(in_features))

    def clamped_log_alpha(self) -> Tensor:
        return self.log_alpha.clamp(max=math.log(self.max_alpha))

    @property
    def kl(self) -> Tensor:
        return self.out_features * laws.variational_kl(self.clamped_log_alpha()).sum()

    def noise_moments(self) -> tuple[float | Tensor, float | Tensor]:
        return 1.0, self.clamped_log_alpha().detach().exp()

    def functional(self, x: Tensor, training: bool = True, **kwargs: Any) -> Tensor | tuple[Tensor, Tensor]:
        return F.variational_linear(x, self.weight, self.bias, self.clamped_log_alpha(), training, **kwargs)

    def kl_divergence(self) -> Tensor:
        return self.kl

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"bias={self.bias is not None}, max_alpha={self.max_alpha}")
