"""Functional twins of the droplab noise layers: stateless, validating, vectorized.

Every function takes the input, the law's parameters, ``training`` and a ``generator``; with
``return_noise=True`` it also returns the multiplicative noise it applied, so the caller can
replay it (:func:`droplab.nn.replay_masks`). ``training=False`` gives the deterministic
expectation (the ensemble layer). NaN in the input propagates as NaN.

Transforms: every function is traceable by ``torch.compile`` (tested with ``fullgraph=True``
for Bernoulli and Gaussian dropout). Under ``torch.func`` transforms (``grad``, ``vmap``,
``jacrev``) the deterministic path (``training=False``) and any function given its noise
(the layers under :func:`droplab.nn.replay_masks`) work; fresh sampling inside ``vmap`` needs
``randomness="different"`` or ``"same"``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor

from droplab._checks import (
    check_activities,
    check_choice,
    check_exactly_one,
    check_positive,
    check_probability,
)
from droplab.nn.base import noise_shape

SCALES = ("inverted", "none")
PRIORS = ("log-uniform", "log-normal")
CHUNK_ELEMENTS = 1 << 22  # largest per-example connection mask drawn at once (4M entries, 16 MiB in float32)
# Kingma, Salimans & Welling 2015 ("Variational dropout and the local reparameterization trick"): the
# cubic fit −KL(q_α ‖ log-uniform) ≈ const + ½ log α + c1 α + c2 α² + c3 α³, valid for α ≤ 1
KINGMA_C = (1.16145124, -1.50204118, 0.58629921)


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


def _flatten_features(x: Tensor, in_features: int) -> Tensor:
    if x.dim() == 0 or x.shape[-1] != in_features:
        raise ValueError(f"input must have {in_features} features in its last dim, got shape {tuple(x.shape)}")
    return x.reshape(-1, in_features)


# ----------------------------------------------------------------------------------------------
# DropConnect (Baldi & Sadowski 2014, eqs. 14, 18–20, 23, 26)


def masked_linear(values: Tensor, weight: Tensor, bias: Tensor | None, *,
                  noise: Tensor | None = None, sample: Callable[[int, int], Tensor] | None = None,
                  chunk_elements: int = CHUNK_ELEMENTS) -> Tensor:
    """``y_n = Σ_j (W ⊙ ξ_n)_ij v_nj + b_i`` with a connection noise ξ_n per row (or one for all rows).

    Either ``noise`` is given ((N, out, in) per row, or (out, in) shared), or ``sample(lo, hi)``
    draws the (hi − lo, out, in) noise of rows lo..hi; rows are then processed in chunks of at
    most ``chunk_elements`` mask entries, so memory stays bounded whatever the batch size.
    """
    n, (out_f, in_f) = values.shape[0], weight.shape
    if noise is not None:
        if noise.dim() == 2:
            y = values @ (weight * noise).T
        else:
            y = torch.einsum("noi,oi,ni->no", noise, weight, values)
    else:
        assert sample is not None
        step = max(1, chunk_elements // max(1, out_f * in_f))
        parts = [torch.einsum("noi,oi,ni->no", sample(lo, min(n, lo + step)), weight, values[lo:lo + step])
                 for lo in range(0, n, step)]
        y = torch.cat(parts) if parts else values.new_zeros((0, out_f))
    return y if bias is None else y + bias


def dropconnect_linear(x: Tensor, weight: Tensor, bias: Tensor | None = None, p: float | Tensor = 0.5,
                       training: bool = True, *, scale: str = "inverted", per_example: bool = True,
                       chunk_elements: int = CHUNK_ELEMENTS, generator: torch.Generator | None = None,
                       return_noise: bool = False) -> Tensor | tuple[Tensor, Tensor]:
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
    check_probability("p", p)
    check_choice("scale", scale, SCALES)
    if isinstance(p, Tensor):
        check_broadcast("p", p, weight)
    shape = x.shape
    x2 = _flatten_features(x, weight.shape[1])
    if not training:
        mean, _ = bernoulli_moments(p, scale)
        y = x2 @ (weight * mean).T + (0 if bias is None else bias)
        out = y.reshape(*shape[:-1], weight.shape[0])
        return (out, torch.as_tensor(mean)) if return_noise else out

    def draw(rows: int | None) -> Tensor:
        size = tuple(weight.shape) if rows is None else (rows, *weight.shape)
        return bernoulli_noise(size, p, scale=scale, dtype=x.dtype, device=x.device, generator=generator)

    if return_noise or not per_example:
        noise = draw(x2.shape[0] if per_example else None)
        y = masked_linear(x2, weight, bias, noise=noise)
    else:
        noise = None
        y = masked_linear(x2, weight, bias, sample=lambda lo, hi: draw(hi - lo), chunk_elements=chunk_elements)
    out = y.reshape(*shape[:-1], weight.shape[0])
    return (out, noise) if return_noise else out


# ----------------------------------------------------------------------------------------------
# Dropin (Baldi & Sadowski 2014, §11.6)


def dropin(x: Tensor, p: float | Tensor = 0.5, training: bool = True, *, shared_dims: Sequence[int] = (),
           generator: torch.Generator | None = None, return_noise: bool = False) -> Tensor | tuple[Tensor, Tensor]:
    """Dropin: each unit is set to **1** with probability ``p`` (Baldi & Sadowski 2014, §11.6).

    ``y = m ⊙ x + (1 − m)`` with the keep mask m ~ Bernoulli(1 − p) (no rescaling). The noise
    returned is m; evaluation gives the expectation ``(1 − p)·x + p``. B&S note it maximizes
    the variances ``p(1 − p)(x − 1)²`` instead of shrinking them, and does not train well.

    >>> dropin(torch.zeros(2, 3), 0.5, training=False)
    tensor([[0.5000, 0.5000, 0.5000],
            [0.5000, 0.5000, 0.5000]])
    """
    check_probability("p", p)
    if isinstance(p, Tensor):
        check_broadcast("p", p, x)
    if not training:
        keep = 1 - torch.as_tensor(p, dtype=x.dtype, device=x.device)
        out = keep * x + (1 - keep)
        return (out, keep) if return_noise else out
    m = bernoulli_noise(noise_shape(x, shared_dims), p, scale="none", dtype=x.dtype, device=x.device,
                        generator=generator)
    out = m * x + (1 - m)
    return (out, m) if return_noise else out


# ----------------------------------------------------------------------------------------------
# Gaussian and log-normal multiplicative noise (Srivastava et al. 2014; Shalova et al.; Achille & Soatto)


def gaussian_sigma(p: float | Tensor | None = None, sigma: float | Tensor | None = None) -> float | Tensor:
    """σ of Gaussian dropout from exactly one of ``p`` (σ² = p/(1 − p), Bernoulli's variance) or ``sigma``."""
    check_exactly_one(p=p, sigma=sigma)
    if sigma is not None:
        check_positive("sigma", sigma, allow_zero=True)
        return sigma
    check_probability("p", p)
    assert p is not None
    if isinstance(p, Tensor):
        return (p / (1 - p)).sqrt()
    return math.sqrt(p / (1 - p))


def gaussian_noise(shape: Sequence[int], sigma: float | Tensor, *, dtype: torch.dtype = torch.float32,
                   device: torch.device | str | None = None, generator: torch.Generator | None = None) -> Tensor:
    """ξ = 1 + σ·z, z ~ N(0, 1), of ``shape``."""
    z = torch.randn(tuple(shape), dtype=dtype, device=device, generator=generator)
    return 1 + sigma * z


def gaussian_dropout(x: Tensor, p: float | Tensor | None = None, sigma: float | Tensor | None = None,
                     training: bool = True, *, shared_dims: Sequence[int] = (),
                     generator: torch.Generator | None = None,
                     return_noise: bool = False) -> Tensor | tuple[Tensor, Tensor]:
    """Gaussian dropout ``x ⊙ ξ``, ξ ~ N(1, σ²) (Srivastava et al. 2014 §10; Shalova, Peletier & Schlichting).

    Give ``sigma`` or the drop probability ``p`` (then σ² = p/(1 − p), the variance of inverted
    Bernoulli dropout). SPS write the filter as ``1 + η`` with η ~ N(0, σ²). Evaluation is the identity.

    >>> gaussian_dropout(torch.ones(2), p=0.5, training=False)
    tensor([1., 1.])
    """
    s = gaussian_sigma(p, sigma)
    if isinstance(s, Tensor):
        check_broadcast("sigma" if sigma is not None else "p", s, x)
    if not training:
        return (x, torch.ones(())) if return_noise else x
    noise = gaussian_noise(noise_shape(x, shared_dims), s, dtype=x.dtype, device=x.device, generator=generator)
    out = x * noise
    return (out, noise) if return_noise else out


def lognormal_moments(alpha: float | Tensor) -> tuple[float | Tensor, float | Tensor]:
    """Mean ``e^{α²/2}`` and variance ``(e^{α²} − 1)e^{α²}`` of ε ~ logN(0, α²)."""
    a2 = alpha * alpha
    if isinstance(a2, Tensor):
        return (a2 / 2).exp(), torch.expm1(a2) * a2.exp()
    return math.exp(a2 / 2), math.expm1(a2) * math.exp(a2)


def lognormal_noise(shape: Sequence[int], alpha: float | Tensor, *, dtype: torch.dtype = torch.float32,
                    device: torch.device | str | None = None, generator: torch.Generator | None = None) -> Tensor:
    """ε = exp(α·z), z ~ N(0, 1), of ``shape`` (α broadcastable to it)."""
    z = torch.randn(tuple(shape), dtype=dtype, device=device, generator=generator)
    return (alpha * z).exp()


def lognormal_dropout(x: Tensor, alpha: float | Tensor, training: bool = True, *,
                      shared_dims: Sequence[int] = (), generator: torch.Generator | None = None,
                      return_noise: bool = False) -> Tensor | tuple[Tensor, Tensor]:
    """Constant log-normal noise ``x ⊙ ε``, ε ~ logN(0, α²) (Achille & Soatto 2017, §4 and Fig. 3 "Log-normal").

    The noise is not mean-one (E ε = e^{α²/2}, as in the paper's and authors' ε = exp(α z));
    evaluation multiplies by that mean.

    >>> lognormal_dropout(torch.ones(1), 0.0)
    tensor([1.])
    """
    check_positive("alpha", alpha, allow_zero=True)
    if isinstance(alpha, Tensor):
        check_broadcast("alpha", alpha, x)
    if not training:
        mean, _ = lognormal_moments(alpha)
        out = x * mean
        return (out, torch.as_tensor(mean)) if return_noise else out
    noise = lognormal_noise(noise_shape(x, shared_dims), alpha, dtype=x.dtype, device=x.device, generator=generator)
    out = x * noise
    return (out, noise) if return_noise else out


# ----------------------------------------------------------------------------------------------
# Ornstein–Uhlenbeck dropout (Shalova, Peletier & Schlichting, "Contributions")


def ou_rho(correlation_steps: float) -> float:
    """Per-step autocorrelation ρ = e^{−1/τ} of the OU noise (τ = 0: independent draws, ρ = 0)."""
    check_positive("correlation_steps", correlation_steps, allow_zero=True)
    return 0.0 if correlation_steps == 0 else math.exp(-1.0 / correlation_steps)


def ou_update(eta: Tensor | None, shape: Sequence[int], sigma: float, correlation_steps: float, *,
              dtype: torch.dtype = torch.float32, device: torch.device | str | None = None,
              generator: torch.Generator | None = None) -> Tensor:
    """One step of η_{k+1} = ρ η_k + σ √(1 − ρ²) ξ_k, ρ = e^{−1/τ}; ``eta=None`` draws the stationary N(0, σ²)."""
    check_positive("sigma", sigma, allow_zero=True)
    z = torch.randn(tuple(shape), dtype=dtype, device=device, generator=generator)
    return ou_advance(eta, z, sigma, ou_rho(correlation_steps))


def ou_advance(eta: Tensor | None, z: Tensor, sigma: float, rho: float) -> Tensor:
    """η_{k+1} = ρ η_k + σ √(1 − ρ²) z from a standard normal draw ``z`` (``eta=None``: σ z, the stationary law)."""
    if eta is None or rho == 0.0:
        return sigma * z
    return rho * eta + (sigma * math.sqrt(1.0 - rho * rho)) * z


def ou_dropout(x: Tensor, eta: Tensor | None, sigma: float, correlation_steps: float, training: bool = True, *,
               shared_dims: Sequence[int] = (0,),
               generator: torch.Generator | None = None) -> tuple[Tensor, Tensor | None]:
    """``x ⊙ (1 + η_{k+1})`` with η advanced one OU step from ``eta``; returns ``(out, new_eta)``.

    The state ``eta`` has the noise shape (``shared_dims`` of ``x`` set to 1; default one η per
    unit shared by the batch). At evaluation the output is ``x`` and the state is returned unchanged.

    >>> out, eta = ou_dropout(torch.ones(4, 3), None, 0.1, 5.0, generator=torch.Generator().manual_seed(0))
    >>> eta.shape
    torch.Size([1, 3])
    """
    check_positive("sigma", sigma, allow_zero=True)
    check_positive("correlation_steps", correlation_steps, allow_zero=True)
    if not training:
        return x, eta
    shape = noise_shape(x, shared_dims)
    if eta is not None and tuple(eta.shape) != shape:
        raise ValueError(f"eta of shape {tuple(eta.shape)} does not match the noise shape {shape}; "
                         "reset the state or share the noise along the batch")
    new = ou_update(eta, shape, sigma, correlation_steps, dtype=x.dtype, device=x.device, generator=generator)
    return x * (1 + new), new


# ----------------------------------------------------------------------------------------------
# Information Dropout (Achille & Soatto 2017, §4, Propositions 1–2)


def information_kl(alpha: Tensor, x: Tensor, prior: str = "log-uniform", *, max_alpha: float = 0.5,
                   mu: float | Tensor = 0.0, sigma: float | Tensor = 1.0, eps: float = 1e-4) -> Tensor:
    """Per-unit KL(p(z|x) ‖ p(z)) of Information Dropout, z = ε·f(x), ε ~ logN(0, α²), ``x`` = f(x).

    ``prior="log-uniform"`` (ReLU, Proposition 1, eq. 3): ``−log α + const``; the constant is
    fixed at ``log max_alpha`` so the KL is ≥ 0 and 0 at the cap. Where f(x) = 0 the KL is the
    constant −log q (Proposition 1, second case), which has no gradient; it is counted as 0.

    ``prior="log-normal"`` (Softplus, Proposition 2): the KL between the log-space Gaussians
    N(log f(x), α²) and N(μ, σ²),

    .. math:: \\log\\frac{\\sigma}{\\alpha} + \\frac{\\alpha^2 + (\\log f(x) - \\mu)^2}{2\\sigma^2} - \\frac12,

    which is eq. (4) with μ read as μ − log f(x) (the printed eq. 4 drops log f(x)); f(x) is
    clamped at ``eps`` before the log, as in the authors' code.

    >>> information_kl(torch.tensor([0.25, 0.5]), torch.ones(2))
    tensor([0.6931, 0.0000])
    """
    check_choice("prior", prior, PRIORS)
    if prior == "log-uniform":
        kl = torch.log(max_alpha / alpha)
        return torch.where(x == 0, torch.zeros_like(kl), kl)
    log_f = x.clamp_min(eps).log()
    sigma_t = torch.as_tensor(sigma, dtype=alpha.dtype, device=alpha.device)
    return (sigma_t / alpha).log() + (alpha**2 + (log_f - mu) ** 2) / (2 * sigma_t**2) - 0.5


def information_dropout(x: Tensor, alpha: Tensor, training: bool = True, *, prior: str = "log-uniform",
                        max_alpha: float = 0.5, mu: float | Tensor = 0.0, sigma: float | Tensor = 1.0,
                        generator: torch.Generator | None = None,
                        noise: Tensor | None = None) -> tuple[Tensor, Tensor, Tensor]:
    """``z = ε ⊙ f(x)``, ε ~ logN(0, α(x)²), given α(x) (Achille & Soatto 2017, §4); returns ``(z, ε, kl)``.

    ``alpha`` has the shape of ``x`` (or broadcasts to it); ``kl`` is the per-unit KL of
    :func:`information_kl`. ``noise`` replays a given ε. Evaluation: ``z = e^{α²/2} f(x)``.
    """
    check_choice("prior", prior, PRIORS)
    kl = information_kl(alpha, x, prior, max_alpha=max_alpha, mu=mu, sigma=sigma)
    if not training and noise is None:
        eps = (alpha * alpha / 2).exp()
    elif noise is None:
        eps = lognormal_noise(torch.broadcast_shapes(alpha.shape, x.shape), alpha, dtype=x.dtype,
                              device=x.device, generator=generator)
    else:
        eps = noise
    return x * eps, eps, kl


# ----------------------------------------------------------------------------------------------
# Variational dropout (Kingma, Salimans & Welling 2015)


def variational_kl(log_alpha: Tensor) -> Tensor:
    """Per-unit KL(q_α ‖ log-uniform) up to a constant, Kingma et al. 2015's cubic fit (valid for α ≤ 1).

    ``KL ≈ −(½ log α + c1 α + c2 α² + c3 α³) + (c1 + c2 + c3)``: the constant makes it 0 at α = 1
    (the most noise allowed) and positive below.

    >>> variational_kl(torch.zeros(1)).abs().item() < 1e-6
    True
    """
    a = log_alpha.exp()
    c1, c2, c3 = KINGMA_C
    return -(0.5 * log_alpha + c1 * a + c2 * a**2 + c3 * a**3) + (c1 + c2 + c3)


def variational_dropout(x: Tensor, log_alpha: Tensor, training: bool = True, *,
                        generator: torch.Generator | None = None,
                        return_noise: bool = False) -> Tensor | tuple[Tensor, Tensor]:
    """Gaussian dropout ``x ⊙ ξ``, ξ ~ N(1, α) with learned per-unit α = exp(log_alpha) (Kingma et al. 2015).

    A fresh ξ per example and unit: on the units, this *is* the local reparametrization of
    the weight noise of the next linear layer (Kingma et al. 2015, "Variational (A)").
    ``log_alpha`` broadcasts against ``x``. Evaluation is the identity.
    """
    check_broadcast("log_alpha", log_alpha, x)
    if not training:
        return (x, torch.ones(())) if return_noise else x
    noise = gaussian_noise(x.shape, (0.5 * log_alpha).exp(), dtype=x.dtype, device=x.device, generator=generator)
    out = x * noise
    return (out, noise) if return_noise else out


def variational_linear(x: Tensor, weight: Tensor, bias: Tensor | None, log_alpha: Tensor, training: bool = True, *,
                       generator: torch.Generator | None = None,
                       noise: Tensor | None = None) -> tuple[Tensor, Tensor | None]:
    """Linear layer with weight noise w_ij ~ N(θ_ij, α_j θ_ij²), by the local reparametrization trick.

    The pre-activation b = x W + noise is drawn directly: b_ni ~ N(Σ_j x_nj θ_ij, Σ_j α_j x_nj² θ_ij²)
    (Kingma et al. 2015, local reparametrization), α per input unit (``log_alpha`` of shape (in,)).
    ``noise`` replays the standard-normal ζ of b = mean + sd·ζ. Returns ``(out, ζ)``.
    """
    shape = x.shape
    x2 = _flatten_features(x, weight.shape[1])
    mean = x2 @ weight.T
    if bias is not None:
        mean = mean + bias
    if not training and noise is None:
        return mean.reshape(*shape[:-1], weight.shape[0]), None
    var = (x2 * x2) @ (log_alpha.exp() * weight * weight).T
    if noise is None:
        noise = torch.randn(mean.shape, dtype=x.dtype, device=x.device, generator=generator)
    out = mean + var.clamp_min(1e-16).sqrt() * noise.reshape(mean.shape)
    return out.reshape(*shape[:-1], weight.shape[0]), noise


# ----------------------------------------------------------------------------------------------
# Stochastic spiking units (Baldi & Sadowski 2014, §10.1)


def stochastic_spiking(x: Tensor, r: float = 1.0, training: bool = True, *, generator: torch.Generator | None = None,
                       noise: Tensor | None = None, return_noise: bool = False) -> Tensor | tuple[Tensor, Tensor]:
    """Global spiking: a unit of activity O ∈ [0, 1] emits ``r`` with probability O (Baldi & Sadowski 2014, §10.1).

    Output ``r·Δ``, Δ ~ Bernoulli(O): unit dropout with keep probability O and scale r. Its
    expectation ``r·O`` is the evaluation output; the gradient is that of the expectation
    (straight-through: ∂(rΔ)/∂O := r). ``noise`` replays a given spike pattern Δ. NaN in O gives NaN.

    >>> stochastic_spiking(torch.tensor([0.0, 1.0]), 2.0)
    tensor([0., 2.])
    """
    check_positive("r", r)
    check_activities("activity", x.detach())
    mean = r * x
    if not training and noise is None:
        return (mean, x) if return_noise else mean
    if noise is None:
        u = torch.rand(x.shape, dtype=x.dtype, device=x.device, generator=generator)
        noise = (u < x).to(x.dtype)
    out = mean + (r * noise - mean).detach()
    out = torch.where(torch.isnan(x), x, out)
    return (out, noise) if return_noise else out


def spiking_linear(x: Tensor, weight: Tensor, bias: Tensor | None, r: float = 1.0, training: bool = True, *,
                   generator: torch.Generator | None = None, noise: Tensor | None = None,
                   chunk_elements: int = CHUNK_ELEMENTS, return_noise: bool = False) -> Tensor | tuple[Tensor, Tensor]:
    """Connection spiking into a linear layer: ``S_i = Σ_j w_ij r Δ_ij + b_i``, Δ_ij ~ Bernoulli(O_j) (§10.1).

    One coin per connection and example (mask batch × out × in, drawn in chunks unless
    ``return_noise`` or ``noise`` asks for the whole). Expectation: ``W (r O) + b``; gradient that
    of the expectation (straight-through). NaN in O gives NaN in the outputs it feeds.
    """
    check_positive("r", r)
    check_activities("activity", x.detach())
    shape = x.shape
    o = _flatten_features(x, weight.shape[1])
    mean = (r * o) @ weight.T + (0 if bias is None else bias)
    if not training and noise is None:
        out = mean.reshape(*shape[:-1], weight.shape[0])
        return (out, o) if return_noise else out
    ones = torch.ones_like(o)
    od = o.detach()

    def draw(lo: int, hi: int) -> Tensor:
        u = torch.rand((hi - lo, *weight.shape), dtype=x.dtype, device=x.device, generator=generator)
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
    out = torch.where(nan_rows, torch.full_like(out, float("nan")), out)
    out = out.reshape(*shape[:-1], weight.shape[0])
    return (out, noise) if return_noise else out  # type: ignore[return-value]


# ----------------------------------------------------------------------------------------------
# Backpercolation (Baldi & Sadowski 2014, §10.2)


class _Backpercolate(torch.autograd.Function):
    """Forward: the given activation values; backward: grad · factor (factor drawn in the forward)."""

    generate_vmap_rule = True

    @staticmethod
    def forward(s: Tensor, value: Tensor, factor: Tensor) -> Tensor:
        return value.detach().clone()

    @staticmethod
    def setup_context(ctx: Any, inputs: tuple[Tensor, Tensor, Tensor], output: Tensor) -> None:
        ctx.save_for_backward(inputs[2])

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, None, None]:
        (factor,) = ctx.saved_tensors
        return grad * factor, None, None


