"""Achille & Soatto 2017, §4: Propositions 1–2 (the KL of Information Dropout) and its special case, constant
log-normal (Gaussian-dropout-like) noise, as checks against independent ground truth. No training.

Reproduce: ``droplab run as-propositions --profile quick``. The layer's KL (:class:`droplab.nn.InformationDropout`)
is compared with the KL computed by quadrature on a grid of log z (the KL is invariant under z ↦ log z, App. A)
and with a Monte Carlo estimate over z = ε·f(x); the constant-α layer is compared draw for draw with
:class:`droplab.nn.LogNormalDropout` and its noise moments with the closed form, within 4 standard errors.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from droplab._checks import check_int
from droplab.experiments.achille_soatto import PAPER
from droplab.experiments.claims import load_claims
from droplab.experiments.config import ExperimentConfig
from droplab.experiments.registry import experiment
from droplab.experiments.run import RunContext
from droplab.nn import InformationDropout, LogNormalDropout


@dataclass
class PropositionsConfig(ExperimentConfig):
    """Grid points of the log-z quadrature, Monte Carlo draws, and the number of (f(x), α) test points."""

    grid: int = 200_001
    mc_samples: int = 200_000
    n_points: int = 24

    PROFILES = {"smoke": {"grid": 20_001, "mc_samples": 20_000, "n_points": 6}, "paper": {}}

    def validate(self) -> None:
        check_int("grid", self.grid, minimum=101)
        check_int("mc_samples", self.mc_samples, minimum=100)
        check_int("n_points", self.n_points, minimum=2)


SPECS = load_claims(__package__)
PROP1, PROP2, GAUSSIAN = SPECS["as-prop1-relu-kl"], SPECS["as-prop2-softplus-kl"], SPECS["as-gaussian-dropout-case"]


def _points(n: int, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """(f, α) test points: f log-uniform on [0.05, 20], α on [0.01, 0.5)."""
    f = torch.exp(torch.empty(n, dtype=torch.float64).uniform_(math.log(0.05), math.log(20.0), generator=g))
    return f, torch.empty(n, dtype=torch.float64).uniform_(0.01, 0.5, generator=g)


def _layer_kl(f: torch.Tensor, alpha: torch.Tensor, prior: str, mu: float = 0.0, sigma: float = 1.0) -> torch.Tensor:
    """The KL an InformationDropout layer computes for f(x) = f with its head forced to give α(x) = α."""
    layer = InformationDropout(len(f), max_alpha=0.5, prior=prior, mu=mu, sigma=sigma).double()
    p = (alpha - layer.min_alpha) / (layer.max_alpha - layer.min_alpha)
    with torch.no_grad():
        layer.head.weight.zero_()
        layer.head.bias.copy_(torch.log(p / (1 - p)))
        layer.eval()(f[None])
    return layer.kl_map[0]


def _quadrature_kl(f: torch.Tensor, alpha: torch.Tensor, log_p, grid: int) -> torch.Tensor:
    """∫ q(u) log(q(u)/p(u)) du over u = log z by the trapezoid rule, q = N(log f, α²), ±12 α."""
    out = []
    for fi, ai in zip(f.tolist(), alpha.tolist()):
        u = torch.linspace(math.log(fi) - 12 * ai, math.log(fi) + 12 * ai, grid, dtype=torch.float64)
        log_q = -0.5 * ((u - math.log(fi)) / ai) ** 2 - math.log(ai) - 0.5 * math.log(2 * math.pi)
        out.append(torch.trapezoid(log_q.exp() * (log_q - log_p(u)), u))
    return torch.stack(out)


@experiment("as-propositions", paper=PAPER, reproduces="§4, Propositions 1–2 and the constant-noise special case "
            "(checks against quadrature and Monte Carlo)", config=PropositionsConfig, claims=(PROP1, PROP2, GAUSSIAN))
def run(cfg: PropositionsConfig, ctx: RunContext) -> None:
    g = torch.Generator().manual_seed(cfg.seed)
    f, alpha = _points(cfg.n_points, g)
    # Proposition 1: a log-uniform density 1/(2L) on the window |log z| ≤ L, L = 50 (every q lies inside it)
    width = 100.0
    quad = _quadrature_kl(f, alpha, lambda u: torch.full_like(u, -math.log(width)), cfg.grid)
    delta = _layer_kl(f, alpha, "log-uniform") - quad
    zero = _layer_kl(torch.cat([torch.zeros(1, dtype=torch.float64), f[1:]]), alpha, "log-uniform")[0]
    spread = float(delta.max() - delta.min())
    ctx.check(PROP1, spread <= 1e-8 and float(zero) == 0.0,
              {"spread_of_difference": spread, "constant": float(delta.mean()), "kl_at_f_zero": float(zero)})
    # Proposition 2, against quadrature and Monte Carlo, for a prior logN(μ, σ²)
    mu, sigma = -0.3, 0.8
    prior = torch.distributions.Normal(torch.tensor(mu, dtype=torch.float64), torch.tensor(sigma, dtype=torch.float64))
    layer = _layer_kl(f, alpha, "log-normal", mu, sigma)
    quad = _quadrature_kl(f, alpha, prior.log_prob, cfg.grid)
    eps = torch.randn(cfg.mc_samples, len(f), generator=g, dtype=torch.float64)
    z = f * (alpha * eps).exp()
    q = torch.distributions.LogNormal(f.log(), alpha)
    p = torch.distributions.LogNormal(torch.tensor(mu, dtype=torch.float64), torch.tensor(sigma, dtype=torch.float64))
    ratio = q.log_prob(z) - p.log_prob(z)
    mc, se = ratio.mean(0), ratio.std(0) / cfg.mc_samples ** 0.5
    worst_quad = float((layer - quad).abs().max())
    worst_z = float(((layer - mc).abs() / se).max())
    ctx.check(PROP2, worst_quad <= 1e-6 and worst_z <= 4.0,
              {"max_abs_layer_minus_quadrature": worst_quad, "max_layer_minus_mc_in_se": worst_z})
    # the constant-α special case: draw for draw against LogNormalDropout, moments against the closed form
    a = 0.3
    info = InformationDropout(8, max_alpha=0.5)
    p_a = (a - info.min_alpha) / (info.max_alpha - info.min_alpha)
    with torch.no_grad():
        info.head.weight.zero_()
        info.head.bias.fill_(math.log(p_a / (1 - p_a)))
    x = torch.rand(cfg.mc_samples // 8, 8, generator=g) + 0.5
    info.train().generator = torch.Generator().manual_seed(7)
    lognormal = LogNormalDropout(a, generator=torch.Generator().manual_seed(7)).train()
    with torch.no_grad():
        y_info, y_log = info(x), lognormal(x)
    same = float((y_info - y_log).abs().max())
    noise = (y_info / x).double().flatten()
    m1, m2 = math.exp(a * a / 2), (math.exp(a * a) - 1) * math.exp(a * a)
    z_mean = abs(float(noise.mean()) - m1) / float(noise.std() / noise.numel() ** 0.5)
    c = (noise - noise.mean()) ** 2
    z_var = abs(float(c.mean()) - m2) / float(c.std() / c.numel() ** 0.5)
    ctx.check(GAUSSIAN, same <= 1e-6 and z_mean <= 4 and z_var <= 4,
              {"max_abs_difference_to_lognormal_dropout": same, "mean_error_in_se": z_mean,
               "variance_error_in_se": z_var, "alpha": a})
    ctx.log(n_points=cfg.n_points, grid=cfg.grid, mc_samples=cfg.mc_samples)
