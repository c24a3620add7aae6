"""Shared cases and the moment checker for the noise-layer tests.

Tolerances follow from the number of draws (STYLE: "tolerances that follow from the number of
samples"). For n i.i.d. draws ξ_1..ξ_n with variance v and fourth central moment μ4:

* the sample mean has standard error sqrt(v/n), so |mean − E ξ| ≤ 5·sqrt(v/n) fails with
  probability < 6e-7 (normal tail at 5σ; n ≥ 1e5 makes the CLT accurate);
* the (unbiased) sample variance s² has Var(s²) = μ4/n − v²(n − 3)/(n(n − 1)), i.e. (μ4 − v²)/n to
  first order, so |s² − v| ≤ 5·sqrt(Var(s²)), with μ4 and v estimated from the same draws (their
  own error changes the tolerance by O(n^-1/2)); the exact form keeps Bernoulli(1/2), whose
  first-order term vanishes, honest.

Every test is seeded, so a pass is reproducible; the 5σ margin keeps the seeds honest.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pytest
import torch
from torch import Tensor, nn

from droplab.nn import (
    BackpercolationSigmoid,
    BernoulliDropout,
    DropConnectLinear,
    Dropin,
    GaussianDropout,
    InformationDropout,
    LogNormalDropout,
    OUDropout,
    StochasticSpiking,
    VariationalDropout,
    VariationalDropoutLinear,
)

Z = 5.0  # standard errors allowed


def assert_moments(samples: Tensor, mean: float | Tensor, var: float | Tensor) -> None:
    """Check the sample mean and variance of ``samples`` (flattened) against ``mean``/``var`` at Z·SE."""
    x = samples.detach().double().flatten()
    n = x.numel()
    assert n >= 100_000, f"moment checks need >= 1e5 draws, got {n}"
    mean, var = float(mean), float(var)
    m = x.mean().item()
    assert abs(m - mean) <= Z * (var / n) ** 0.5 + 1e-12, f"mean {m} vs {mean} (n={n})"
    c = x - x.mean()
    s2 = c.pow(2).mean().item() * n / (n - 1)
    mu4 = c.pow(4).mean().item()
    tol = Z * max(mu4 / n - s2 * s2 * (n - 3) / (n * (n - 1)), 0.0) ** 0.5 + 1e-12
    assert abs(s2 - var) <= tol, f"variance {s2} vs {var} ± {tol} (n={n})"


@pytest.fixture
def check_moments() -> Callable[[Tensor, float | Tensor, float | Tensor], None]:
    return assert_moments


@dataclass(frozen=True)
class Case:
    """A noise layer to put through the shared contract: a factory and an input for it."""

    id: str
    make: Callable[[torch.Generator | None], nn.Module]
    x: Callable[[], Tensor]


def _randn(*shape: int) -> Callable[[], Tensor]:
    return lambda: torch.randn(*shape, generator=torch.Generator().manual_seed(1))


def _rand(*shape: int) -> Callable[[], Tensor]:
    return lambda: torch.rand(*shape, generator=torch.Generator().manual_seed(1))


CASES = [
    Case("bernoulli", lambda g: BernoulliDropout(0.3, generator=g), _randn(8, 5)),
    Case("bernoulli-none", lambda g: BernoulliDropout(0.3, "none", generator=g), _randn(8, 5)),
    Case("dropconnect", lambda g: DropConnectLinear(5, 3, 0.3, generator=g), _randn(8, 5)),
    Case("dropconnect-batch-mask", lambda g: DropConnectLinear(5, 3, 0.3, per_example=False, generator=g),
         _randn(8, 5)),
    Case("dropin", lambda g: Dropin(0.3, generator=g), _randn(8, 5)),
    Case("gaussian", lambda g: GaussianDropout(p=0.3, generator=g), _randn(8, 5)),
    Case("ou", lambda g: OUDropout(0.5, 3.0, generator=g), _randn(8, 5)),
    Case("lognormal", lambda g: LogNormalDropout(0.4, generator=g), _randn(8, 5)),
    Case("information", lambda g: InformationDropout(5, generator=g), _rand(8, 5)),
    Case("information-conv", lambda g: InformationDropout(3, conv=True, prior="log-normal", generator=g),
         _rand(2, 3, 4, 4)),
    Case("variational", lambda g: VariationalDropout(5, generator=g), _randn(8, 5)),
    Case("variational-linear", lambda g: VariationalDropoutLinear(5, 3, generator=g), _randn(8, 5)),
    Case("spiking", lambda g: StochasticSpiking(1.0, generator=g), _rand(8, 5)),
    Case("spiking-connection", lambda g: StochasticSpiking(1.0, "connection", linear=nn.Linear(5, 3), generator=g),
         _rand(8, 5)),
    Case("backpercolation", lambda g: BackpercolationSigmoid(generator=g), _randn(8, 5)),
]


@pytest.fixture(params=CASES, ids=[c.id for c in CASES])
def case(request: pytest.FixtureRequest) -> Case:
    torch.manual_seed(0)
    return request.param
