"""Ornstein–Uhlenbeck dropout: Gaussian dropout whose noise is correlated in time (SPS, "Contributions").

The multiplicative filter ``1 + η_k`` follows an OU process sampled once per step,

.. math:: \\eta_{k+1} = \\rho\\,\\eta_k + \\sigma\\sqrt{1-\\rho^2}\\,\\xi_k,\\qquad \\rho = e^{-1/\\tau},\\
    \\xi_k \\sim N(0, 1),

stationary law N(0, σ²) (the same marginal as Gaussian dropout) and correlation ``ρ^{|k−l|}`` between
steps, ``τ`` the correlation time in steps (τ → 0: independent Gaussian dropout). SPS ask how this
correlation changes noisy GD; :func:`ou_dropout_gd` runs it on the zero-loss manifold problem of
:mod:`droplab.dynamics.manifold`. The recurrence itself is :func:`droplab.nn.laws.ou_update`,
the one ``OUDropout`` uses.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from droplab._checks import check_int, check_positive
from droplab.dynamics.manifold import Trajectory, gaussian_dropout_gd
from droplab.nn.laws import ou_rho, ou_update

__all__ = ["ou_path", "ou_dropout_gd", "ou_rho"]


def ou_path(shape: tuple[int, ...], n_steps: int, sigma: float, correlation_steps: float, *,
            dtype: torch.dtype = torch.float64, generator: torch.Generator | None = None) -> Tensor:
    """``n_steps`` successive η of the stationary OU process of correlation time τ, shape ``(n_steps, *shape)``."""
    check_int("n_steps", n_steps, minimum=1)
    check_positive("sigma", sigma)
    eta, out = None, []
    for _ in range(n_steps):
        eta = ou_update(eta, shape, sigma, correlation_steps, dtype=dtype, generator=generator)
        out.append(eta)
    return torch.stack(out)


def ou_dropout_gd(model: nn.Module, x: Tensor, y: Tensor, w0: Tensor, *, alpha: float, sigma: float,
                  tau: float, t_end: float, n_records: int = 21,
                  generator: torch.Generator | None = None) -> Trajectory:
    """Gaussian-dropout GD with OU noise of correlation time ``tau`` steps and stationary variance σ²."""
    return gaussian_dropout_gd(model, x, y, w0, alpha=alpha, sigma=sigma, t_end=t_end, n_records=n_records,
                               correlation_steps=tau, generator=generator)
