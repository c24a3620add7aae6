"""The VAE objective is a true negative ELBO, for the Gaussian and the Information Dropout latent.

Ground truth, independent of the model's own KL code: (1) a Monte Carlo estimate of
E_q[−log p(x|z) + log q(z|x) − log p(z)] with z drawn by numpy and the densities from scipy.stats;
(2) on a 1-D latent, log p(x) = log ∫ p(x|z) p(z) dz by quadrature, which the ELBO must not exceed
and the importance-weighted bound must approach.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy import stats

from droplab.models import VAE

M = 4000  # Monte Carlo draws per example


def _binary(n: int, d: int, seed: int) -> torch.Tensor:
    return (torch.rand(n, d, generator=torch.Generator().manual_seed(seed), dtype=torch.float64) > 0.5).double()


def _decoder_nll(vae: VAE, x: torch.Tensor, z: np.ndarray) -> np.ndarray:
    """−log p(x|z) for z (M, N, latent) from numpy."""
    with torch.no_grad():
        logits = vae.decoder(torch.from_numpy(z))
        return F.binary_cross_entropy_with_logits(logits, x.expand_as(logits), reduction="none").sum(-1).numpy()


def _posterior_and_prior(vae: VAE, x: torch.Tensor):
    """Frozen scipy laws of q(z|x) per unit (N, latent) and of p(z), read from the model's parameters."""
    with torch.no_grad():
        h = vae.encoder(x)
        if vae.latent_kind == "gaussian":
            mu, std = (t.numpy() for t in vae.latent.posterior(h))
            return stats.norm(mu, std), stats.norm(0.0, 1.0)
        f, alpha = (t.numpy() for t in vae.latent.posterior(h))
        prior_mu, prior_sigma = (float(t) for t in vae.latent.prior())
        # z = f·ε, log ε ~ N(0, α²): z ~ logN(log f, α²) = scipy lognorm(s=α, scale=f)
        return stats.lognorm(s=alpha, scale=f), stats.lognorm(s=prior_sigma, scale=math.exp(prior_mu))


@pytest.mark.parametrize("kind", ["gaussian", "information"])
def test_objective_with_beta_one_is_the_negative_elbo(kind):
    torch.manual_seed(0)
    vae = VAE(12, hidden=10, latent=3, latent_kind=kind).double()
    x = _binary(4, 12, 1)
    # the model's objective, averaged over M independent one-sample draws: mean and standard error
    with torch.no_grad():
        rec, _, kl = vae.sample_terms(x, M, torch.Generator().manual_seed(0))
        draws = rec + kl  # (M, N): M independent one-sample objectives
    model_mean, model_se = draws.mean(0).numpy(), draws.std(0).numpy() / math.sqrt(M)
    # independent estimate of E_q[−log p(x|z) + log q(z|x) − log p(z)]
    q, p = _posterior_and_prior(vae, x)
    z = q.rvs(size=(M, *q.mean().shape), random_state=np.random.default_rng(2))
    per_draw = _decoder_nll(vae, x, z) + (q.logpdf(z) - p.logpdf(z)).sum(-1)
    ref_mean, ref_se = per_draw.mean(0), per_draw.std(0) / math.sqrt(M)
    # two independent estimates of the same expectation: the difference has standard error
    # sqrt(se₁² + se₂²); 5 of them bound a false failure by ~6e-7 per example (normal tail)
    assert np.all(np.abs(model_mean - ref_mean) < 5 * np.sqrt(model_se**2 + ref_se**2)), (model_mean, ref_mean)


@pytest.mark.parametrize("kind", ["gaussian", "information"])
def test_elbo_bounds_quadrature_log_likelihood_and_iwae_approaches_it(kind):
    torch.manual_seed(1)
    vae = VAE(8, hidden=6, latent=1, latent_kind=kind).double()
    x = _binary(3, 8, 4)
    # log p(x) = log ∫ p(x|z) p(z) dz on a fine grid (in u = log z for the positive latent)
    _, prior = _posterior_and_prior(vae, x)
    if kind == "gaussian":
        grid = np.linspace(-12, 12, 40001)
        z, log_w = grid, prior.logpdf(grid) + np.log(grid[1] - grid[0])
    else:
        u = np.linspace(-30, 30, 40001)
        z = np.exp(u)
        log_w = prior.logpdf(z) + u + np.log(u[1] - u[0])  # dz = z du
    nll = _decoder_nll(vae, x, z[:, None, None].repeat(3, 1))  # (grid, N)
    log_px = torch.logsumexp(torch.from_numpy(-nll + log_w[:, None]), 0).numpy()
    with torch.no_grad():
        g = torch.Generator().manual_seed(5)
        rec, _, kl = vae.sample_terms(x, M, g)
        elbo = -(rec + kl).mean(0).numpy()
        iwae = vae.iw_log_likelihood(x, k=M, generator=g).numpy()
    assert np.all(elbo <= log_px + 1e-6)
    # K = 4000 importance samples close most of the gap; q(z|x) with α ≤ 0.5 is narrower than the
    # true posterior, so the weights are heavy-tailed and the information latent's bound converges slower
    assert np.all(log_px - iwae < 0.5 * (log_px - elbo))
    assert np.all(iwae <= log_px + 0.02)
