"""Bad input to the regularization analyses: one line naming the argument (issue 14)."""

import pytest
import torch
from torch import nn

from droplab.nn import BernoulliDropout
from droplab.regularization import expected_dropout_gradient, noise_hessian_operator, noise_laplacian

MSE = nn.functional.mse_loss


def net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(3, 4), nn.Tanh(), BernoulliDropout(0.5), nn.Linear(4, 1)).double()


def rand(*shape):
    return torch.randn(*shape, dtype=torch.float64)


CASES = [
    ("target-broadcast", lambda: noise_laplacian(net(), MSE, rand(32, 3), rand(32)),
     "targets of shape \\(32,\\) must match the model's outputs \\(32, 1\\)"),
    ("wrong-input-width", lambda: noise_laplacian(net(), MSE, rand(5, 7), rand(5, 1)),
     "inputs of shape \\(5, 7\\) does not fit the model's input"),
    ("integer-inputs", lambda: noise_laplacian(net(), MSE, torch.ones(6, 3, dtype=torch.long), rand(6, 1)),
     "inputs of shape \\(6, 3\\) does not fit the model's input: .*dtype"),
    ("data-not-a-pair", lambda: expected_dropout_gradient(net(), MSE, rand(8, 3), 4), "data must be a pair"),
    ("data-count", lambda: expected_dropout_gradient(net(), MSE, (rand(8, 3), rand(7, 1)), 4),
     "as many targets as inputs, got 8 inputs"),
    ("empty-batch", lambda: noise_laplacian(net(), MSE, rand(0, 3), rand(0, 1)), "inputs must be a tensor"),
    ("operator-target-broadcast", lambda: noise_hessian_operator(net(), MSE, rand(8, 3), rand(8)).matvec(rand(4)),
     "targets of shape \\(8,\\) must match"),
    ("expected-gradient-broadcast", lambda: expected_dropout_gradient(net(), MSE, (rand(8, 3), rand(8)), 4),
     "targets of shape \\(8,\\) must match"),
]


@pytest.mark.parametrize(("call", "match"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_is_one_line(call, match, raises_one_line):
    raises_one_line(call, match)


def test_a_loss_that_reshapes_its_outputs_is_accepted():
    # only a loss that would broadcast is refused; one that indexes the outputs itself is fine
    x, t = rand(8, 3), rand(8)
    value = noise_laplacian(net(), lambda o, tt: MSE(o[:, 0], tt), x, t)
    assert torch.isfinite(value)
