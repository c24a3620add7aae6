"""Baldi & Sadowski 2014, §7.2 and App. A, D, F: E(f(S)) of transfer functions against Monte Carlo.

Reproduce: ``droplab run bs-transfer --profile quick``.

Over a grid of (μ, σ), S ~ N(μ, σ²) is sampled K times and the sample means of ReLU(S), σ(S) and
σ′(S) are compared with eq. 72 (ReLU), the probit approximation of App. F (eqs. 236–242), the
NWGM/deterministic value σ(μ) (eq. 51) and the derivative approximations of App. D (eqs. 220,
223); uniform S ~ U[−a, a] checks eq. 190.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from droplab._checks import check_int, check_positive
from droplab.ensemble import transfer as T
from droplab.experiments.claims import load_claims
from droplab.experiments.config import ExperimentConfig
from droplab.experiments.plotting import subplots
from droplab.experiments.registry import experiment
from droplab.experiments.run import RunContext

PAPER = "Baldi & Sadowski 2014"
F64 = torch.float64


@dataclass
class TransferConfig(ExperimentConfig):
    """S ~ N(μ, σ²) on a grid of ``n_mu`` means in [−mu_max, mu_max] and ``n_sigma`` standard deviations
    up to ``sigma_max``, ``samples`` Monte Carlo draws per point; a closed form agrees with Monte
    Carlo within ``z`` standard errors."""

    n_mu: int = 25
    n_sigma: int = 12
    mu_max: float = 4.0
    sigma_max: float = 4.0
    samples: int = 20000
    z: float = 4.0

    PROFILES = {"smoke": {"n_mu": 7, "n_sigma": 4, "samples": 2000}, "paper": {"n_mu": 61, "n_sigma": 40,
                                                                            "samples": 100000}}

    def validate(self) -> None:
        check_int("n_mu", self.n_mu, minimum=2)
        check_int("n_sigma", self.n_sigma, minimum=2)
        check_int("samples", self.samples, minimum=2)
        check_positive("mu_max", self.mu_max)
        check_positive("sigma_max", self.sigma_max)


SPECS = load_claims(__package__)
EQ72, EQ74, PROBIT = SPECS["bs-eq72-relu-gaussian"], SPECS["bs-eq74-75-relu-gap"], SPECS["bs-appF-probit"]


@experiment("bs-transfer", paper=PAPER, reproduces="§7.2, App. A, D, F: E(f(S)) for ReLU and logistic against "
            "Monte Carlo", config=TransferConfig, claims=[EQ72, EQ74, PROBIT])
def run(cfg: TransferConfig, ctx: RunContext) -> None:
    g = ctx.generator(1)
    mu = torch.linspace(-cfg.mu_max, cfg.mu_max, cfg.n_mu, dtype=F64)
    sigma = torch.linspace(cfg.sigma_max / cfg.n_sigma, cfg.sigma_max, cfg.n_sigma, dtype=F64)
    mm, ss = torch.meshgrid(mu, sigma, indexing="ij")
    s = mm[..., None] + ss[..., None] * torch.randn(*mm.shape, cfg.samples, generator=g, dtype=F64)
    k = cfg.samples

    def mc(values):
        return values.mean(-1), values.std(-1) / math.sqrt(k)

    relu_mc, _ = mc(s.clamp_min(0))
    sig_mc, _ = mc(torch.sigmoid(s))
    der_mc, _ = mc(T.logistic_derivative(s))
    relu72 = T.relu_gaussian_mean(mm, ss)
    # The standard error uses the exact variance of ReLU(S): a sample std is 0 where every draw is negative.
    exact_se = (T.relu_gaussian_second_moment(mm, ss) - relu72 ** 2).clamp_min(0).sqrt() / math.sqrt(k)
    within72 = float(((relu72 - relu_mc).abs() <= cfg.z * exact_se).double().mean())
    a = sigma
    u = -a[:, None] + 2 * a[:, None] * torch.rand(len(a), k, generator=g, dtype=F64)
    uni_mc, _ = mc(u.clamp_min(0))
    uni_se = (a ** 2 / 6 - (a / 4) ** 2).sqrt() / math.sqrt(k)  # E ReLU(U)² = a²/6 for U ~ U[−a, a]
    within190 = float(((T.relu_uniform_mean(-a, a) - uni_mc).abs() <= cfg.z * uni_se).double().mean())
    ctx.log(eq72_fraction_within=within72, eq190_fraction_within=within190)
    ctx.check(EQ72, min(within72, within190) >= 0.99, {"eq72_fraction": within72, "eq190_fraction": within190,
                                                        "z": cfg.z, "samples": k})

    zero = mu.abs().argmin()
    gap0 = (relu_mc[zero] - 0.0) / sigma  # RL(E S) = 0 at μ = 0 (eq. 74): gap/σ should be 1/√(2π)
    gap0_ok = bool(((gap0 - 1 / math.sqrt(2 * math.pi)).abs() <= cfg.z * exact_se[zero] / sigma).all())
    far = (mm.abs() / ss) >= 4
    far_gap = float((relu_mc - mm.clamp_min(0))[far].abs().max()) if far.any() else None
    ctx.log(relu_gap_over_sigma_at_mu0=gap0, relu_gap_far_from_threshold=far_gap)
    ctx.check(EQ74, far_gap is not None and gap0_ok and far_gap < 1e-3 + cfg.z * float(exact_se[far].max()),
              {"gap_over_sigma_mu0": gap0, "max_gap_far": far_gap})

    large = ss >= 1

    def probit_errors(seed: int) -> dict[str, float]:
        """Mean |error| of σ(μ) and of the probit estimate against a fresh Monte Carlo E σ(S), on σ ≥ 1."""
        gs = torch.Generator().manual_seed(seed * 1_000_003 + 5)
        mc_sig = torch.sigmoid(mm[..., None] + ss[..., None] * torch.randn(*mm.shape, k, generator=gs,
                                                                           dtype=F64)).mean(-1)
        return {"nwgm": float((torch.sigmoid(mm) - mc_sig).abs()[large].mean()),
                "probit": float((T.logistic_gaussian_mean(mm, ss) - mc_sig).abs()[large].mean())}

    errs = [probit_errors(seed) for seed in ctx.seeds()]
    nwgm_err = (torch.sigmoid(mm) - sig_mc).abs()
    probit_err = (T.logistic_gaussian_mean(mm, ss) - sig_mc).abs()
    measured = {"mean_abs_err_nwgm": float(nwgm_err.mean()), "mean_abs_err_probit": float(probit_err.mean()),
                "max_abs_err_probit": float(probit_err.max()),
                "mean_abs_err_nwgm_sigma_ge_1": [e["nwgm"] for e in errs],
                "mean_abs_err_probit_sigma_ge_1": [e["probit"] for e in errs]}
    ctx.log(**measured)
    ctx.claim(PROBIT, [e["nwgm"] - e["probit"] for e in errs], regime_met=bool(large.any()),
              regime_reason="no grid point has σ ≥ 1", measured=measured)

    d220 = (T.logistic_derivative_mean_first_order(mm) - der_mc).abs()
    d223 = (T.logistic_derivative_mean_second_order(mm, ss ** 2) - der_mc).abs()
    ctx.log(mean_abs_err_eq220=float(d220.mean()), mean_abs_err_eq223=float(d223.mean()))
    ctx.table("grid", [{"mu": float(m), "sigma": float(sg), "relu_mc": float(r), "relu_eq72": float(r72),
                        "sigmoid_mc": float(smc), "nwgm": float(torch.sigmoid(m)),
                        "probit": float(T.logistic_gaussian_mean(m, sg)), "dsigmoid_mc": float(dm)}
                       for m, sg, r, r72, smc, dm in zip(mm.flatten(), ss.flatten(), relu_mc.flatten(),
                                                         relu72.flatten(), sig_mc.flatten(), der_mc.flatten())])

    fig, ax = subplots(1, 3, figsize=(15, 4))
    for j in range(0, cfg.n_sigma, max(1, cfg.n_sigma // 4)):
        line, = ax[0].plot(mu, relu72[:, j], label=f"σ = {float(sigma[j]):.2g}")
        ax[0].scatter(mu, relu_mc[:, j], s=8, color=line.get_color())
        ax[1].plot(mu, T.logistic_gaussian_mean(mu, sigma[j]), color=line.get_color(),
                   label=f"σ = {float(sigma[j]):.2g}")
        ax[1].scatter(mu, sig_mc[:, j], s=8, color=line.get_color())
    ax[0].plot(mu, mu.clamp_min(0), color="black", ls=":", label="RL(μ)")
    ax[1].plot(mu, torch.sigmoid(mu), color="black", ls=":", label="NWGM σ(μ)")
    ax[0].set(xlabel="μ (mean of S)", ylabel="E ReLU(S)", title="eq. 72 (lines) vs Monte Carlo (dots)")
    ax[1].set(xlabel="μ (mean of S)", ylabel="E σ(S)", title="App. F probit (lines) vs Monte Carlo (dots)")
    ax[2].plot(ss[zero], der_mc[zero], "o", label="Monte Carlo, μ = 0")
    ax[2].plot(ss[zero], T.logistic_derivative_mean_second_order(0.0, ss[zero] ** 2), label="eq. 223")
    ax[2].axhline(0.25, color="black", ls=":", label="eq. 220: σ′(μ)")
    ax[2].set(xlabel="σ (std of S)", ylabel="E σ′(S)", title="App. D derivative approximations")
    for x in ax:
        x.legend(fontsize=7)
    ctx.figure(fig, "transfer", f"{ctx.paper}, §7.2 and App. A, D, F: expectations of ReLU, logistic and its "
               f"derivative for Gaussian S (closed forms / approximations as lines, Monte Carlo with K = {k} as dots).",
               claims=[PROBIT.id])
