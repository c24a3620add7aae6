"""decay_alignment: ⟨E∇L_D − ∇L_ENS, w⟩ against B&S eq. 147's closed form, within the Monte Carlo error."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from droplab.nn import BernoulliDropout
from droplab.regularization import decay_alignment


def half_sse(o: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    return 0.5 * (o - t).pow(2).sum()


def test_linear_unit_matches_eq147_within_monte_carlo_error():
    # Eq. 147, summed over examples n: E∇_D − ∇_ENS = w_i Σ_n I_ni² p(1 − p) (keep p), hence
    # ⟨·, w⟩ = Σ_i w_i² Σ_n I_ni² p(1 − p) > 0 and the difference is parallel to w (cosine → 1).
    torch.manual_seed(0)
    keep = 0.6
    net = nn.Sequential(BernoulliDropout(1 - keep, scale="none"), nn.Linear(5, 1, bias=False)).double()
    g = torch.Generator().manual_seed(1)
    x, y = torch.randn(8, 5, generator=g, dtype=torch.float64), torch.randn(8, 1, generator=g, dtype=torch.float64)
    w = net[1].weight.detach()[0]
    exact = float((w**2 * (x**2).sum(0)).sum() * keep * (1 - keep))
    res = decay_alignment(net, half_sse, (x, y), 4000, generator=torch.Generator().manual_seed(2))
    assert res.stderr["1.weight"] > 0
    assert abs(res.inner["1.weight"] - exact) <= 4 * res.stderr["1.weight"]
    assert res.cosine["1.weight"] > 0.9


def test_logistic_top_layer_is_a_decay_and_names_are_checked():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(4, 6), nn.Sigmoid(), BernoulliDropout(0.5, scale="none"), nn.Linear(6, 3))
    g = torch.Generator().manual_seed(3)
    x, y = torch.randn(32, 4, generator=g), torch.randint(0, 3, (32,), generator=g)
    res = decay_alignment(net, nn.functional.cross_entropy, (x, y), 256, generator=torch.Generator().manual_seed(4))
    assert sorted(res.inner) == ["0.weight", "3.weight"] and res.n_samples == 256
    # eq. 181: the top layer's extra term is w·λσ'(U)Var(δO), a decay; no noise below layer 0's weights
    assert res.inner["3.weight"] > 3 * res.stderr["3.weight"]
    with pytest.raises(ValueError, match="params must name parameters"):
        decay_alignment(net, nn.functional.cross_entropy, (x, y), 8, params=["nope"])
