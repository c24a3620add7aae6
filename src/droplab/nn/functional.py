"""Functional twins of the droplab noise layers: stateless, validating, vectorized.

One contract for every function::

    f(x, <law parameters>, training=True, *, generator=None, noise=None, return_noise=False)

returns ``out``, or ``(out, noise)`` with ``return_noise=True``. ``noise`` replays a given noise
instead of drawing (what :func:`droplab.nn.replay_masks` hands the layers); the noise returned is
the one applied, in the variable the layer records (the multiplicative noise, except where a
reparametrization variable keeps gradients exact: the standard-normal z of Information and
variational dropout, the pre-activation ζ of :func:`variational_linear`, the keep mask of
:func:`dropin`, the spikes Δ, the backward factor). ``training=False`` gives the deterministic
expectation (the ensemble layer); its returned noise is the mean multiplier. The input must be a
floating-point tensor (as for ``torch.nn.functional.dropout``); NaN propagates as NaN. Each
:class:`droplab.nn.NoiseLayer`'s ``forward`` is one call of its function here; the laws they draw
from are in :mod:`droplab.nn.laws`.

Transforms: every function is traceable by ``torch.compile`` (tested with ``fullgraph=True``
for Bernoulli and Gaussian dropout). Under ``torch.func`` transforms (``grad``, ``vmap``,
``jacrev``) the deterministic path (``training=False``) and any function given its noise work;
fresh sampling inside ``vmap`` needs ``randomness="different"`` or ``"same"``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor

from droplab._checks import (
    check_activities,
    check_broadcast,
    check_choice,
    check_floating,
    check_generator,
    check_positive,
    check_probability,
)
from droplab.nn._random import rng_key
from droplab.nn.base import noise_shape
from droplab.nn.laws import (
    CHUNK_ELEMENTS,
    SCALES,
    Backpercolate,
    backpercolation_factor,
    bernoulli_moments,
    bernoulli_noise,
    derivative_of,
    device_generator,
    gaussian_noise,
    gaussian_sigma,
    lognormal_moments,
    lognormal_noise,
    masked_linear,
    ou_update,
)

Out = Tensor | tuple[Tensor, Tensor]


def _check(x: Tensor, generator: torch.Generator | None) -> None:
    check_floating("input", x)
    check_generator("generator", generator)


def _result(out: Tensor, noise: Tensor | float, return_noise: bool) -> Out:
    return (out, torch.as_tensor(noise)) if return_noise else out


def _flatten_features(x: Tensor, in_features: int) -> Tensor:
    if x.dim() == 0 or x.shape[-1] != in_features:
        raise ValueError(f"input must have {in_features} features in its last dim, got shape {tuple(x.shape)}")
    return x.reshape(-1, in_features)


def bernoulli_dropout(x: Tensor, p: float | Tensor = 0.5, training: bool = True, *, scale: str = "inverted",
                      shared_dims: Sequence[int] = (), generator: torch.Generator | None = None,
                      noise: Tensor | None = None, return_noise: bool = False) -> Out:
    """Unit dropout: ``x ⊙ ξ`` with ξ = m·c, m_i ~ Bernoulli(1 − p_i) (Baldi & Sadowski 2014, eq. 1).

    ``p`` is the **drop** probability (a float or per-unit tensor broadcastable to ``x``); the
    papers' keep probability is ``1 − p``. At evaluation the output is ``x · E[ξ]`` (identity for
    ``scale="inverted"``, ``x·(1−p)`` for ``scale="none"``); both scalings share the expectation.

    >>> g = torch.Generator().manual_seed(0)
    >>> bernoulli_dropout(torch.ones(2, 4), 0.5, generator=g)
    tensor([[2., 0., 2., 0.],
            [2., 2., 2., 2.]])
    """
    _check(x, generator)
    if isinstance(p, Tensor):
        check_broadcast("p", p, x)
    check_probability("p", p)
    check_choice("scale", scale, SCALES)
    if not training and noise is None:
        mean, _ = bernoulli_moments(p, scale)
        return _result(x * mean, mean, return_noise)
    if noise is None:
        noise = bernoulli_noise(noise_shape(x, shared_dims), p, scale=scale, dtype=x.dtype, device=x.device,
                                generator=generator)
    return _result(x * noise, noise, return_noise)


# ----------------------------------------------------------------------------------------------
# DropConnect (Baldi & Sadowski 2014, eqs. 14, 18–20, 23, 26)


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


def dropin(x: Tensor, p: float | Tensor = 0.5, training: bool = True, *, shared_dims: Sequence[int] = (),
           generator: torch.Generator | None = None, noise: Tensor | None = None, return_noise: bool = False) -> Out:
    """Dropin: each unit is set to **1** with probability ``p`` (Baldi & Sadowski 2014, §11.6).

    ``y = m ⊙ x + (1 − m)`` with the keep mask m ~ Bernoulli(1 − p) (no rescaling). The noise
    is m; evaluation gives the expectation ``(1 − p)·x + p`` (m replaced by its mean 1 − p). B&S
    note it maximizes the variances ``p(1 − p)(x − 1)²`` instead of shrinking them, and does not
    train well.

    >>> dropin(torch.zeros(2, 3), 0.5, training=False)
    tensor([[0.5000, 0.5000, 0.5000],
            [0.5000, 0.5000, 0.5000]])
    """
    _check(x, generator)
    if isinstance(p, Tensor):
        check_broadcast("p", p, x)
    check_probability("p", p)
    if not training and noise is None:
        noise = 1 - torch.as_tensor(p, dtype=x.dtype, device=x.device)
    elif noise is None:
        noise = bernoulli_noise(noise_shape(x, shared_dims), p, scale="none", dtype=x.dtype, device=x.device,
                                generator=generator)
    return _result(noise * x + (1 - noise), noise, return_noise)


# ----------------------------------------------------------------------------------------------
# Gaussian, log-normal and Ornstein–Uhlenbeck multiplicative noise (Srivastava et al. 2014; SPS; A&S 2017)


def gaussian_dropout(x: Tensor, p: float | Tensor | None = None, sigma: float | Tensor | None = None,
                     training: bool = True, *, shared_dims: Sequence[int] = (),
                     generator: torch.Generator | None = None, noise: Tensor | None = None,
                     return_noise: bool = False) -> Out:
    """Gaussian dropout ``x ⊙ ξ``, ξ ~ N(1, σ²) (Srivastava et al. 2014 §10; Shalova, Peletier & Schlichting).

    Give ``sigma`` or the drop probability ``p`` (then σ² = p/(1 − p), the variance of inverted
    Bernoulli dropout). SPS write the filter as ``1 + η`` with η ~ N(0, σ²). Evaluation is the identity.

    >>> gaussian_dropout(torch.ones(2), p=0.5, training=False)
    tensor([1., 1.])
    """
    _check(x, generator)
    s = gaussian_sigma(p, sigma)
    if isinstance(s, Tensor):
        check_broadcast("sigma" if sigma is not None else "p", s, x)
    if not training and noise is None:
        return _result(x, 1.0, return_noise)
    if noise is None:
        noise = gaussian_noise(noise_shape(x, shared_dims), s, dtype=x.dtype, device=x.device, generator=generator)
    return _result(x * noise, noise, return_noise)


def lognormal_dropout(x: Tensor, alpha: float | Tensor, training: bool = True, *,
                      shared_dims: Sequence[int] = (), generator: torch.Generator | None = None,
                      noise: Tensor | None = None, return_noise: bool = False) -> Out:
    """Constant log-normal noise ``x ⊙ ε``, ε ~ logN(0, α²) (Achille & Soatto 2017, §4 and Fig. 3 "Log-normal").

    The noise is not mean-one (E ε = e^{α²/2}, as in the paper's and authors' ε = exp(α z));
    evaluation multiplies by that mean.

    >>> lognormal_dropout(torch.ones(1), 0.0)
    tensor([1.])
    """
    _check(x, generator)
    if isinstance(alpha, Tensor):
        check_broadcast("alpha", alpha, x)
    check_positive("alpha", alpha, allow_zero=True)
    if not training and noise is None:
        mean, _ = lognormal_moments(alpha)
        return _result(x * mean, mean, return_noise)
    if noise is None:
        noise = lognormal_noise(noise_shape(x, shared_dims), alpha, dtype=x.dtype, device=x.device,
                                generator=generator)
    return _result(x * noise, noise, return_noise)


def ou_dropout(x: Tensor, eta: Tensor | None, sigma: float, correlation_steps: float, training: bool = True, *,
               shared_dims: Sequence[int] = (0,), generator: torch.Generator | None = None,
               noise: Tensor | None = None, return_noise: bool = False) -> Out:
    """``x ⊙ (1 + η_{k+1})`` with η advanced one OU step from the state ``eta`` (SPS, "Contributions").

    The state ``eta`` (None: draw from the stationary N(0, σ²)) has the noise shape (``shared_dims``
    of ``x`` set to 1; default one η per unit shared by the batch). The noise is ``1 + η_{k+1}``: the
    caller keeps ``noise − 1`` as the next state. Evaluation is the identity.

    >>> out, xi = ou_dropout(torch.ones(4, 3), None, 0.1, 5.0, generator=torch.Generator().manual_seed(0),
    ...                      return_noise=True)
    >>> xi.shape
    torch.Size([1, 3])
    """
    _check(x, generator)
    check_positive("sigma", sigma, allow_zero=True)
    check_positive("correlation_steps", correlation_steps, allow_zero=True)
    if not training and noise is None:
        return _result(x, 1.0, return_noise)
    if noise is None:
        shape = noise_shape(x, shared_dims)
        if eta is not None and tuple(eta.shape) != shape:
            raise ValueError(f"OU state eta of shape {tuple(eta.shape)} does not match the noise shape {shape}; "
                             "reset the state (OUDropout.reset()) or share the noise along the batch")
        noise = 1 + ou_update(None if eta is None else eta.to(x.dtype), shape, sigma, correlation_steps,
                              dtype=x.dtype, device=x.device, generator=generator)
    return _result(x * noise, noise, return_noise)


# ----------------------------------------------------------------------------------------------
# Information Dropout (Achille & Soatto 2017, §4) and variational dropout (Kingma et al. 2015)


def information_dropout(x: Tensor, alpha: Tensor, training: bool = True, *,
                        generator: torch.Generator | None = None, noise: Tensor | None = None,
                        return_noise: bool = False) -> Out:
    """``z = ε ⊙ f(x)``, ε = exp(α(x)·n), n ~ N(0, 1), given α(x) (Achille & Soatto 2017, §4).

    ``alpha`` has the shape of ``x`` = f(x) (or broadcasts to it); the noise is the standard normal
    n (reparametrization: a replayed n reproduces the gradient through α). Evaluation:
    ``z = e^{α²/2} f(x)``. The KL term is :func:`droplab.nn.laws.information_kl`.
    """
    _check(x, generator)
    if not training and noise is None:
        mean = (alpha * alpha / 2).exp()
        return _result(x * mean, mean, return_noise)
    if noise is None:
        noise = torch.randn(torch.broadcast_shapes(alpha.shape, x.shape), dtype=x.dtype, device=x.device,
                            generator=device_generator(generator, x.device))
    return _result(x * (alpha * noise).exp(), noise, return_noise)


def variational_dropout(x: Tensor, log_alpha: Tensor, training: bool = True, *,
                        generator: torch.Generator | None = None, noise: Tensor | None = None,
                        return_noise: bool = False) -> Out:
    """Gaussian dropout ``x ⊙ ξ``, ξ = 1 + √α·z, z ~ N(0, 1), learned α = exp(log_alpha) per unit (Kingma et al. 2015).

    A fresh ξ per example and unit: on the units, this *is* the local reparametrization of
    the weight noise of the next linear layer (Kingma et al. 2015, "Variational (A)").
    ``log_alpha`` broadcasts against ``x``; the noise is z. Evaluation is the identity.
    """
    _check(x, generator)
    check_broadcast("log_alpha", log_alpha, x)
    if not training and noise is None:
        return _result(x, 1.0, return_noise)
    if noise is None:
        noise = torch.randn(x.shape, dtype=x.dtype, device=x.device, generator=device_generator(generator, x.device))
    return _result(x * (1 + (0.5 * log_alpha).exp() * noise), noise, return_noise)


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


def stochastic_spiking(x: Tensor, r: float = 1.0, training: bool = True, *, generator: torch.Generator | None = None,
                       noise: Tensor | None = None, return_noise: bool = False) -> Out:
    """Global spiking: a unit of activity O ∈ [0, 1] emits ``r`` with probability O (Baldi & Sadowski 2014, §10.1).

    Output ``r·Δ``, Δ ~ Bernoulli(O): unit dropout with keep probability O and scale r. Its
    expectation ``r·O`` is the evaluation output; the gradient is that of the expectation
    (straight-through: ∂(rΔ)/∂O := r). The noise is the spike pattern Δ. NaN in O gives NaN.

    >>> stochastic_spiking(torch.tensor([0.0, 1.0]), 2.0)
    tensor([0., 2.])
    """
    _check(x, generator)
    check_positive("r", r)
    check_activities("activity", x.detach())
    mean = r * x
    if not training and noise is None:
        return _result(mean, x, return_noise)
    if noise is None:
        u = torch.rand(x.shape, dtype=x.dtype, device=x.device, generator=device_generator(generator, x.device))
        noise = (u < x).to(x.dtype)
    out = mean + (r * noise - mean).detach()
    return _result(torch.where(torch.isnan(x), x, out), noise, return_noise)


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


def backpercolation(s: Tensor, activation: Callable[[Tensor], Tensor] = torch.sigmoid,
                    derivative: Callable[[Tensor], Tensor] | None = None, keep: float | None = None,
                    training: bool = True, *, generator: torch.Generator | None = None,
                    noise: Tensor | None = None, return_noise: bool = False) -> Out:
    """``activation(s)`` whose backward multiplies the gradient by a Bernoulli sample, not by f'(s) (§10.2).

    The noise is the backward factor of :func:`droplab.nn.laws.backpercolation_factor`; the mean
    backward over many passes is ordinary backprop (adaptive mode). ``derivative`` defaults to
    autograd's f'. ``training=False`` is backprop.

    >>> s = torch.zeros(3, requires_grad=True)
    >>> backpercolation(s, training=False).sum().backward(); s.grad
    tensor([0.2500, 0.2500, 0.2500])
    """
    _check(s, generator)
    if keep is not None:
        check_probability("keep", keep, low_open=True, high_open=False)
    value = activation(s)
    if not training and noise is None:
        return _result(value, 1.0, return_noise)
    if noise is None:
        d = derivative(s.detach()) if derivative is not None else derivative_of(activation, s)
        noise = backpercolation_factor(d.detach(), keep, generator=generator)
    return _result(Backpercolate.apply(s, value, noise), noise, return_noise)
