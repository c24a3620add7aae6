"""Functional twins of the droplab noise layers: stateless, validating, vectorized.

Every function takes the input, the law's parameters, ``training`` and a ``generator``; with
``return_noise=True`` it also returns the multiplicative noise it applied, so the caller can
replay it (:func:`droplab.nn.replay_masks`).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from droplab._checks import check_choice, check_probability
from droplab.nn.base import noise_shape

SCALES = ("inverted", "none")


def check_broadcast(name: str, param: Tensor, x: Tensor) -> None:
    """One-line error when a per-unit parameter does not broadcast against the input."""
    try:
        torch.broadcast_shapes(tuple(param.shape), tuple(x.shape))
    except RuntimeError:
        raise ValueError(
            f"{name} of shape {tuple(param.shape)} does not broadcast against an input of shape "
            f"{tuple(x.shape)}; give one value per unit of the trailing dims"
        ) from None


def bernoulli_moments(p: float | Tensor, scale: str = "inverted") -> tuple[float | Tensor, float | Tensor]:
    """Mean and variance of Bernoulli dropout noise ξ = m·c, m ~ Bernoulli(1−p).

    c = 1/(1−p) for ``scale="inverted"`` (E ξ = 1, Var ξ = p/(1−p)); c = 1 for ``scale="none"``
    (Baldi & Sadowski 2014 convention, E ξ = 1−p, Var ξ = p(1−p)).
    """
    keep = 1 - p
    c = 1 / keep if scale == "inverted" else 1.0
    return keep * c, p * keep * c * c


def bernoulli_noise(shape: Sequence[int], p: float | Tensor, *, scale: str = "inverted",
                    dtype: torch.dtype = torch.float32, device: torch.device | str | None = None,
                    generator: torch.Generator | None = None) -> Tensor:
    """Draw Bernoulli dropout noise of ``shape``: 0 with probability ``p``, else 1 (or 1/(1−p))."""
    u = torch.rand(tuple(shape), dtype=dtype, device=device, generator=generator)
    keep = 1 - torch.as_tensor(p, dtype=dtype, device=u.device)
    mask = (u < keep).to(dtype)
    return mask / keep if scale == "inverted" else mask


def bernoulli_dropout(x: Tensor, p: float | Tensor = 0.5, training: bool = True, *,
                      scale: str = "inverted", shared_dims: Sequence[int] = (),
                      generator: torch.Generator | None = None,
                      return_noise: bool = False) -> Tensor | tuple[Tensor, Tensor]:
    """Unit dropout: ``x ⊙ ξ`` with ξ = m·c, m_i ~ Bernoulli(1 − p_i) (Baldi & Sadowski 2014, eq. 1).

    ``p`` is the **drop** probability (a float or per-unit tensor broadcastable to ``x``); the
    papers' keep probability is ``1 − p``. At evaluation the output is ``x · E[ξ]`` (identity for
    ``scale="inverted"``, ``x·(1−p)`` for ``scale="none"``); both scalings share the expectation.

    >>> g = torch.Generator().manual_seed(0)
    >>> bernoulli_dropout(torch.ones(2, 4), 0.5, generator=g)
    tensor([[2., 0., 2., 2.],
            [2., 0., 2., 0.]])
    """
    check_probability("p", p)
    check_choice("scale", scale, SCALES)
    if isinstance(p, Tensor):
        check_broadcast("p", p, x)
    if not training:
        mean, _ = bernoulli_moments(p, scale)
        out = x * mean
        return (out, torch.as_tensor(mean)) if return_noise else out
    noise = bernoulli_noise(noise_shape(x, shared_dims), p, scale=scale, dtype=x.dtype,
                            device=x.device, generator=generator)
    out = x * noise
    return (out, noise) if return_noise else out
