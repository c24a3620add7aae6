"""Bad input to the curvature analyses: one line naming the argument (issue 14)."""

import numpy as np
import pytest
import torch
from scipy.sparse.linalg import aslinearoperator
from torch import nn

from droplab.landscape import (
    block_hessian,
    direction_from_vector,
    filter_normalized_direction,
    ggn,
    hessian_eigenpairs,
    hessian_operator,
    hutchinson_trace,
    loss_profile,
    loss_surface,
)

CE = nn.functional.cross_entropy


def net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2)).double()


def ones() -> list[torch.Tensor]:
    return [torch.ones_like(p) for p in net().parameters()]


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
    ("profile-no-steps", lambda: loss_profile(net(), CE, data(), ones(), []), "alphas must be a non-empty sequence"),
    ("profile-nan-step", lambda: loss_profile(net(), CE, data(), ones(), [0.0, float("nan")]), "alphas must be"),
    ("surface-no-betas", lambda: loss_surface(net(), CE, data(), (ones(), ones()), [0.0], []), "betas must be"),
    ("direction-nan-vector", lambda: direction_from_vector(net(), torch.full((26,), float("nan"))),
     "vector must be finite, got 26 NaN"),
    ("hutchinson-not-square", lambda: hutchinson_trace(aslinearoperator(np.ones((3, 4))), 4), "dimension mismatch"),
    ("lanczos-k-too-large", lambda: hessian_eigenpairs(hessian_operator(net(), CE, data(), ["2.bias"]), k=2),
     "k must be < the operator's dimension 2"),
]


@pytest.mark.parametrize(("call", "match"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_is_one_line(call, match, raises_one_line):
    raises_one_line(call, match)


@pytest.mark.parametrize("call", [lambda: filter_normalized_direction(net(), 3),
                                  lambda: hutchinson_trace(aslinearoperator(np.eye(3)), 4, generator=3)],
                         ids=["direction", "hutchinson"])
def test_a_generator_of_the_wrong_type_is_one_line(call, raises_one_line):
    raises_one_line(call, "generator must be a torch.Generator or None, got int", TypeError)
