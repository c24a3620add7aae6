"""Connection noise: layers that draw a noise per weight (DropConnect, variational and spiking linear maps)."""

from __future__ import annotations

import torch
from torch import Tensor

from droplab._checks import (
    check_activities,
    check_broadcast,
    check_choice,
    check_positive,
    check_probability,
)
from droplab.nn._random import rng_key
from droplab.nn.functional._contract import Out, _check, _flatten_features, _result
from droplab.nn.laws import (
    CHUNK_ELEMENTS,
    SCALES,
    bernoulli_moments,
    bernoulli_noise,
    device_generator,
    masked_linear,
)


def dropconnect_linear(x: Tensor, weight: Tensor, bias: Tensor | None = None, p: float | Tensor = 0.5,
                       training: bool = True, *, scale: str = "inverted", per_example: bool = True,
                       chunk_elements: int = CHUNK_ELEMENTS, generator: torch.Generator | None = None,
                       noise: Tensor | None = None, return_noise: bool = False) -> Out:
    """Dropout on connections: ``S_i = Σ_j δ_ij w_ij I_j`` (Baldi & Sadowski 2014, eq. 14).

    δ_ij ~ Bernoulli(1 − p_ij) independently per connection and, with ``per_example=True``, per
    row of ``x`` (mask batch × out × in, drawn ``chunk_elements`` entries at a time); with
    ``per_example=False`` one (out, in) mask serves the whole batch. ``p`` is the **drop**
    probability (float or (out, in) tensor); B&S's p_ij is ``1 − p``. Expectation: the linear
    layer with weights ``w_ij·E[ξ_ij]`` (eqs. 18, 26); variance eq. 19; and two output units are
    uncorrelated given the input (eq. 20), unlike unit dropout (eq. 17). ``return_noise=True``
    materializes and returns the whole multiplicative weight noise ξ (use for small batches).

    >>> g = torch.Generator().manual_seed(0)
    >>> dropconnect_linear(torch.ones(3, 4), torch.ones(2, 4), p=0.5, generator=g).shape
    torch.Size([3, 2])
    """
    _check(x, generator)
    if isinstance(p, Tensor):
        check_broadcast("p", p, weight)
    check_probability("p", p)
    check_choice("scale", scale, SCALES)
    shape = x.shape
    x2 = _flatten_features(x, weight.shape[1])
    if not training and noise is None:
        mean, _ = bernoulli_moments(p, scale)
        y = x2 @ (weight * mean).T + (0 if bias is None else bias)
        return _result(y.reshape(*shape[:-1], weight.shape[0]), mean, return_noise)

    # on CPU the chunks are slices of one keyed stream: the chunk size does not change the masks
    key = rng_key(generator) if x.device.type == "cpu" and noise is None else None

    def draw(lo: int, hi: int | None) -> Tensor:
        size = tuple(weight.shape) if hi is None else (hi - lo, *weight.shape)
        return bernoulli_noise(size, p, scale=scale, dtype=x.dtype, device=x.device, generator=generator, key=key,
                               offset=lo * weight.numel())

    if noise is None and (return_noise or not per_example):
        noise = draw(0, x2.shape[0] if per_example else None)
    if noise is not None:
        y = masked_linear(x2, weight, bias, noise=noise)
    else:
        y = masked_linear(x2, weight, bias, sample=draw, chunk_elements=chunk_elements)
    out = y.reshape(*shape[:-1], weight.shape[0])
    return (out, noise) if return_noise else out  # type: ignore[return-value]


# ----------------------------------------------------------------------------------------------
# Dropin (Baldi & Sadowski 2014, §11.6)


def variational_linear(x: Tensor, weight: Tensor, bias: Tensor | None, log_alpha: Tensor, training: bool = True, *,
                       generator: torch.Generator | None = None, noise: Tensor | None = None,
                       return_noise: bool = False) -> Out:
    """Linear layer with weight noise w_ij ~ N(θ_ij, α_j θ_ij²), by the local reparametrization trick.

    The pre-activation b = x W + noise is drawn directly: b_ni ~ N(Σ_j x_nj θ_ij, Σ_j α_j x_nj² θ_ij²)
    (Kingma et al. 2015, local reparametrization), α per input unit (``log_alpha`` of shape (in,)).
    The noise is the standard-normal ζ of b = mean + sd·ζ, (rows, out). Evaluation is the mean map.
    """
    _check(x, generator)
    shape = x.shape
    x2 = _flatten_features(x, weight.shape[1])
    mean = x2 @ weight.T
    if bias is not None:
        mean = mean + bias
    if not training and noise is None:
        return _result(mean.reshape(*shape[:-1], weight.shape[0]), 1.0, return_noise)
    var = (x2 * x2) @ (log_alpha.exp() * weight * weight).T
    if noise is None:
        noise = torch.randn(mean.shape, dtype=x.dtype, device=x.device, generator=device_generator(generator, x.device))
    out = mean + var.clamp_min(1e-16).sqrt() * noise.reshape(mean.shape)
    return _result(out.reshape(*shape[:-1], weight.shape[0]), noise, return_noise)


# ----------------------------------------------------------------------------------------------
# Stochastic spiking units (Baldi & Sadowski 2014, §10.1)


def spiking_linear(x: Tensor, weight: Tensor, bias: Tensor | None, r: float = 1.0, training: bool = True, *,
                   generator: torch.Generator | None = None, noise: Tensor | None = None,
                   chunk_elements: int = CHUNK_ELEMENTS, return_noise: bool = False) -> Out:
    """Connection spiking into a linear layer: ``S_i = Σ_j w_ij r Δ_ij + b_i``, Δ_ij ~ Bernoulli(O_j) (§10.1).

    One coin per connection and example (mask batch × out × in, drawn in chunks unless
    ``return_noise`` or ``noise`` asks for the whole). Expectation: ``W (r O) + b``; gradient that
    of the expectation (straight-through). NaN in O gives NaN in the outputs it feeds.
    """
    _check(x, generator)
    check_positive("r", r)
    check_activities("activity", x.detach())
    shape = x.shape
    o = _flatten_features(x, weight.shape[1])
    mean = (r * o) @ weight.T + (0 if bias is None else bias)
    if not training and noise is None:
        return _result(mean.reshape(*shape[:-1], weight.shape[0]), o, return_noise)
    ones = torch.ones_like(o)
    od = o.detach()

    def draw(lo: int, hi: int) -> Tensor:
        u = torch.rand((hi - lo, *weight.shape), dtype=x.dtype, device=x.device,
                       generator=device_generator(generator, x.device))
        return (u < od[lo:hi, None, :]).to(x.dtype)

    if noise is None and return_noise:
        noise = draw(0, o.shape[0])
    with torch.no_grad():
        if noise is not None:
            spikes = masked_linear(r * ones, weight, None, noise=noise)
        else:
            spikes = masked_linear(r * ones, weight, None, sample=draw, chunk_elements=chunk_elements)
    out = mean + (spikes + (0 if bias is None else bias) - mean).detach()
    nan_rows = torch.isnan(o).any(-1, keepdim=True)
    out = torch.where(nan_rows, torch.full_like(out, float("nan")), out).reshape(*shape[:-1], weight.shape[0])
    return (out, noise) if return_noise else out  # type: ignore[return-value]


# ----------------------------------------------------------------------------------------------
# Backpercolation (Baldi & Sadowski 2014, §10.2)
