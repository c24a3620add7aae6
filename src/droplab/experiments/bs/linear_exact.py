"""Baldi & Sadowski 2014, §2–3: dropout moments of linear nets are exact and computable by recursion.

Reproduce: ``droplab run bs-linear-exact --profile quick``.

On random small affine nets, with random per-unit (unit dropout) or per-connection (connection
dropout) keep probabilities, the mean and covariance of every output are computed three ways:
the recursions of eqs. 15–20 and 24–26 (:func:`droplab.ensemble.deep_linear_moments`), exact
enumeration of all masks (:func:`droplab.ensemble.enumerate_subnetworks`; connection dropout is
enumerated through :func:`droplab.ensemble.connection_dropout_layer`), and Monte Carlo
(:func:`droplab.ensemble.sample_ensemble`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from droplab._checks import check_int
from droplab.ensemble import (
    connection_dropout_layer,
    deep_linear_moments,
    enumerate_subnetworks,
    sample_ensemble,
)
from droplab.experiments.claims import load_claims
from droplab.experiments.config import ExperimentConfig
from droplab.experiments.plotting import subplots
from droplab.experiments.registry import experiment
from droplab.experiments.run import RunContext
from droplab.nn import BernoulliDropout

PAPER = "Baldi & Sadowski 2014"
F64 = torch.float64


@dataclass
class LinearExactConfig(ExperimentConfig):
    n_nets: int = 20
    widths: tuple[int, ...] = (4, 3, 3, 2)
    connection_widths: tuple[int, ...] = (3, 3, 2)
    n_inputs: int = 5
    mc_samples: int = 20000
    z: float = 4.0

    PROFILES = {"smoke": {"n_nets": 1, "mc_samples": 500, "connection_widths": (3, 2, 2)},
                "paper": {"n_nets": 100, "mc_samples": 100000}}

    def validate(self) -> None:
        check_int("n_nets", self.n_nets, minimum=1)
        check_int("n_inputs", self.n_inputs, minimum=1)
        check_int("mc_samples", self.mc_samples, minimum=2)
        for name in ("widths", "connection_widths"):
            if len(getattr(self, name)) < 2:
                raise ValueError(f"{name} must list at least input and output sizes, got {getattr(self, name)}")


def _random_net(widths: tuple[int, ...], kind: str, g: torch.Generator):
    ws = [torch.randn(widths[k + 1], widths[k], generator=g, dtype=F64) / widths[k] ** 0.5
          for k in range(len(widths) - 1)]
    bs = [0.1 * torch.randn(widths[k + 1], generator=g, dtype=F64) for k in range(len(widths) - 1)]
    if kind == "unit":
        keeps = [0.2 + 0.75 * torch.rand(widths[k], generator=g, dtype=F64) for k in range(len(widths) - 1)]
        layers: list[nn.Module] = []
        for w, b, q in zip(ws, bs, keeps):
            lin = nn.Linear(w.shape[1], w.shape[0]).to(F64)
            with torch.no_grad():
                lin.weight.copy_(w), lin.bias.copy_(b)
            layers += [BernoulliDropout(1 - q, scale="none"), lin]
        return nn.Sequential(*layers), deep_linear_moments_fn(ws, bs, unit_keep=keeps)
    keeps = [0.2 + 0.75 * torch.rand(w.shape, generator=g, dtype=F64) for w in ws]
    model = nn.Sequential(*[connection_dropout_layer(w, b, q) for w, b, q in zip(ws, bs, keeps)])
    return model, deep_linear_moments_fn(ws, bs, connection_keep=keeps)


def deep_linear_moments_fn(ws, bs, **keeps):
    return lambda x: deep_linear_moments(x, ws, bs, **keeps)[-1]


SPECS = load_claims(__package__)
RECURSIONS, MONTE_CARLO = SPECS["bs-linear-recursions"], SPECS["bs-linear-montecarlo"]


@experiment("bs-linear-exact", paper=PAPER, reproduces="§2–3, eqs. 15–26: exact moments of linear nets under dropout",
            config=LinearExactConfig, claims=[RECURSIONS, MONTE_CARLO])
def run(cfg: LinearExactConfig, ctx: RunContext) -> None:
    g = ctx.generator(1)
    rows, pts = [], {"unit": [], "connection": []}
    for kind, widths in (("unit", cfg.widths), ("connection", cfg.connection_widths)):
        for k in range(cfg.n_nets):
            model, recursion = _random_net(widths, kind, g)
            x = torch.randn(cfg.n_inputs, widths[0], generator=g, dtype=F64)
            rec = recursion(x)
            exact = enumerate_subnetworks(model, x, max_units=22)
            out = str(len(model) - 1)
            mc = sample_ensemble(model, x, [out], cfg.mc_samples, generator=g).units[out]
            se = (exact.variance / cfg.mc_samples).sqrt()
            rows.append({"kind": kind, "net": k, "masks": exact.n_masks,
                         "max_err_mean": float((rec.mean - exact.mean).abs().max()),
                         "max_err_cov": float((rec.cov - exact.cov).abs().max()),
                         "mc_within_z_se": float(((mc.mean - exact.mean).abs() <= cfg.z * se).double().mean()),
                         "max_abs_cov_offdiag": float((exact.cov - torch.diag_embed(exact.variance)).abs().max())})
            pts[kind].append(torch.stack([exact.mean.flatten(), mc.mean.flatten(), rec.variance.flatten(),
                                          exact.variance.flatten()]))
    ctx.table("nets", rows)
    max_mean = max(r["max_err_mean"] for r in rows)
    max_cov = max(r["max_err_cov"] for r in rows)
    mc_frac = sum(r["mc_within_z_se"] for r in rows) / len(rows)
    ctx.log(max_err_mean=max_mean, max_err_cov=max_cov, mc_fraction_within=mc_frac)
    ctx.check(RECURSIONS, max(max_mean, max_cov) < 1e-10, {"max_err_mean": max_mean, "max_err_cov": max_cov,
                                                           "n_nets": cfg.n_nets})
    ctx.check(MONTE_CARLO, mc_frac >= 0.99, {"fraction_within": mc_frac, "z": cfg.z, "samples": cfg.mc_samples})
    single = [r["max_abs_cov_offdiag"] for r in rows]
    ctx.log(max_offdiag_cov=max(single))

    fig, ax = subplots(1, 2, figsize=(10, 4))
    for kind, color in (("unit", "tab:blue"), ("connection", "tab:orange")):
        p = torch.cat(pts[kind], 1)
        ax[0].scatter(p[0], p[1], s=6, alpha=0.5, color=color, label=f"{kind} dropout")
        ax[1].scatter(p[3], p[2], s=6, alpha=0.5, color=color, label=f"{kind} dropout")
    lim = ax[0].get_xlim()
    ax[0].plot(lim, lim, color="gray", lw=0.8)
    ax[0].set(xlabel="exact E(S) by enumeration", ylabel=f"Monte Carlo mean (K = {cfg.mc_samples})",
              title="output means")
    ax[1].set(xscale="log", yscale="log", xlabel="exact Var(S) by enumeration", ylabel="Var(S) by recursion",
              title="output variances (eqs. 16, 19, 25)")
    for a in ax:
        a.legend(fontsize=8)
    ctx.figure(fig, "linear_exact", f"{ctx.paper}, §2–3: exact moments of random linear nets ({cfg.widths} unit, "
               f"{cfg.connection_widths} connection dropout) — Monte Carlo and recursion against enumeration over all "
               "masks (unitless).")
