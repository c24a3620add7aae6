"""Streaming weighted moments over a leading sample dim (Chan, Golub & LeVeque's pairwise merge).

Memory does not grow with the number of samples: each chunk of samples is reduced to its total
weight, mean and centered (co)moment, then merged, in float64, so that neither a long Monte Carlo
run nor a 2^20-mask enumeration loses precision to cancellation (no ``E[x²] − E[x]²``).
"""

from __future__ import annotations

import torch
from torch import Tensor


class StreamingMoments:
    """Weighted mean, variance and (optionally) full covariance of vectors ``(..., d)``.

    ``update(values, weights)`` takes ``values`` of shape ``(k, ..., d)`` (``k`` samples) and
    weights ``(k,)`` (equal when omitted). With ``covariance=True`` the ``(..., d, d)`` co-moment is
    kept, else only the diagonal.
    """

    def __init__(self, covariance: bool = False) -> None:
        self.covariance = covariance
        self.weight = 0.0
        self.count = 0
        self._mean: Tensor | None = None
        self._m2: Tensor | None = None

    def update(self, values: Tensor, weights: Tensor | None = None) -> None:
        k = values.shape[0]
        if weights is None and not self.covariance:
            # equal weights: shifted sums in the input's dtype over the chunk (the shift — the running mean,
            # or the chunk's first sample — keeps Σc² − (Σc)²/k free of cancellation), merged in float64
            v = values.detach()
            shift = v[0] if self._mean is None else self._mean.to(v.dtype)
            c = v - shift
            s1 = c.sum(0).to(torch.float64)
            m2_b = (c * c).sum(0).to(torch.float64) - s1 * s1 / k
            wb, mean_b = float(k), shift.to(torch.float64) + s1 / k
        else:
            x = values.detach().to(torch.float64)
            w = (torch.ones(k, dtype=torch.float64, device=x.device) if weights is None
                 else weights.detach().to(torch.float64))
            wb = float(w.sum())
            if wb == 0:
                return
            wx = w.view(-1, *([1] * (x.dim() - 1)))
            mean_b = (wx * x).sum(0) / wb
            c = x - mean_b
            m2_b = torch.einsum("k,k...i,k...j->...ij", w, c, c) if self.covariance else (wx * c * c).sum(0)
        self.count += k
        if self._mean is None:
            self.weight, self._mean, self._m2 = wb, mean_b, m2_b
            return
        wa = self.weight
        total = wa + wb
        delta = mean_b - self._mean
        self._mean = self._mean + delta * (wb / total)
        outer = delta.unsqueeze(-1) * delta.unsqueeze(-2) if self.covariance else delta * delta
        self._m2 = self._m2 + m2_b + outer * (wa * wb / total)
        self.weight = total

    def _check(self) -> None:
        if self._mean is None:
            raise ValueError("no samples were accumulated; call update() first")

    @property
    def mean(self) -> Tensor:
        self._check()
        return self._mean

    def variance(self, unbiased: bool = False) -> Tensor:
        """Weighted variance; ``unbiased`` divides by ``count − 1`` (equal-weight samples only)."""
        self._check()
        m2 = self._m2.diagonal(dim1=-2, dim2=-1) if self.covariance else self._m2
        return m2 / (self.count - 1) * (self.count / self.weight) if unbiased else m2 / self.weight

    def covariance_matrix(self, unbiased: bool = False) -> Tensor:
        """The ``(..., d, d)`` covariance (requires ``covariance=True``)."""
        self._check()
        if not self.covariance:
            raise ValueError("covariance_matrix needs StreamingMoments(covariance=True)")
        return self._m2 / (self.count - 1) * (self.count / self.weight) if unbiased else self._m2 / self.weight
