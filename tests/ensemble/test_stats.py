"""Streaming moments: chunked merges equal the one-shot float64 moments."""

from __future__ import annotations

import torch

from droplab.ensemble.stats import StreamingMoments


def test_chunked_float32_variance_has_no_cancellation():
    # Mean 0.5, std 1e-3: a naive float32 E[x²] − E[x]² would lose ~all digits of the variance (1e-6);
    # shifted sums keep the float32 rounding error of each value (~3e-8 relative to 0.5).
    g = torch.Generator().manual_seed(0)
    x = (0.5 + 1e-3 * torch.randn(3000, 4, 5, generator=g, dtype=torch.float64))
    s = StreamingMoments()
    for chunk in x.to(torch.float32).split(700):
        s.update(chunk)
    ref_var, ref_mean = torch.var_mean(x, dim=0, correction=1)
    torch.testing.assert_close(s.mean, ref_mean, rtol=0, atol=1e-7)
    torch.testing.assert_close(s.variance(unbiased=True), ref_var, rtol=1e-3, atol=0)


def test_weighted_covariance_merge_equals_direct():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(100, 3, generator=g, dtype=torch.float64)
    w = torch.rand(100, generator=g, dtype=torch.float64)
    s = StreamingMoments(covariance=True)
    for xc, wc in zip(x.split(33), w.split(33)):
        s.update(xc, wc)
    p = w / w.sum()
    mean = (p[:, None] * x).sum(0)
    c = x - mean
    torch.testing.assert_close(s.mean, mean)
    torch.testing.assert_close(s.covariance_matrix(), torch.einsum("k,ki,kj->ij", p, c, c))
    torch.testing.assert_close(s.variance(), torch.einsum("k,ki,ki->i", p, c, c))
