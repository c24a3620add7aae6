"""Spectra of a symmetric operator: top eigenpairs by Lanczos and the trace by Hutchinson's estimator.

Both take any ``scipy.sparse.linalg.LinearOperator`` (a :class:`~droplab.landscape.HessianOperator`,
the noise Hessian of :func:`droplab.regularization.noise_hessian_operator`, or a plain matrix through
``aslinearoperator``); Hutchinson's estimator is the one routine for every trace in droplab.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from scipy.sparse.linalg import LinearOperator, eigsh

from droplab._checks import check_choice, check_int


@dataclass(frozen=True)
class Eigenpairs:
    """Eigenvalues (descending), eigenvectors as columns (D, k), and the number of products used."""

    values: torch.Tensor
    vectors: torch.Tensor
    n_matvec: int


def hessian_eigenpairs(operator: LinearOperator, k: int = 20, *, which: str = "LA", tol: float = 1e-6,
                       generator: torch.Generator | None = None) -> Eigenpairs:
    """Top-``k`` eigenpairs of a symmetric operator by Lanczos (``scipy.sparse.linalg.eigsh``).

    ``which="LA"``: largest algebraic (sharpest directions); ``"LM"``: largest magnitude. The start
    vector is drawn from ``generator`` so the result is reproducible.
    """
    check_int("k", k, minimum=1)
    check_choice("which", which, ("LA", "LM", "SA"))
    dim = operator.shape[0]
    if k >= dim:
        raise ValueError(f"k must be < the operator's dimension {dim} for Lanczos, got {k}; use block_hessian")
    v0 = torch.randn(dim, generator=generator, dtype=torch.float64).numpy()
    before = getattr(operator, "n_matvec", 0)
    vals, vecs = eigsh(operator, k=k, which=which, tol=tol, v0=v0)
    order = np.argsort(vals)[::-1].copy()
    return Eigenpairs(torch.from_numpy(vals[order].copy()), torch.from_numpy(vecs[:, order].copy()),
                      getattr(operator, "n_matvec", 0) - before)


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
    if not isinstance(operator, LinearOperator):
        raise TypeError(f"operator must be a scipy.sparse.linalg.LinearOperator (e.g. hessian_operator(...) or "
                        f"aslinearoperator(matrix)), got {type(operator).__name__}")
    dim = operator.shape[0]
    z = (torch.randint(0, 2, (n_probes, dim), generator=generator).double() * 2 - 1).numpy()
    products = np.asarray(operator.matmat(z.T), dtype=np.float64)  # (D, S)
    forms = np.einsum("sd,ds->s", z, products)
    return TraceEstimate(float(forms.mean()), float(forms.std(ddof=1) / n_probes ** 0.5), n_probes)
