"""Spectra of noise samples and their relation to the landscape (Zhang, Zhou & Xu 2024, §3.5–3.6).

* :func:`pca` — Definition 1: eigenvalues λ_i(Σ) of the samples' covariance (the variance along the
  eigen-directions v_i(Σ)), by an SVD of the centred samples (never forming D×D).
* :func:`projected_variance` — Definition 3: Var(Proj_v(S)) = (1/N) Σ_k (θ_kᵀv − μ)².
* :class:`CovarianceOperator` — Σ = (1/N) X_cᵀ X_c as a linear operator (products only).
* :func:`alignment` — §3.6: T = Tr(HΣ) against Tr(HΣ̄), Σ̄ = (TrΣ/D)·I, and a stricter null: Σ's
  spectrum with Haar-random eigenvectors.
* :func:`power_law_fit` — a robust (Theil–Sen) line in log–log coordinates with a bootstrap CI.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from droplab._checks import check_int


def _check_samples(samples: Tensor) -> Tensor:
    if samples.dim() != 2 or samples.shape[0] < 2:
        raise ValueError(f"samples must be (N, D) with N >= 2, got shape {tuple(samples.shape)}")
    bad = int((~torch.isfinite(samples)).sum())
    if bad:
        raise ValueError(f"samples must be finite, got {bad} NaN or infinite entries of {samples.numel()}")
    return samples


@dataclass(frozen=True)
class PCA:
    """Eigenvalues (descending, Definition 1), eigenvectors as columns (D, r), the sample mean, N."""

    values: Tensor
    vectors: Tensor
    mean: Tensor
    n: int


def pca(samples: Tensor, k: int | None = None) -> PCA:
    """PCA of the covariance Σ = (1/N) Σ_k (s_k − s̄)(s_k − s̄)ᵀ of samples (N, D) (ZZX Definition 1).

    The 1/N normalization is Definition 3's; at most min(N − 1, D) eigenvalues are non-zero and the
    top ``k`` (default all r = min(N − 1, D)) are returned.

    >>> s = torch.tensor([[1.0, 0.0], [-1.0, 0.0], [0.0, 0.5], [0.0, -0.5]])
    >>> pca(s).values
    tensor([0.5000, 0.1250])
    """
    samples = _check_samples(samples)
    n, d = samples.shape
    mean = samples.mean(0)
    _, sv, vh = torch.linalg.svd(samples - mean, full_matrices=False)
    r = min(n - 1, d) if k is None else k
    if not 1 <= r <= min(n - 1, d):
        raise ValueError(f"k must be in [1, min(N − 1, D) = {min(n - 1, d)}], got {k}")
    return PCA(sv[:r] ** 2 / n, vh[:r].T, mean, n)


def detrend(samples: Tensor) -> Tensor:
    """Samples (N, D) minus each coordinate's least-squares line in the sample index k = 0..N−1.

    Trajectory samples S_para (§3.4.1) drift while training goes on; the covariance of the residuals
    is the noise around the trend (a constant drift would otherwise add a rank-one term). The
    residuals have mean zero and no linear trend.

    >>> s = torch.tensor([[0.0], [1.0], [2.0], [3.0]]) + torch.tensor([[1.0], [-1.0], [-1.0], [1.0]])
    >>> detrend(s).squeeze(1)
    tensor([ 1., -1., -1.,  1.])
    """
    samples = _check_samples(samples)
    n = samples.shape[0]
    k = torch.arange(n, dtype=samples.dtype, device=samples.device)
    basis = torch.stack([torch.ones_like(k), k - k.mean()], 1)  # orthogonal columns: 1 and centred k
    coef = (basis.T @ samples) / (basis ** 2).sum(0).unsqueeze(1)
    return samples - basis @ coef


def projected_variance(samples: Tensor, directions: Tensor) -> Tensor:
    """Var(Proj_v(S)) for every column v of ``directions`` (D, k) (ZZX Definition 3, 1/N normalization)."""
    samples = _check_samples(samples)
    if directions.dim() == 1:
        directions = directions.unsqueeze(1)
    if directions.shape[0] != samples.shape[1]:
        raise ValueError(f"directions must have {samples.shape[1]} rows (the samples' D), "
                         f"got {tuple(directions.shape)}")
    proj = (samples - samples.mean(0)) @ directions.to(samples)
    return (proj ** 2).mean(0)


class CovarianceOperator:
    """Σ = (1/N) X_cᵀ X_c of samples (N, D) as an operator: Σv in O(ND), never forming D×D (issue item 8)."""

    def __init__(self, samples: Tensor) -> None:
        samples = _check_samples(samples)
        self.centred = samples - samples.mean(0)
        self.n, self.dim = samples.shape

    def matvec(self, v: Tensor) -> Tensor:
        """Σ v for a vector (D,) or the columns of a matrix (D, k)."""
        return self.centred.T @ (self.centred @ v.to(self.centred)) / self.n

    def trace(self) -> float:
        return float((self.centred ** 2).sum() / self.n)

    def to_dense(self) -> Tensor:
        return self.centred.T @ self.centred / self.n


@dataclass(frozen=True)
class Alignment:
    """Tr(HΣ), the isotropic Tr(HΣ̄) and the random-eigenvector null (mean, std, max over draws)."""

    trace_h_sigma: float
    trace_h_isotropic: float
    null_mean: float
    null_std: float
    null_max: float
    n_null: int

    @property
    def ratio(self) -> float:
        """Tr(HΣ) / Tr(HΣ̄): ≫ 1 means the noise concentrates on sharp directions (ZZX Fig. 4)."""
        return self.trace_h_sigma / self.trace_h_isotropic

    @property
    def beats_null(self) -> bool:
        """Tr(HΣ) exceeds every draw of the random-eigenvector null."""
        return self.trace_h_sigma > self.null_max


def alignment(hessian: Tensor | Callable[[Tensor], Tensor], samples: Tensor, *, n_null: int = 20,
              generator: torch.Generator | None = None) -> Alignment:
    """T = Tr(HΣ) = (1/N) Σ_k x_kᵀ H x_k (x_k centred samples) against Tr(HΣ̄) = Tr(Σ)·Tr(H)/D (ZZX §3.6, §7).

    ``hessian`` is a dense (D, D) matrix or a product ``V ↦ HV`` on columns (then Tr(H) is needed only
    for the baseline and is taken from the null draws' estimator: the null uses Σ's own spectrum,
    λ(Σ), with Haar-random orthonormal eigenvectors Q, Tr(H Q Λ Qᵀ); its mean is Tr(HΣ̄) exactly, its
    spread says how far chance alone can push the alignment.
    """
    check_int("n_null", n_null, minimum=2)
    cov = CovarianceOperator(samples)
    hv = (lambda v: hessian.to(v) @ v) if isinstance(hessian, Tensor) else hessian
    if isinstance(hessian, Tensor) and hessian.shape != (cov.dim, cov.dim):
        raise ValueError(f"hessian must be ({cov.dim}, {cov.dim}) to match the samples' D, got {tuple(hessian.shape)}")
    x = cov.centred
    t = float((x * hv(x.T).T).sum() / cov.n)
    spectrum = pca(samples)
    lam = spectrum.values.to(x)
    r = len(lam)
    nulls = []
    for _ in range(n_null):
        g = torch.randn(cov.dim, r, generator=generator, dtype=torch.float64).to(x)
        q, _ = torch.linalg.qr(g)
        nulls.append(float((lam * (q * hv(q)).sum(0)).sum()))
    if isinstance(hessian, Tensor):
        trace_h = float(hessian.trace())
    else:  # E[Tr(H Q Λ Qᵀ)] = Tr(Σ)·Tr(H)/D, so the null mean estimates the isotropic value
        trace_h = float(np.mean(nulls)) * cov.dim / cov.trace()
    iso = cov.trace() * trace_h / cov.dim
    return Alignment(t, iso, float(np.mean(nulls)), float(np.std(nulls, ddof=1)), float(np.max(nulls)), n_null)


@dataclass(frozen=True)
class PowerLawFit:
    """log10 y = slope · log10 x + intercept: Theil–Sen slope, bootstrap CI, R² of the fitted line."""

    slope: float
    intercept: float
    r2: float
    ci_low: float
    ci_high: float
    n: int
    n_dropped: int
    confidence: float


def _theil_sen(lx: np.ndarray, ly: np.ndarray) -> tuple[float, float]:
    i, j = np.triu_indices(len(lx), 1)
    dx = lx[j] - lx[i]
    keep = dx != 0
    if not keep.any():  # every x equal (a bootstrap resample of one point): no slope
        return float("nan"), float("nan")
    slope = float(np.median((ly[j] - ly[i])[keep] / dx[keep]))
    return slope, float(np.median(ly - slope * lx))


def power_law_fit(x: Tensor | np.ndarray, y: Tensor | np.ndarray, *, n_boot: int = 200, confidence: float = 0.95,
                  max_points: int = 400, generator: torch.Generator | None = None) -> PowerLawFit:
    """Fit y ∝ x^slope robustly in log–log coordinates (the dashed lines of ZZX Figs. 2–3).

    Points with a non-positive or non-finite coordinate are dropped (counted in ``n_dropped``). The
    slope is Theil–Sen's median of pairwise slopes; the CI is the percentile bootstrap over points
    (``n_boot`` resamples of at most ``max_points`` points each, to bound the O(n²) pairs; resamples
    whose x are all equal have no slope and are left out).
    """
    check_int("n_boot", n_boot, minimum=10)
    x = np.asarray(torch.as_tensor(x, dtype=torch.float64, device="cpu"))  # a CUDA tensor comes to the CPU
    y = np.asarray(torch.as_tensor(y, dtype=torch.float64, device="cpu"))
    if x.shape != y.shape or x.ndim != 1:
        raise ValueError(f"x and y must be 1-D of the same length, got {x.shape} and {y.shape}")
    ok = np.isfinite(x) & np.isfinite(y) & (x > 0) & (y > 0)
    lx, ly = np.log10(x[ok]), np.log10(y[ok])
    if len(lx) < 3:
        raise ValueError(f"power_law_fit needs at least 3 points with positive finite x and y, got {len(lx)}")
    seed = int(torch.randint(0, 2**31 - 1, (1,), generator=generator))
    rng = np.random.default_rng(seed)
    sub = rng.choice(len(lx), max_points, replace=False) if len(lx) > max_points else np.arange(len(lx))
    slope, intercept = _theil_sen(lx[sub], ly[sub])
    resid = ly - (slope * lx + intercept)
    r2 = 1 - float((resid ** 2).sum() / ((ly - ly.mean()) ** 2).sum()) if ly.std() > 0 else float("nan")
    m = min(len(lx), max_points)
    boots = [_theil_sen(lx[idx], ly[idx])[0] for idx in (rng.integers(0, len(lx), m) for _ in range(n_boot))]
    alpha = (1 - confidence) / 2
    finite = np.asarray([b for b in boots if np.isfinite(b)])  # resamples with a defined slope
    lo, hi = np.quantile(finite, [alpha, 1 - alpha]) if len(finite) else (float("nan"), float("nan"))
    return PowerLawFit(slope, intercept, r2, float(lo), float(hi), int(ok.sum()), int((~ok).sum()), confidence)
