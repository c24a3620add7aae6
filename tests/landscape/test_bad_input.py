"""Bad input to the curvature analyses: one line naming the argument (issue 14)."""

import pytest
import torch
from torch import nn

from droplab.landscape import block_hessian, ggn, hessian_eigenpairs, hessian_operator

CE = nn.functional.cross_entropy


def net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2)).double()


def data(n: int = 6, m: int | None = None):
    return torch.randn(n, 3, dtype=torch.float64), torch.randint(0, 2, (n if m is None else m,))


CASES = [
    ("hessian-empty-batch", lambda: block_hessian(net(), CE, data(0), ["2.weight"]), "data\\[0\\] \\(inputs\\) must"),
    ("hessian-label-count", lambda: block_hessian(net(), CE, data(6, 5), ["2.weight"]),
     "as many targets as inputs, got 6 inputs"),
    ("hessian-not-a-pair", lambda: block_hessian(net(), CE, torch.zeros(6, 3), ["2.weight"]), "must be a pair"),
    ("hessian-chunk-0", lambda: block_hessian(net(), CE, data(), ["2.weight"], chunk=0), "chunk must be an integer"),
    ("hessian-unknown-param", lambda: block_hessian(net(), CE, data(), ["9.weight"]), "params must be parameters"),
    ("hessian-unknown-loss", lambda: block_hessian(net(), CE, data(), loss="train"), "loss must be one of"),
    ("ggn-empty-batch", lambda: ggn(net(), CE, data(0), ["2.weight"]), "data\\[0\\] \\(inputs\\) must"),
    ("operator-empty-batch", lambda: hessian_operator(net(), CE, data(0), ["2.weight"]), "data\\[0\\] \\(inputs\\)"),
    ("lanczos-k-too-large", lambda: hessian_eigenpairs(hessian_operator(net(), CE, data(), ["2.bias"]), k=2),
     "k must be < the operator's dimension 2"),
]


@pytest.mark.parametrize(("call", "match"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_is_one_line(call, match, raises_one_line):
    raises_one_line(call, match)