def derivative_of(activation: Callable[[Tensor], Tensor], s: Tensor) -> Tensor:
    """Elementwise derivative f'(s) of an elementwise ``activation`` by autograd."""
    with torch.enable_grad():
        s_ = s.detach().requires_grad_(True)
        (d,) = torch.autograd.grad(activation(s_).sum(), s_)
    return d


def backpercolation_factor(derivative: Tensor, keep: float | None = None, *,
                           generator: torch.Generator | None = None) -> Tensor:
    """The backward multiplier of backpercolation for derivatives f'(s) (Baldi & Sadowski 2014, §10.2).

    ``keep=None`` (adaptive): δ ~ Bernoulli(min(|f'|, 1)) times ``sign(f')·max(|f'|, 1)``, so
    E[factor] = f'(s) exactly (for a logistic unit, f' = σ(1 − σ) ≤ 1/4 is itself the
    probability, B&S's reading of backprop as a reverse dropout ensemble). ``keep=q``: B&S's
    fixed-probability variant, δ ~ Bernoulli(q) *in place of* f' (E = q, biased unless f' = q).
    """
    u = torch.rand(derivative.shape, dtype=derivative.dtype, device=derivative.device, generator=generator)
    if keep is not None:
        return (u < keep).to(derivative.dtype)
    mag = derivative.abs()
    return (u < mag.clamp(max=1)).to(derivative.dtype) * derivative.sign() * mag.clamp(min=1)


