"""Goodness of fit of the Information Dropout priors (Fig. 1) against scipy and known samples."""

from __future__ import annotations

import math

import pytest
import torch
from scipy import stats

from droplab.information import ks_log_normal, ks_log_uniform, prior_fit

N = 20_000
# Dvoretzky–Kiefer–Wolfowitz: P(KS > ε) ≤ 2 exp(−2 n ε²); ε = 0.02 at n = 20,000 gives ≤ 2e-7,
# so a correct distance from the true law stays below 0.02 with overwhelming probability.
EPS = 0.02


def test_ks_matches_scipy_on_a_log_normal_sample():
    g = torch.Generator().manual_seed(0)
    z = torch.exp(0.3 + 0.7 * torch.randn(N, generator=g, dtype=torch.float64))
    ks, mu, sigma = ks_log_normal(z, 0.3, 0.7)
    assert ks == pytest.approx(stats.kstest(z.log().numpy(), "norm", args=(0.3, 0.7)).statistic, abs=1e-12)
    assert ks < EPS
    assert (mu, sigma) == (0.3, 0.7)


def test_log_uniform_window_and_zero_fraction():
    g = torch.Generator().manual_seed(1)
    z = torch.exp(torch.rand(N, generator=g, dtype=torch.float64) * 6 - 3)  # log z ~ U(−3, 3)
    z[: N // 4] = 0.0  # the ReLU prior's point mass q at 0
    fit = prior_fit(z)
    assert fit.ks_log_uniform < EPS
    assert fit.zero_fraction == pytest.approx(0.25)
    assert fit.n == N - N // 4
    # a log-normal sample is far from log-uniform, and a log-uniform one far from log-normal
    lognormal = torch.exp(torch.randn(N, generator=g, dtype=torch.float64))
    assert ks_log_uniform(lognormal) > 0.05
    assert fit.ks_log_normal > 0.05
    assert fit.sigma == pytest.approx(math.sqrt(36 / 12), rel=0.03)


def test_bad_input():
    with pytest.raises(ValueError, match="at least 2 positive"):
        prior_fit(torch.zeros(10))
    with pytest.raises(ValueError, match="window must be"):
        ks_log_uniform(torch.rand(10) + 0.1, window=(0.9, 0.1))


def test_noisy_activations_sample_the_noise_and_restore_modes():
    from torch import nn

    from droplab.information import noisy_activations
    from droplab.nn import BernoulliDropout

    model = nn.Sequential(nn.Linear(4, 6), nn.ReLU(), BernoulliDropout(0.5), nn.Linear(6, 2)).eval()
    x = torch.randn(50, 4, generator=torch.Generator().manual_seed(0))
    z = noisy_activations(model, x, model[2], chunk=16, generator=torch.Generator().manual_seed(0))
    again = noisy_activations(model, x, model[2], chunk=16, generator=torch.Generator().manual_seed(0))
    assert torch.equal(z, again) and model[2].generator is None
    clean = torch.relu(model[0](x)).detach()
    assert z.shape == (50, 6)
    # inverted dropout: each unit is 0 or twice its clean value, and some are dropped
    assert torch.all((z == 0) | torch.isclose(z, 2 * clean))
    assert bool(((z == 0) & (clean > 0)).any())
    assert not model.training and not model[2].mc
    with pytest.raises(ValueError, match="layer must be a module of model"):
        noisy_activations(model, x, nn.Linear(1, 1))


def test_ks_log_uniform_on_bounds_equals_the_window_at_its_own_quantiles():
    """Passing the sample's own window quantiles as bounds reproduces the window statistic exactly; bounds
    far wider than the data give the distance of a uniform that the data fill only partly (closed form)."""
    g = torch.Generator().manual_seed(0)
    z = torch.randn(4000, generator=g, dtype=torch.float64).exp()
    u = z.log()
    a, b = torch.quantile(u, torch.tensor([0.1, 0.9], dtype=torch.float64)).tolist()
    assert ks_log_uniform(z, (0.1, 0.9)) == ks_log_uniform(z, bounds=(a, b))
    # log z uniform on [0, 1], compared with the uniform law on [0, 2]: sup |F − u/2| = 1/2 at u = 1
    w = torch.linspace(0, 1, 2001, dtype=torch.float64).exp()
    assert ks_log_uniform(w, bounds=(0.0, 2.0)) == pytest.approx(0.5, abs=1e-3)
    with pytest.raises(ValueError, match="bounds must be"):
        ks_log_uniform(z, bounds=(1.0, 0.0))
