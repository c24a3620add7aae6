"""Baldi & Sadowski 2014, §9.2–9.4, Figs. 9.1–9.2: sampling distribution of the NWGM and its link to E.

Reproduce: ``droplab run bs-nwgm-sampling --profile quick`` (``paper``: 5,000 and 10,000 repetitions).

Samples of m values O are drawn from four distributions (U[0, 1], U[0, 0.5], N(0.5, 0.1²),
N(0.25, 0.05²)); for each sample the equal-weight expectation E and NWGM are computed. Fig. 9.1:
histograms of NWGM for m = 100. Fig. 9.2: Pearson correlation and covariance between E and NWGM
across repetitions, against m.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from scipy import integrate, stats

from droplab._checks import check_int
from droplab.ensemble import means as M
from droplab.experiments.claims import load_claims
from droplab.experiments.config import ExperimentConfig
from droplab.experiments.plotting import subplots
from droplab.experiments.registry import experiment
from droplab.experiments.run import RunContext

PAPER = "Baldi & Sadowski 2014"
DISTRIBUTIONS = ("uniform(0,1)", "uniform(0,0.5)", "normal(0.5,0.1)", "normal(0.25,0.05)")
EPS = 1e-9


def draw(name: str, shape: tuple[int, ...], g: torch.Generator) -> torch.Tensor:
    """Values from one of :data:`DISTRIBUTIONS`, clipped to [1e-9, 1 − 1e-9] (Gaussian tails leave (0, 1)
    with probability < 1e-6 here)."""
    if name.startswith("uniform"):
        hi = 1.0 if name == "uniform(0,1)" else 0.5
        v = hi * torch.rand(shape, generator=g, dtype=torch.float64)
    else:
        mu, sd = (0.5, 0.1) if name == "normal(0.5,0.1)" else (0.25, 0.05)
        v = mu + sd * torch.randn(shape, generator=g, dtype=torch.float64)
    return v.clamp(EPS, 1 - EPS)


@dataclass
class NWGMSamplingConfig(ExperimentConfig):
    sample_size: int = 100
    repetitions_hist: int = 5000
    repetitions_corr: int = 2000
    sizes: tuple[int, ...] = (5, 10, 20, 50, 100, 200, 500)

    PROFILES = {"smoke": {"repetitions_hist": 200, "repetitions_corr": 200, "sizes": (5, 20)},
                "paper": {"repetitions_corr": 10000, "sizes": (5, 10, 20, 50, 100, 200, 500, 1000)}}

    def validate(self) -> None:
        check_int("sample_size", self.sample_size, minimum=2)
        check_int("repetitions_hist", self.repetitions_hist, minimum=10)
        check_int("repetitions_corr", self.repetitions_corr, minimum=10)
        if len(self.sizes) < 2:
            raise ValueError(f"sizes must list at least two sample sizes, got {self.sizes}")
        for i, m in enumerate(self.sizes):
            check_int(f"sizes[{i}]", m, minimum=2)


def logit_mean(name: str) -> float:
    """μ_S = E[log O − log(1 − O)] of one of :data:`DISTRIBUTIONS` by adaptive quadrature (eq. 103's μ_S)."""
    def logit(o: float) -> float:
        o = min(max(o, EPS), 1 - EPS)
        return math.log(o) - math.log1p(-o)
    if name.startswith("uniform"):
        hi = 1.0 if name == "uniform(0,1)" else 0.5
        return integrate.quad(lambda o: logit(o) / hi, 0.0, hi, limit=200)[0]
    mu, sd = (0.5, 0.1) if name == "normal(0.5,0.1)" else (0.25, 0.05)
    return integrate.quad(lambda o: logit(o) * stats.norm.pdf(o, mu, sd), mu - 10 * sd, mu + 10 * sd, limit=200)[0]


SPECS = load_claims(__package__)
FIG91 = {"uniform(0,1)": SPECS["bs-fig91-nwgm-mean-u01"], "uniform(0,0.5)": SPECS["bs-fig91-nwgm-mean-u005"],
         "normal(0.5,0.1)": SPECS["bs-fig91-nwgm-mean-n05"], "normal(0.25,0.05)": SPECS["bs-fig91-nwgm-mean-n025"]}
FIG92, FIG92_PEARSON = SPECS["bs-fig92-correlation"], SPECS["bs-fig92-pearson"]


@experiment("bs-nwgm-sampling", paper=PAPER, reproduces="Figs. 9.1–9.2: NWGM sampling distribution and its "
            "correlation with E", config=NWGMSamplingConfig, claims=[*FIG91.values(), FIG92, FIG92_PEARSON])
def run(cfg: NWGMSamplingConfig, ctx: RunContext) -> None:
    g = ctx.generator(1)
    hist_rows, hists = [], {}
    for name in DISTRIBUTIONS:
        s = M.summary(draw(name, (cfg.repetitions_hist, cfg.sample_size), g))
        nw, e = s.nwgm, s.expectation
        hists[name] = nw
        target = 1 / (1 + math.exp(-logit_mean(name)))
        hist_rows.append({"distribution": name, "mean_nwgm": float(nw.mean()), "eq104_sigma_mu_S": target,
                          "se_mean_nwgm": float(nw.std() / math.sqrt(len(nw))), "mean_E": float(e.mean()),
                          "std_nwgm": float(nw.std()), "std_E": float(e.std()),
                          "skewness_nwgm": float(stats.skew(nw.numpy())),
                          "normaltest_p": float(stats.normaltest(nw.numpy()).pvalue)})
    ctx.table("fig91", hist_rows)
    for r in hist_rows:
        ctx.claim(FIG91[r["distribution"]], [r["mean_nwgm"] - r["eq104_sigma_mu_S"]], seeds=[cfg.seed],
                  se=r["se_mean_nwgm"],
                  measured={k: r[k] for k in ("mean_nwgm", "eq104_sigma_mu_S", "mean_E", "std_nwgm",
                                              "skewness_nwgm", "normaltest_p")})

    corr_rows = []
    for seed in ctx.seeds():
        gs = torch.Generator().manual_seed(seed * 1_000_003 + 2)
        for name in DISTRIBUTIONS:
            for m in cfg.sizes:
                s = M.summary(draw(name, (cfg.repetitions_corr, m), gs))
                c = torch.cov(torch.stack([s.expectation, s.nwgm]))
                corr_rows.append({"seed": seed, "distribution": name, "m": m, "cov": float(c[0, 1]),
                                  "pearson": float(c[0, 1] / (c[0, 0] * c[1, 1]).sqrt())})
    ctx.table("fig92", corr_rows)
    slopes: dict[str, list[float]] = {name: [] for name in DISTRIBUTIONS}
    worst, min_corr = [], []
    for seed in ctx.seeds():
        for name in DISTRIBUTIONS:
            rows = [r for r in corr_rows if r["distribution"] == name and r["seed"] == seed]
            lm = torch.tensor([math.log(r["m"]) for r in rows])
            lc = torch.tensor([math.log(abs(r["cov"])) for r in rows])
            slopes[name].append(float(((lm - lm.mean()) * (lc - lc.mean())).sum() / ((lm - lm.mean()) ** 2).sum()))
        worst.append(max((slopes[n][-1] for n in DISTRIBUTIONS), key=lambda v: abs(v + 1)))
        big = [r["pearson"] for r in corr_rows if r["seed"] == seed and r["m"] >= 10]
        min_corr.append(min(big) if big else float("nan"))
    ctx.log(cov_loglog_slopes=slopes, min_pearson_m_ge_10=min_corr)
    ctx.claim(FIG92, worst, measured={"slopes": slopes})
    ctx.claim(FIG92_PEARSON, min_corr, regime_met=any(m >= 10 for m in cfg.sizes),
              regime_reason="no sample size m ≥ 10 in the grid",
              measured={"min_pearson_per_seed": min_corr})

    fig, ax = subplots(2, 2, figsize=(9, 6))
    for a, name in zip(ax.T.flatten(), DISTRIBUTIONS):
        a.hist(hists[name].numpy(), bins=50, color="tab:blue", alpha=0.8)
        a.set(title=f"{name}", xlabel="NWGM of a sample of 100 values", ylabel="count")
    fig.tight_layout()
    ctx.figure(fig, "fig91", f"{ctx.paper}, Fig. 9.1: histograms of the NWGM of {cfg.sample_size} values drawn "
               f"from four distributions, {cfg.repetitions_hist} repetitions.", claims=[c.id for c in FIG91.values()])
    fig, ax = subplots(1, 2, figsize=(10, 4))
    for name in DISTRIBUTIONS:
        rows = [r for r in corr_rows if r["distribution"] == name and r["seed"] == ctx.seeds()[0]]
        ax[0].plot([r["m"] for r in rows], [r["pearson"] for r in rows], "o-", label=name)
        ax[1].plot([r["m"] for r in rows], [abs(r["cov"]) for r in rows], "o-", label=name)
    ax[0].set(xscale="log", xlabel="number of samples m", ylabel="Pearson correlation(E, NWGM)")
    ax[1].set(xscale="log", yscale="log", xlabel="number of samples m", ylabel="|covariance(E, NWGM)|")
    ax[0].legend(fontsize=8)
    ctx.figure(fig, "fig92", f"{ctx.paper}, Fig. 9.2: Pearson correlation and covariance between the sample E and NWGM "
               f"against the sample size, {cfg.repetitions_corr} repetitions each (seed {ctx.seeds()[0]}).",
               claims=[FIG92.id, FIG92_PEARSON.id])
