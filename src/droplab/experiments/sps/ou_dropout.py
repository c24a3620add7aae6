"""SPS "Contributions": Ornstein–Uhlenbeck dropout — how noise correlation in time changes noisy GD.

Reproduce: ``droplab run sps-ou-dropout --profile quick``.

Per seed, from the seed's point of the zero-loss manifold of the teacher–student ReLU regression,
Gaussian-dropout GD runs with filters ``1 + η`` whose η follows an OU process of stationary variance σ²
(fixed) and correlation time τ steps (τ = 0: independent Gaussian dropout), for t_end in rescaled time
t = kασ². At the end the regularizer Δ_η L̂ (relative to its value at the start on Γ) and the test MSE on
fresh teacher points are measured; the figure shows both against τ with 95% t-intervals over seeds. The
poster poses this as a question ("study the effect of the noise-correlation on the performance of noisy
GD") and states no result, so no claim is registered: the numbers are measurements.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from droplab._checks import check_int, check_positive
from droplab.dynamics import FlatModel
from droplab.experiments.claims import interval
from droplab.experiments.plotting import subplots
from droplab.experiments.registry import experiment
from droplab.experiments.run import RunContext
from droplab.experiments.sps.common import PAPER, TeacherStudentConfig, seed_chains, seed_problem, teacher_data


@dataclass
class OUConfig(TeacherStudentConfig):
    alpha: float = 0.01
    sigma: float = 0.25
    taus: tuple[float, ...] = (0.0, 2.0, 8.0, 32.0)
    t_end: float = 1.0
    n_test: int = 500

    PROFILES = {
        "smoke": {"n_train": 5, "dim": 3, "hidden": (8,), "alpha": 0.04, "sigma": 0.4, "taus": (0.0, 4.0),
                  "t_end": 0.2, "gd_tol": 1e-2, "gd_lr": 0.1, "n_test": 100},
        "paper": {"n_train": 20, "dim": 10, "teacher_hidden": 10, "hidden": (100,), "t_end": 2.0,
                  "alpha": 0.0025, "sigma": 0.16, "taus": (0.0, 1.0, 4.0, 16.0, 64.0), "gd_max_steps": 100000},
    }

    def validate(self) -> None:
        super().validate()
        check_positive("alpha", self.alpha)
        check_positive("sigma", self.sigma)
        check_positive("t_end", self.t_end)
        check_int("n_test", self.n_test, minimum=1)
        if not self.taus:
            raise ValueError("taus must list at least one correlation time (0 = independent noise)")
        for i, tau in enumerate(self.taus):
            check_positive(f"taus[{i}]", tau, allow_zero=True)


def _summary(values: list[float]) -> dict[str, float]:
    est, (lo, hi) = interval("t", values)
    return {"mean": est, "lo": lo, "hi": hi}


@experiment("sps-ou-dropout", paper=PAPER,
            reproduces="Contributions: Ornstein–Uhlenbeck dropout, noise correlation vs regularizer and test "
                       "error (measurements; the poster states no result)",
            config=OUConfig)
def run(cfg: OUConfig, ctx: RunContext) -> None:
    seeds = ctx.seeds()
    problems = {s: seed_problem(ctx, cfg, s) for s in seeds}
    train = {s: FlatModel(p[2], p[0], p[1]) for s, p in problems.items()}
    test = {s: FlatModel(problems[s][2], *teacher_data(cfg, "test", cfg.n_test, seed=s)) for s in seeds}
    start = {s: (train[s].laplacian(problems[s][3]), test[s].loss(problems[s][3])) for s in seeds}
    per_seed, rows = [], []
    for i, tau in enumerate(cfg.taus):
        ends = ctx.stage(f"ou_gd_tau{i}", lambda tau=tau, i=i: seed_chains(
            problems, seeds, alpha=cfg.alpha, sigma=cfg.sigma, t_end=cfg.t_end, n_records=2, correlation_steps=tau,
            generator=ctx.generator(200 + i))[:, -1])
        mine = [{"seed": s, "tau_steps": tau, "laplacian_ratio": train[s].laplacian(ends[c]) / start[s][0],
                 "train_mse_end": train[s].loss(ends[c]), "test_mse_start": start[s][1],
                 "test_mse_end": test[s].loss(ends[c])} for c, s in enumerate(seeds)]
        for m in mine:
            m["test_mse_change"] = m["test_mse_end"] - m["test_mse_start"]
        per_seed += mine
        rows.append({"tau_steps": tau, **{f"{key}_{k}": v for key in ("laplacian_ratio", "test_mse_change")
                                          for k, v in _summary([m[key] for m in mine]).items()}})
    ctx.table("ou_dropout_per_seed", per_seed)
    ctx.table("ou_dropout", rows)
    ctx.log(test_mse_start=_summary([start[s][1] for s in seeds]), n_seeds=len(seeds))

    fig, ax = subplots(1, 2, figsize=(10, 3.8))
    taus = np.array(cfg.taus, dtype=float)
    for a, key, label in ((ax[0], "test_mse_change", "test MSE(t_end) − test MSE(0), same seed"),
                          (ax[1], "laplacian_ratio", "Δ_η L̂(t_end) / Δ_η L̂(0)")):
        for s in seeds:
            a.plot(taus, [m[key] for m in per_seed if m["seed"] == s], "-", color="gray", alpha=0.4, lw=0.8)
        mean = np.array([r[f"{key}_mean"] for r in rows])
        lo, hi = np.array([r[f"{key}_lo"] for r in rows]), np.array([r[f"{key}_hi"] for r in rows])
        a.errorbar(taus, mean, yerr=[mean - lo, hi - mean], fmt="o-", color="tab:red", capsize=3,
                   label=f"mean, 95% t-interval ({len(seeds)} seeds)")
        a.set_xscale("symlog", linthresh=1.0)
        a.set(xlabel="OU correlation time τ (steps; 0: independent)", ylabel=label)
    ax[0].axhline(0.0, color="gray", ls=":", label="no change from the GD solution on Γ")
    ax[1].axhline(1.0, color="gray", ls=":", label="no change")
    ax[0].set_title("test error vs noise correlation")
    ax[1].set_title("regularizer vs noise correlation")
    for a in ax:
        a.legend(fontsize=7)
    ctx.figure(fig, "ou_dropout", f"{ctx.paper}, OU dropout (poster, Contributions; a question, no result stated): "
               f"Gaussian-dropout GD (α={cfg.alpha}, σ={cfg.sigma}, t_end={cfg.t_end} in rescaled time) from Γ with "
               "OU-correlated filters of equal stationary variance σ², against the correlation time τ: the change "
               "of test MSE (fresh teacher points) and the regularizer relative to its start, per seed (gray) and "
               "mean with 95% t-intervals.")
