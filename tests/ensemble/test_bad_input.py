"""Bad input to the ensemble analyses: one line naming the argument, never a silent answer (issue 14)."""

import pytest
import torch
from torch import nn

from droplab.ensemble import (
    enumerate_subnetworks,
    linear_moments,
    nwgm,
    nwgm_bound_simple,
    nwgm_bound_variance,
    nwgm_second_order,
    nwgm_second_order_mean,
    sample_ensemble,
    summary,
)
from droplab.nn import BernoulliDropout

F64 = torch.float64


def net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(3, 4), BernoulliDropout(0.5), nn.Linear(4, 2)).double()


def sample(x):
    return sample_ensemble(net(), x, ["2"], 10, generator=torch.Generator().manual_seed(0))


CASES = [
    ("nwgm-mean-above-1", lambda: nwgm_second_order(2.0, 0.1), "E must lie in \\[0, 1\\], got 2.0"),
    ("nwgm-negative-variance", lambda: nwgm_second_order(0.5, -1.0), "V must lie in \\[0, 0.25\\], got -1.0"),
    ("nwgm-issue-example", lambda: nwgm_second_order(2.0, -1.0), "E must lie in \\[0, 1\\]"),
    ("mean-expansion-variance", lambda: nwgm_second_order_mean(torch.tensor([0.3, 0.5]), 0.3), "V must lie in"),
    ("bound-nan", lambda: nwgm_bound_variance(float("nan"), 0.1), "E must lie in"),
    ("simple-bound-tensor", lambda: nwgm_bound_simple(torch.tensor([0.2, 1.5])), "E must lie in .* max 1.5"),
    ("summary-no-members", lambda: summary(torch.empty(0)), "m >= 1 members"),
    ("summary-no-members-2d", lambda: summary(torch.empty(3, 0)), "m >= 1 members"),
    ("nwgm-ints", lambda: nwgm(torch.tensor([0, 1])), "values must be a floating tensor"),
    ("sample-empty-batch", lambda: sample(torch.empty(0, 3, dtype=F64)), "x must be a tensor .* at least"),
    ("sample-wrong-width", lambda: sample(torch.randn(5, 7, dtype=F64)), "x of shape \\(5, 7\\) does not fit"),
    ("moments-wrong-width", lambda: linear_moments(net(), torch.randn(5, 7, dtype=F64)),
     "a Linear expects 3 features but x gives 7"),
    ("moments-empty-batch", lambda: linear_moments(net(), torch.empty(0, 3, dtype=F64)), "at least one example"),
    ("enumerate-wrong-width", lambda: enumerate_subnetworks(net(), torch.randn(5, 7, dtype=F64)),
     "x of shape \\(5, 7\\) does not fit"),
    ("enumerate-scalar", lambda: enumerate_subnetworks(net(), torch.tensor(1.0, dtype=F64)), "at least one example"),
]


@pytest.mark.parametrize(("call", "match"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_is_one_line(call, match, raises_one_line):
    raises_one_line(call, match)


def test_an_unbatched_input_is_a_batch_of_one():
    x = torch.randn(3, dtype=F64)
    one = enumerate_subnetworks(net(), x)
    batch = enumerate_subnetworks(net(), x.unsqueeze(0))
    assert one.mean.shape == (1, 2)
    torch.testing.assert_close(one.mean, batch.mean, rtol=0, atol=0)
    torch.testing.assert_close(one.cov, linear_moments(net(), x)[-1].cov, rtol=1e-12, atol=1e-12)


def test_the_domain_admits_its_edges():
    # E ∈ {0, 1} with V = 0 and the largest variance 1/4 at E = 1/2 are inside the domain
    assert float(nwgm_second_order(0.0, 0.0)) == 0.0 and float(nwgm_second_order(1.0, 0.0)) == 1.0
    assert float(nwgm_bound_variance(0.5, 0.25)) == 0.0
