"""SPS "Contributions": Ornstein–Uhlenbeck dropout — how noise correlation in time changes noisy GD.

Reproduce: ``droplab run sps-ou-dropout --profile quick``.

From one point of the zero-loss manifold of the teacher–student ReLU regression, Gaussian-dropout GD
runs with filters ``1 + η`` whose η follows an OU process of stationary variance σ² (fixed) and
correlation time τ steps (τ = 0: independent Gaussian dropout). For each τ the regularizer Δ_η L̂ is
recorded in rescaled time t = kασ² and the test error on fresh teacher points is measured at the
end. The poster poses this as a question and states no result, so no claim is registered; the
numbers are reported as measurements.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from droplab._checks import check_int, check_positive
from droplab.dynamics import FlatModel, ou_dropout_gd
from droplab.experiments.plotting import subplots
from droplab.experiments.registry import experiment
from droplab.experiments.run import RunContext
from droplab.experiments.sps.common import (
    PAPER,
    TeacherStudentConfig,
    on_manifold,
    student,
    teacher_data,
    trajectory_stage,
)


@dataclass
class OUConfig(TeacherStudentConfig):
    alpha: float = 0.01
    sigma: float = 0.25
    taus: tuple[float, ...] = (0.0, 2.0, 8.0, 32.0)
    t_end: float = 2.0
    n_records: int = 11
    n_test: int = 500

    PROFILES = {
        "smoke": {
            "n_train": 5,
            "dim": 3,
            "hidden": (8,),
            "alpha": 0.04,
            "sigma": 0.4,
            "taus": (0.0, 4.0),
            "t_end": 0.3,
            "n_records": 3,
            "gd_tol": 1e-3,
            "gd_lr": 0.1,
            "n_test": 100,
        },
        "paper": {
            "n_train": 20,
            "dim": 10,
            "teacher_hidden": 10,
            "hidden": (100,),
            "t_end": 5.0,
            "alpha": 0.0025,
            "sigma": 0.16,
            "taus": (0.0, 1.0, 4.0, 16.0, 64.0),
            "gd_max_steps": 100000,
        },
    }

    def validate(self) -> None:
        super().validate()
        check_positive("alpha", self.alpha)
        check_positive("sigma", self.sigma)
        check_positive("t_end", self.t_end)
        check_int("n_records", self.n_records, minimum=2)
        check_int("n_test", self.n_test, minimum=1)
        if not self.taus:
            raise ValueError("taus must list at least one correlation time (0 = independent noise)")
        for i, tau in enumerate(self.taus):
            check_positive(f"taus[{i}]", tau, allow_zero=True)


@experiment(
    "sps-ou-dropout",
    paper=PAPER,
    reproduces="Contributions: Ornstein–Uhlenbeck dropout, noise correlation vs regularizer decay and "
    "test error",
    config=OUConfig,
)
def run(cfg: OUConfig, ctx: RunContext) -> None:
    x, y = teacher_data(cfg)
    xt, yt = teacher_data(cfg, "test", cfg.n_test)
    model = student(cfg, sigma=cfg.sigma)
    w0 = on_manifold(ctx, "gd_to_gamma", cfg, model, x, y)
    test = FlatModel(model, xt, yt)
    rows, paths = [], []
    for i, tau in enumerate(cfg.taus):
        gd = trajectory_stage(
            ctx,
            f"ou_gd_{i}",
            lambda tau=tau, i=i: ou_dropout_gd(
                model,
                x,
                y,
                w0,
                alpha=cfg.alpha,
                sigma=cfg.sigma,
                tau=tau,
                t_end=cfg.t_end,
                n_records=cfg.n_records,
                generator=torch.Generator().manual_seed(cfg.seed + 200 + i),
            ),
        )
        paths.append((tau, gd))
        rows.append(
            {
                "tau_steps": tau,
                "laplacian_start": float(gd.laplacian[0]),
                "laplacian_end": float(gd.laplacian[-1]),
                "relative_decay": float(1 - gd.laplacian[-1] / gd.laplacian[0]),
                "train_loss_end": float(gd.loss[-1]),
                "test_mse_start": test.loss(gd.params[0]),
                "test_mse_end": test.loss(gd.params[-1]),
            }
        )
    ctx.table("ou_dropout", rows)

    fig, ax = subplots(1, 2, figsize=(10, 3.8))
    for tau, gd in paths:
        ax[0].plot(gd.times, gd.laplacian, "o-", ms=3, label=f"τ = {tau:g} steps")
    ax[0].set(
        xlabel="rescaled time t = kασ²",
        ylabel="Δ_η L̂(w, 0) (MSE per unit noise variance)",
        title=f"regularizer under OU dropout (α={cfg.alpha}, σ={cfg.sigma})",
    )
    ax[0].legend(fontsize=8)
    ax[1].plot(
        [r["tau_steps"] for r in rows], [r["test_mse_end"] for r in rows], "o-", label="end of dropout GD"
    )
    ax[1].axhline(rows[0]["test_mse_start"], color="gray", ls=":", label="start (GD solution on Γ)")
    ax[1].set(
        xlabel="OU correlation time τ (steps)",
        ylabel="test MSE (teacher, fresh points)",
        title="test error vs noise correlation",
    )
    ax[1].legend(fontsize=8)
    ctx.figure(
        fig,
        "ou_dropout",
        f"{PAPER}, OU dropout (poster, Contributions): the regularizer Δ_η L̂ along "
        "Gaussian-dropout GD with OU-correlated filters of equal stationary variance σ², for several "
        "correlation times τ, in rescaled time; right: test MSE at the end.",
    )
