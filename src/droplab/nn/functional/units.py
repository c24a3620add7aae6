"""Unit noise: a multiplier (or spike, or backward factor) per unit of the input, one function per law."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor

from droplab._checks import (
    check_activities,
    check_broadcast,
    check_choice,
    check_positive,
    check_probability,
)
from droplab.nn.base import noise_shape
from droplab.nn.functional._contract import Out, _check, _result
from droplab.nn.laws import (
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
    ou_update,
)


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