def backpercolation(s: Tensor, activation: Callable[[Tensor], Tensor] = torch.sigmoid,
                    derivative: Callable[[Tensor], Tensor] | None = None, keep: float | None = None,
                    training: bool = True, *, generator: torch.Generator | None = None,
                    factor: Tensor | None = None,
                    return_noise: bool = False) -> Tensor | tuple[Tensor, Tensor]:
    """``activation(s)`` whose backward multiplies the gradient by a Bernoulli sample, not by f'(s) (§10.2).

    See :func:`backpercolation_factor`; the mean backward over many passes is ordinary backprop
    (adaptive mode). ``derivative`` defaults to autograd's f'. ``training=False`` is backprop.
    ``factor`` replays a given backward multiplier; ``return_noise`` returns it.

    >>> s = torch.zeros(3, requires_grad=True)
    >>> backpercolation(s, training=False).sum().backward(); s.grad
    tensor([0.2500, 0.2500, 0.2500])
    """
    if keep is not None:
        check_probability("keep", keep, low_open=True, high_open=False)
    value = activation(s)
    if not training and factor is None:
        return (value, torch.ones(())) if return_noise else value
    if factor is None:
        d = derivative(s.detach()) if derivative is not None else derivative_of(activation, s)
        factor = backpercolation_factor(d.detach(), keep, generator=generator)
    out = _Backpercolate.apply(s, value, factor)
    return (out, factor) if return_noise else out
