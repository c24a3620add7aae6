"""How well the priors of Information Dropout fit the post-noise activations (Achille & Soatto 2017, Fig. 1).

§4 proposes ``p(z) = q δ₀(z) + c/z`` for ReLU (log-uniform: ``log z`` flat) and ``p(z) = logN(μ, σ²)``
for Softplus (``log z`` normal). Both are statements about ``u = log z`` of the non-zero activations,
so the goodness of fit here is the Kolmogorov–Smirnov distance ``sup |F_emp(u) − F_prior(u)|``:

* log-uniform: the prior is improper, so it is compared on the window between the ``window``
  quantiles of ``u`` (default 5%–95%), where it is the uniform distribution on that window;
* log-normal: against ``N(μ, σ²)`` with the given μ, σ (the layer's learned prior), or the
  maximum-likelihood fit when none are given.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from droplab._checks import check_int, check_probability
from droplab._hooks import record_outputs
from droplab.nn import mc_mode
from droplab.nn.modes import evaluation, lend_generator


@dataclass
class PriorFit:
    """KS distances of ``log z`` to both priors, the zero fraction (the ReLU prior's ``q``) and the fitted μ, σ."""

    ks_log_uniform: float
    ks_log_normal: float
    zero_fraction: float
    mu: float
    sigma: float
    n: int


def _ks(sorted_u: Tensor, cdf: Tensor) -> float:
    """sup |F_emp − F| for sorted samples and the model CDF at them (both sides of each jump)."""
    n = sorted_u.numel()
    k = torch.arange(1, n + 1, dtype=cdf.dtype, device=cdf.device)
    return float(torch.maximum(k / n - cdf, cdf - (k - 1) / n).abs().max())


def ks_log_uniform(z: Tensor, window: tuple[float, float] = (0.05, 0.95), *,
                   bounds: tuple[float, float] | None = None) -> float:
    """KS distance of ``log z`` (z > 0 only) to the uniform law on its ``window`` quantile range, or on
    the fixed interval ``bounds = (a, b)`` of log z (e.g. quantiles of held-out activations), given.

    >>> z = torch.linspace(-3, 3, 1001).exp()  # log z exactly uniform on [-3, 3]
    >>> round(ks_log_uniform(z, bounds=(-3.0, 3.0)), 3), round(ks_log_uniform(z, bounds=(-3.0, 9.0)), 3)
    (0.001, 0.5)
    """
    u = _log_positive(z)
    if bounds is None:
        lo, hi = window
        check_probability("window[0]", lo)
        check_probability("window[1]", hi, low_open=True, high_open=False)
        if not lo < hi:
            raise ValueError(f"window must be (low, high) quantiles with low < high, got {window}")
        a, b = torch.quantile(u, torch.tensor([lo, hi], dtype=u.dtype))
    else:
        a, b = (float(v) for v in bounds)
        if not a < b:
            raise ValueError(f"bounds must be (a, b) with a < b, got {bounds}")
    inside = u[(u >= a) & (u <= b)].sort().values
    if inside.numel() < 1:
        raise ValueError(f"no log z falls inside the bounds {bounds}")
    return _ks(inside, (inside - a) / (b - a))


def ks_log_normal(z: Tensor, mu: float | None = None, sigma: float | None = None) -> tuple[float, float, float]:
    """KS distance of ``log z`` (z > 0 only) to N(μ, σ²); μ, σ fitted by maximum likelihood if not given.

    Returns ``(ks, mu, sigma)``.
    """
    u = _log_positive(z).sort().values
    mu = float(u.mean()) if mu is None else float(mu)
    sigma = float(u.std(unbiased=False)) if sigma is None else float(sigma)
    if not sigma > 0:
        raise ValueError(f"sigma must be > 0, got {sigma}")
    return _ks(u, torch.special.ndtr((u - mu) / sigma)), mu, sigma


def _log_positive(z: Tensor) -> Tensor:
    u = z.detach().flatten().double()
    u = u[u > 0].log()
    if u.numel() < 2:
        raise ValueError(f"z must hold at least 2 positive activations, got {u.numel()}")
    return u


def prior_fit(z: Tensor, *, mu: float | None = None, sigma: float | None = None,
              window: tuple[float, float] = (0.05, 0.95)) -> PriorFit:
    """Both goodness-of-fit numbers for post-noise activations ``z`` (any shape)."""
    ks_n, mu_, sigma_ = ks_log_normal(z, mu, sigma)
    flat = z.detach().flatten()
    return PriorFit(ks_log_uniform=ks_log_uniform(z, window), ks_log_normal=ks_n,
                    zero_fraction=float((flat <= 0).double().mean()), mu=mu_, sigma=sigma_,
                    n=int((flat > 0).sum()))


def noisy_activations(model: nn.Module, x: Tensor, layer: nn.Module, *, chunk: int = 512,
                      generator: torch.Generator | None = None) -> Tensor:
    """The outputs ``z = ε ⊙ f(x)`` of the noise layer ``layer`` (a module of ``model``) on inputs ``x``:
    every other module in evaluation mode (batch norm on its running statistics), the noise sampled
    (:func:`droplab.nn.mc_mode`); the caller's modes are restored. Returns them concatenated (N, ...).
    The noise layers draw from ``generator`` (None: their own generators, else torch's global RNG).
    """
    check_int("chunk", chunk, minimum=1)
    if not any(m is layer for m in model.modules()):
        raise ValueError("layer must be a module of model")
    with record_outputs([layer]) as out, evaluation(model), mc_mode(model), lend_generator(model, generator), \
            torch.no_grad():
        for i in range(0, len(x), chunk):
            model(x[i:i + chunk])
    return torch.cat(out[0])
