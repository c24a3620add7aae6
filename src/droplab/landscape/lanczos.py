"""Thick-restart block Lanczos for a few extreme eigenpairs of a symmetric operator (float64, CPU).

The basis V (D × j, orthonormal) spans the block Krylov space of a random start block; the operator
only ever meets the newest block Q (one ``matmat`` of b columns: the batched HVP of a
:class:`~droplab.landscape.HessianOperator`). With every product fully reorthogonalized,

.. math:: A V = V H + Q_{+} C, \\qquad H = V^\\top A V,

where Q₊ is the next block and C its coupling (b × j). The Ritz pairs (θ_i, V y_i) of H have
residual norms r_i = ‖A V y_i − θ_i V y_i‖ = ‖C y_i‖ (Lanczos' estimate; it leaves the operator's own
rounding out, as ARPACK's does), and the wanted ones stop when r_i ≤ tol·|θ_i| (``stop="residual"``,
ARPACK's test). ``stop="eigenvalue"`` bounds the eigenvalue error instead, by the Kato–Temple
inequality (Temple 1928, Kato 1949: a Rayleigh quotient θ with residual r lies within r²/δ of the one
eigenvalue λ closer to it than δ):

.. math:: |\\lambda_i - \\theta_i| \\le \\min\\Big(r_i, \\frac{r_i^2}{\\delta_i}\\Big), \\qquad
          \\delta_i = \\min_{j \\ne i} \\big(|\\theta_i - \\theta_j| - r_j\\big),

with the gap δ_i to the rest of the spectrum estimated from the other Ritz values, each widened by its
own residual (an eigenvalue lies within r_j of θ_j). Like every Krylov test it cannot see an
eigenvalue the space has not yet found; the test waits for at least k + 1 Ritz values, so the
wanted ones have a neighbour beyond them. The vectors are only as accurate as r_i/δ_i in angle.

When the basis would exceed ``ncv`` columns, it restarts thick (Wu & Simon 2000; Stewart's
Krylov–Schur): V ← V Y_l keeps the l best Ritz vectors, H ← diag(θ_l), C ← C Y_l, and the relation
above still holds, so no product is repeated. Without restarts (ncv ≥ the products needed) this is
Lanczos with full reorthogonalization: of all methods that see the same products, its Ritz values
are the Rayleigh–Ritz optimum over the Krylov space; ARPACK's implicit restarts discard part of it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

WHICH = ("LA", "SA", "LM")
STOPS = ("residual", "eigenvalue")


@dataclass(frozen=True)
class KrylovResult:
    """Wanted Ritz values (descending by ``which``), vectors (D, k), products (vectors) and calls (blocks)."""

    values: Tensor
    vectors: Tensor
    n_matvec: int
    n_calls: int
    converged: bool


def _wanted(theta: Tensor, k: int, which: str) -> Tensor:
    key = {"LA": theta, "SA": -theta, "LM": theta.abs()}[which]
    return torch.argsort(key, descending=True)[:k]


def _error_bound(theta: Tensor, residual: Tensor, stop: str) -> Tensor:
    """Per Ritz pair, the bound ``stop`` tests: r_i, or min(r_i, r_i²/δ_i) with the widened gap δ_i."""
    if stop == "residual" or len(theta) == 1:
        return residual
    gap = (theta.unsqueeze(1) - theta.unsqueeze(0)).abs() - residual.unsqueeze(0)    # [i, j]: |θ_i − θ_j| − r_j
    gap = gap.fill_diagonal_(float("inf")).min(dim=1).values
    quadratic = torch.where(gap > 0, residual ** 2 / gap.clamp_min(torch.finfo(theta.dtype).tiny), torch.inf)
    return torch.minimum(residual, quadratic)


def _orthonormal_block(w: Tensor, basis: Tensor, generator: torch.Generator | None,
                       scale: float) -> tuple[Tensor, Tensor]:
    """(Q, R) with Q ⟂ ``basis`` orthonormal and w − basis·(basisᵀw) = Q R; dependent columns restart at random."""
    for _ in range(2):   # twice is enough (Kahan–Parlett)
        w = w - basis @ (basis.T @ w)
    q, r = torch.linalg.qr(w)
    for i in torch.nonzero(r.diagonal().abs() <= 1e-12 * max(scale, 1e-300)).flatten().tolist():
        fresh = torch.randn(w.shape[0], 1, dtype=w.dtype, generator=generator)
        others = torch.cat([basis, q[:, :i], q[:, i + 1:]], 1)
        for _ in range(2):
            fresh = fresh - others @ (others.T @ fresh)
        q[:, i] = (fresh / fresh.norm()).flatten()
        r[i] = 0.0   # the invariant subspace was reached: this direction carries no coupling
    return q, r


def block_lanczos(matmat: Callable[[Tensor], Tensor], dim: int, k: int, *, which: str = "LA",
                  tol: float = 1e-6, block_size: int = 1, ncv: int | None = None, max_matvec: int | None = None,
                  generator: torch.Generator | None = None, stop: str = "residual") -> KrylovResult:
    """``k`` extreme eigenpairs of the symmetric operator ``matmat`` ((D, b) ↦ A·(D, b), float64).

    ``stop``: which error ``tol`` bounds, relative to |θ_i| (module docstring): the residual or the eigenvalue.

    ``ncv`` caps the basis (default max(3k, k + 40) ≤ D); ``max_matvec`` the products (default 50·ncv).
    """
    b = block_size
    ncv = min(dim, ncv if ncv is not None else max(3 * k, k + 40))
    ncv = max(ncv, min(dim, k + 2 * b))
    max_matvec = max_matvec if max_matvec is not None else 50 * ncv
    basis = torch.empty(dim, 0, dtype=torch.float64)
    h = torch.empty(0, 0, dtype=torch.float64)
    q, _ = torch.linalg.qr(torch.randn(dim, b, dtype=torch.float64, generator=generator))
    coupling = torch.empty(b, 0, dtype=torch.float64)
    n_matvec = n_calls = 0
    while True:
        aq = matmat(q)
        n_matvec, n_calls = n_matvec + q.shape[1], n_calls + 1
        cross = basis.T @ aq                                   # Vᵀ A Q (= Cᵀ in exact arithmetic)
        qaq = q.T @ aq
        h = torch.cat([torch.cat([h, cross], 1), torch.cat([cross.T, 0.5 * (qaq + qaq.T)], 1)], 0)
        basis = torch.cat([basis, q], 1)
        theta, y = torch.linalg.eigh(h)
        scale = float(theta.abs().max())
        j = basis.shape[1]
        if j >= dim:                                           # the whole space: H is A in the basis
            keep = _wanted(theta, k, which)
            return KrylovResult(theta[keep], basis @ y[:, keep], n_matvec, n_calls, True)
        q, r = _orthonormal_block(aq - basis @ (basis.T @ aq), basis, generator, scale)
        q = q[:, :min(b, dim - j)]
        coupling = torch.zeros(q.shape[1], j, dtype=torch.float64)
        coupling[:, j - r.shape[1]:] = r[:q.shape[1]]
        keep = _wanted(theta, k, which)
        error = _error_bound(theta, (coupling @ y).norm(dim=0), stop)[keep]
        floor = (torch.finfo(torch.float64).eps ** (2 / 3)) * scale
        # a Ritz value beyond the k wanted (j > k) first: it is the eigenvalue bound's gap to the rest
        if j > k and bool((error <= tol * theta[keep].abs().clamp_min(floor)).all()):
            return KrylovResult(theta[keep], basis @ y[:, keep], n_matvec, n_calls, True)
        if n_matvec >= max_matvec:
            return KrylovResult(theta[keep], basis @ y[:, keep], n_matvec, n_calls, False)
        if j + q.shape[1] > ncv:                               # thick restart: keep the best Ritz pairs
            kept = _wanted(theta, min(j - q.shape[1], k + (ncv - k) // 2), which)
            basis, coupling = basis @ y[:, kept], coupling @ y[:, kept]
            h = torch.diag(theta[kept])   # A V Y_l = V Y_l Θ_l + Q₊ C Y_l: the next block Q₊ is unchanged
