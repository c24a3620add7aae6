"""Bad input to the noise-structure analyses: one line naming the argument (issue 14)."""

import pytest
import torch

from droplab.noise_structure import pca, power_law_fit, projected_variance

NAN_SAMPLES = torch.tensor([[1.0, float("nan")], [0.0, 1.0], [2.0, 3.0]])

CASES = [
    ("pca-nan", lambda: pca(NAN_SAMPLES), "samples must be finite, got 1 NaN or infinite entries of 6"),
    ("pca-inf", lambda: pca(torch.tensor([[1.0, float("inf")], [0.0, 1.0]])), "samples must be finite"),
    ("pca-one-sample", lambda: pca(torch.ones(1, 3)), "samples must be \\(N, D\\) with N >= 2"),
    ("pca-k-too-large", lambda: pca(torch.randn(4, 3), k=4), "k must be in \\[1, min\\(N − 1, D\\) = 3\\]"),
    ("projection-nan", lambda: projected_variance(NAN_SAMPLES, torch.eye(2)), "samples must be finite"),
    ("projection-rows", lambda: projected_variance(torch.randn(4, 3), torch.eye(2)), "directions must have 3 rows"),
]


@pytest.mark.parametrize(("call", "match"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_is_one_line(call, match, raises_one_line):
    raises_one_line(call, match)


def test_power_law_fit_refuses_nonpositive_values(raises_one_line):
    raises_one_line(lambda: power_law_fit(torch.tensor([1.0, 2.0, -3.0]), torch.tensor([1.0, 2.0, 3.0])),
                    "at least 3 points with positive finite x and y, got 2")


def test_samplers_check_their_data(raises_one_line):
    from torch import nn

    from droplab.models import FNN
    from droplab.noise_structure import gradient_samples, trajectory_samples

    net, ce = FNN([4, 3, 2], dropout={1: 0.5}), nn.functional.cross_entropy
    x, y = torch.randn(6, 4), torch.randint(0, 2, (6,))
    raises_one_line(lambda: gradient_samples(net, ce, (x[:0], y[:0]), 4), "data\\[0\\] \\(inputs\\) must")
    raises_one_line(lambda: gradient_samples(net, ce, (x, y[:3]), 4), "as many targets as inputs")
    raises_one_line(lambda: trajectory_samples(net, ce, (x, y[:3]), 4, lr=0.1), "as many targets as inputs")
