"""SPS poster, "Example": the ReLU/L2 closed form of Δ_η L̂ on Γ, and the decay of the regularizer (n = 2).

Reproduce: ``droplab run sps-regularizer --profile quick``.

Per seed a ReLU student fits a teacher on few points (so the zero-loss set Γ is a manifold) by plain GD,
then a Gauss–Newton retraction puts it on Γ exactly. There the closed form (:func:`droplab.regularization.
relu_l2_laplacian`) is compared with the autograd Laplacian (:func:`droplab.regularization.noise_laplacian`),
for n = 2 on every seed and n = 3 on the first. The poster prints ‖∂yⁿ/∂z^{k+1} W^{k+1} y^k‖²; the closed
form that the derivation gives has diag(y^k) in place of the vector y^k:

    L̂(w, η) = (1/(Nm)) Σ_i ‖f(x_i; η) − t_i‖²  ⇒  ∂²L̂/∂(η^k_j)² = (2/(Nm)) Σ_i [‖∂f_i/∂η^k_j‖²
    + (f_i − t_i)·∂²f_i/∂(η^k_j)²];  f is piecewise linear in each single η^k_j (ReLU), so the second
    term is 0 a.e.;  ∂f_i/∂η^k_j = (∂yⁿ/∂z^{k+1}) W^{k+1}_{:,j} y^k_j(x_i), and Σ_j of its squared norm
    is ‖(∂yⁿ/∂z^{k+1}) W^{k+1} diag(y^k(x_i))‖²_F.

With the vector y^k the sum over the units j would sit inside the norm (cross terms between units), which is
not the trace Δ_η = Σ_j ∂²/∂η_j². Then Gaussian-dropout GD (step α, noise σ) runs from each seed's point of
Γ, and Δ_η L̂ is recorded in rescaled time t = kασ², beside the limiting projected flow: the poster's
"Decay of regularizer for n = 2 layers" figure.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from droplab._checks import check_positive
from droplab.dynamics import FlatModel
from droplab.experiments.claims import load_claims
from droplab.experiments.plotting import subplots
from droplab.experiments.registry import experiment
from droplab.experiments.run import RunContext
from droplab.experiments.sps.common import (
    MSE,
    PAPER,
    FlowConfig,
    on_manifold,
    seed_chains,
    seed_flows,
    seed_problem,
    student,
    teacher_data,
)
from droplab.regularization import noise_laplacian, relu_l2_laplacian


@dataclass
class RegularizerConfig(FlowConfig):
    """Dropout GD's step ``alpha`` and noise ``sigma``; ``closed_form_rtol``: the check's tolerance (float64
    round-off of two exact computations)."""

    alpha: float = 0.01
    sigma: float = 0.25
    closed_form_rtol: float = 1e-8

    PROFILES = {
        "smoke": {"n_train": 5, "dim": 3, "hidden": (8,), "t_end": 0.2, "n_records": 3, "flow_dt": 0.05,
                  "gd_tol": 1e-2, "gd_lr": 0.1, "alpha": 0.04, "sigma": 0.4},
        "paper": {"n_train": 20, "dim": 10, "teacher_hidden": 10, "hidden": (100,), "t_end": 2.0,
                  "alpha": 0.0025, "sigma": 0.16, "gd_max_steps": 100000},
    }

    def validate(self) -> None:
        super().validate()
        for name in ("alpha", "sigma", "closed_form_rtol"):
            check_positive(name, getattr(self, name))


SPECS = load_claims(__package__)
CLOSED_FORM, FLOW_DESCENT, DECAY = SPECS["sps-closed-form"], SPECS["sps-flow-descent"], SPECS["sps-regularizer-decay"]


@experiment("sps-regularizer", paper=PAPER,
            reproduces="Example: closed-form ReLU/L2 regularizer vs autograd on Γ; its decay, n = 2",
            config=RegularizerConfig, claims=[CLOSED_FORM, FLOW_DESCENT, DECAY])
def run(cfg: RegularizerConfig, ctx: RunContext) -> None:
    seeds = ctx.seeds()
    problems = {s: seed_problem(ctx, cfg, s) for s in seeds}
    rows = []
    cases = [(s, 2, *problems[s]) for s in seeds]
    x3, y3 = teacher_data(cfg, seed=seeds[0])
    deep = student(cfg, (cfg.hidden[0], cfg.hidden[0]), seed=seeds[0])
    cases.append((seeds[0], 3, x3, y3, deep, on_manifold(ctx, f"gd_to_gamma_n3_s{seeds[0]}", cfg, deep, x3, y3)))
    for s, n_layers, x, y, model, w0 in cases:
        flat = FlatModel(model, x, y)
        on_gamma = flat.load(w0)
        closed, auto = float(relu_l2_laplacian(on_gamma, x)), float(noise_laplacian(on_gamma, MSE, x, y))
        rows.append({"seed": s, "n_layers": n_layers, "loss_on_gamma": flat.loss(w0), "closed_form": closed,
                     "autograd": auto, "rel_error": abs(closed - auto) / abs(auto)})
    ctx.table("closed_form_vs_autograd", rows)
    worst = max(r["rel_error"] for r in rows)
    ctx.check(CLOSED_FORM, worst <= cfg.closed_form_rtol,
              {"max_rel_error": worst, "rel_errors": [r["rel_error"] for r in rows]})

    flows = seed_flows(ctx, cfg, problems)
    ctx.check(FLOW_DESCENT, all(bool((f.laplacian[1:] <= f.laplacian[:-1]).all()) and float(f.loss.max()) <= 1e-12
                                for f in flows.values()),
              {"flow_laplacian_start": [float(f.laplacian[0]) for f in flows.values()],
               "flow_laplacian_end": [float(f.laplacian[-1]) for f in flows.values()],
               "flow_max_loss": max(float(f.loss.max()) for f in flows.values())})

    paths = ctx.stage("dropout_gd_chains", lambda: seed_chains(  # (seeds, records, P)
        problems, seeds, alpha=cfg.alpha, sigma=cfg.sigma, t_end=cfg.t_end, n_records=cfg.n_records,
        generator=ctx.generator(1)))
    lap, loss = {}, {}
    for c, s in enumerate(seeds):
        flat = FlatModel(problems[s][2], problems[s][0], problems[s][1])
        lap[s] = np.array([flat.laplacian(w) for w in paths[c]])
        loss[s] = np.array([flat.loss(w) for w in paths[c]])
    times = flows[seeds[0]].times
    ctx.table("decay", [{"seed": s, "t": float(t), "laplacian_gd": float(lap[s][j]),
                         "laplacian_flow": float(flows[s].laplacian[j]), "loss_gd": float(loss[s][j])}
                        for s in seeds for j, t in enumerate(times)])

    fig, ax = subplots(1, 2, figsize=(10, 3.8))
    for s in seeds:
        p = ax[0].plot(times, 0.5 * cfg.sigma**2 * lap[s], "o-", ms=3, label=f"dropout GD, seed {s}")
        ax[0].plot(times, 0.5 * cfg.sigma**2 * flows[s].laplacian, "--", color=p[0].get_color(), lw=1)
        ax[1].semilogy(times, np.maximum(loss[s], 1e-300), "o-", ms=3, color=p[0].get_color(), label=f"seed {s}")
    ax[0].set(xlabel="rescaled time t = kασ²", ylabel="regularizer ½σ²Δ_η L̂(w, 0) (squared output units)",
              title=f"decay of the regularizer, n = 2 (α={cfg.alpha}, σ={cfg.sigma}); dashed: flow")
    ax[0].legend(fontsize=7)
    ax[1].set(xlabel="rescaled time t = kασ²", ylabel="training loss L(w) (MSE)", title="distance from Γ")
    ax[1].legend(fontsize=7)
    ctx.figure(fig, "regularizer_decay", f"{ctx.paper}, poster figure \"Decay of regularizer for n = 2 layers\": "
               f"½σ²Δ_η L̂ along Gaussian-dropout GD from a point of Γ (teacher–student, {cfg.n_train} points, "
               f"{cfg.hidden[0]} hidden ReLU units, {len(seeds)} seeds) in rescaled time, the limiting flow "
               "dashed; right: the ensemble training loss along dropout GD.", claims=[DECAY.id])

    max_loss = [float(loss[s].max()) for s in seeds]
    ctx.claim(DECAY, [float(np.log(lap[s][-1] / lap[s][0])) for s in seeds],
              regime_met=[m <= cfg.max_loss for m in max_loss], regime_values={"max_loss_gd": max_loss},
              regime_reason=f"dropout GD left the neighbourhood of Γ (training MSE > {cfg.max_loss})",
              measured={"laplacian_t0": [float(lap[s][0]) for s in seeds],
                        "laplacian_end_gd": [float(lap[s][-1]) for s in seeds],
                        "laplacian_end_flow": [float(flows[s].laplacian[-1]) for s in seeds], "t_end": cfg.t_end})
