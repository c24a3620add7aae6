"""Spectra of a symmetric operator: top eigenpairs by block Lanczos and the trace by Hutchinson's estimator.

Both take any ``scipy.sparse.linalg.LinearOperator`` (a :class:`~droplab.landscape.HessianOperator`,
the noise Hessian of :func:`droplab.regularization.noise_hessian_operator`, or a plain matrix through
``aslinearoperator``); Hutchinson's estimator is the one routine for every trace in droplab.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from scipy.sparse.linalg import LinearOperator

from droplab._checks import check_choice, check_generator, check_int
from droplab.landscape.lanczos import STOPS, WHICH, block_lanczos


@dataclass(frozen=True)
class Eigenpairs:
    """Eigenvalues (descending), eigenvectors as columns (D, k), products used (vectors) and operator calls.

    A batched call of b vectors (``matmat``) counts b products in ``n_matvec`` and one in ``n_calls``.
    """

    values: torch.Tensor
    vectors: torch.Tensor
    n_matvec: int
    n_calls: int


def hessian_eigenpairs(operator: LinearOperator, k: int = 20, *, which: str = "LA", tol: float = 1e-6,
                       generator: torch.Generator | None = None, block_size: int = 1, ncv: int | None = None,
                       max_matvec: int | None = None, stop: str = "residual") -> Eigenpairs:
    """Top-``k`` eigenpairs of a symmetric operator by thick-restart block Lanczos (:mod:`~droplab.landscape.lanczos`).

    ``which="LA"``: largest algebraic (sharpest directions); ``"SA"``: smallest; ``"LM"``: largest
    magnitude. Converged when every wanted Ritz pair has residual ‖A x − θ x‖ ≤ ``tol``·|θ| (as
    ``scipy.sparse.linalg.eigsh``); the eigenvalue errors are then below tol·|θ| (and usually far
    below: they go with the residual squared over the gap). ``stop="eigenvalue"`` stops as soon as
    that bound, residual² over the gap to the other Ritz values, is below tol·|θ|: fewer products
    when only the values are wanted, eigenvectors accurate to residual/gap in angle only
    (:mod:`~droplab.landscape.lanczos`). ``block_size`` b > 1 multiplies b
    vectors per call (``operator.matmat``: one batched HVP of a
    :class:`~droplab.landscape.HessianOperator`), fewer, cheaper calls for a few more products;
    ``ncv`` caps the basis (the default max(3k, k + 40) lets the top 20 of the paper's block converge
    without a restart). The start block is drawn from ``generator`` so the result is reproducible.

    >>> from scipy.sparse.linalg import aslinearoperator
    >>> a = aslinearoperator(np.diag(np.arange(1.0, 101.0)))
    >>> hessian_eigenpairs(a, 3, generator=torch.Generator().manual_seed(0)).values.round(decimals=6)
    tensor([100.,  99.,  98.], dtype=torch.float64)
    """
    check_int("k", k, minimum=1)
    check_int("block_size", block_size, minimum=1)
    check_choice("which", which, WHICH)
    check_choice("stop", stop, STOPS)
    if not isinstance(operator, LinearOperator):
        raise TypeError(f"operator must be a scipy.sparse.linalg.LinearOperator (e.g. hessian_operator(...) or "
                        f"aslinearoperator(matrix)), got {type(operator).__name__}")
    dim = operator.shape[0]
    if k >= dim:
        raise ValueError(f"k must be < the operator's dimension {dim} for Lanczos, got {k}; use block_hessian")
    if ncv is not None:
        check_int("ncv", ncv, minimum=k + block_size)

    def matmat(v: torch.Tensor) -> torch.Tensor:
        return torch.as_tensor(np.asarray(operator.matmat(v.numpy()), dtype=np.float64))

    found = block_lanczos(matmat, dim, k, which=which, tol=tol, block_size=block_size, ncv=ncv,
                          max_matvec=max_matvec, generator=generator, stop=stop)
    if not found.converged:
        raise RuntimeError(f"Lanczos did not reach tol={tol} ({stop}) for the top {k} in {found.n_matvec} products; "
                           "raise max_matvec or ncv, or loosen tol")
    order = torch.argsort(found.values, descending=True)
    return Eigenpairs(found.values[order], found.vectors[:, order], found.n_matvec, found.n_calls)


@dataclass(frozen=True)
class TraceEstimate:
    """Hutchinson estimate of Tr(A) with its standard error over ``n_probes`` Rademacher probes."""

    value: float
    stderr: float
    n_probes: int


def hutchinson_trace(operator: LinearOperator, n_probes: int = 100,
                     generator: torch.Generator | None = None) -> TraceEstimate:
    """Tr(A) ≈ (1/S) Σ_s z_sᵀ A z_s with Rademacher z (Hutchinson 1990).

    .. math:: \\operatorname{tr} A = \\mathbb{E}_z[z^\\top A z], \\qquad z_j = \\pm 1 \\text{ i.i.d.},

    since E[z zᵀ] = I: the estimator is unbiased, and its standard error is the sample standard
    deviation of the S quadratic forms over √S. The products are one ``operator.matmat`` of the
    (D, S) probe matrix (operators that batch, such as the noise Hessian, use it); the forms are
    summed in float64.

    >>> from scipy.sparse.linalg import aslinearoperator
    >>> hutchinson_trace(aslinearoperator(np.diag([0.1, 0.2, 0.3])), 4, torch.Generator().manual_seed(0)).value
    0.6000000000000001
    """
    check_int("n_probes", n_probes, minimum=2)
    check_generator("generator", generator)
    if not isinstance(operator, LinearOperator):
        raise TypeError(f"operator must be a scipy.sparse.linalg.LinearOperator (e.g. hessian_operator(...) or "
                        f"aslinearoperator(matrix)), got {type(operator).__name__}")
    dim = operator.shape[0]
    z = (torch.randint(0, 2, (n_probes, dim), generator=generator).double() * 2 - 1).numpy()
    products = np.asarray(operator.matmat(z.T), dtype=np.float64)  # (D, S)
    forms = np.einsum("sd,ds->s", z, products)
    return TraceEstimate(float(forms.mean()), float(forms.std(ddof=1) / n_probes ** 0.5), n_probes)
