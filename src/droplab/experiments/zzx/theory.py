"""Zhang, Zhou & Xu 2024, §8 and App. B: Theorems 1–2 and Proposition 1 against empirical matrices.

Reproduce: ``droplab run zzx-theory --profile quick``. Settings 1–3: a ReLU FNN in-h-h-1 with one
dropout layer (keep p) right before the last linear layer, the MSE risk (1/2n) Σ (f − y)² on binary
targets y ∈ {0, 1} (Proposition 1's setting: the parity of the digit), trained by full-batch GD with
dropout until the expected gradient is small (Assumption 1). On the block of the hidden-to-hidden
layer's weight and bias, at the trained θ:

* Theorem 1's closed-form H against the empirical expected Hessian E_η ∇²R^drop (the mean of the
  exact Hessians at ``n_masks`` drawn per-example masks, with its entrywise standard error);
* Theorem 2's closed-form Σ^drop against the covariance of ``n_samples`` single-example dropout
  gradients (i uniform, fresh mask: App. B.2's definition);
* Proposition 1's orderings c_low·H ⪯ Σ ⪯ c_high·H (c_low = min_i min(a_i, b_i) ≥ δ² for outputs in
  [δ, 1 − δ], c_high = max_i max(a_i, b_i) ≤ (δ + ε)² on Ω) on the empirical matrices, by eigenvalues.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from droplab._checks import check_probability
from droplab._params import layer_block
from droplab.data import Dataset
from droplab.experiments.claims import load_claims
from droplab.experiments.common import load_task, train_stage
from droplab.experiments.config import ExperimentConfig
from droplab.experiments.plotting import subplots
from droplab.experiments.registry import experiment
from droplab.experiments.run import RunContext
from droplab.landscape import block_hessian
from droplab.models import FNN
from droplab.nn.modes import evaluation
from droplab.noise_structure import (
    example_gradient_samples,
    half_mse,
    matrix_agreement,
    proposition1,
    theorem_matrices,
)
from droplab.training import TrainConfig

PAPER = "Zhang, Zhou & Xu 2024"
MAX_SCATTER = 20_000  # matrix entries drawn in the closed-form-vs-empirical scatter (all enter the cosine)


@dataclass
class TheoryConfig(ExperimentConfig):
    """ReLU FNN in-h-h-1, dropout (keep p) before the last layer, half-MSE on the digit's parity, GD."""

    dataset: str = "mnist-5k"
    n_train: int | None = None
    hidden: int = 50
    keep: float = 0.8
    lr: float = 0.1
    steps: int = 1000
    n_masks: int = 32
    n_samples: int = 20000
    cosine_min: float = 0.9
    psd_tol: float = 0.05

    PROFILES = {
        "smoke": {"n_train": 200, "hidden": 8, "steps": 200, "n_masks": 8, "n_samples": 2000},
        "paper": {"dataset": "mnist", "n_train": 10000, "steps": 20000, "n_masks": 64, "n_samples": 100000},
    }

    def validate(self) -> None:
        check_probability("keep", self.keep, low_open=True, high_open=True)
        for name in ("cosine_min", "psd_tol"):
            check_probability(name, getattr(self, name), low_open=True)


def _binary(data: Dataset) -> Dataset:
    """Targets y = label mod 2 as floats (Proposition 1's binary classification by regression)."""
    return Dataset(data.name, data.split, data.x, (data.y % 2).to(data.x.dtype), None, dict(data.meta))


SPECS = load_claims(__package__)
THM1, THM2, PROP1 = SPECS["zzx-thm1-hessian"], SPECS["zzx-thm2-covariance"], SPECS["zzx-prop1-orderings"]


@experiment("zzx-theory", paper=PAPER,
            reproduces="§8 Theorems 1–2, Proposition 1: closed-form Hessian and dropout covariance vs empirical",
            config=TheoryConfig, claims=[THM1, THM2, PROP1])
def run(cfg: TheoryConfig, ctx: RunContext) -> None:
    train, test = (_binary(d) for d in load_task(cfg.dataset, cfg.n_train, device=cfg.device))
    torch.manual_seed(cfg.seed)
    model = FNN([train.in_features, cfg.hidden, cfg.hidden, 1], "relu", dropout={2: 1 - cfg.keep})
    train_stage(ctx, "train", model, half_mse, train, test,
                TrainConfig(optimizer="gd", lr=cfg.lr, steps=cfg.steps, seed=cfg.seed))
    data = (train.x, train.y)
    block = layer_block(model, nn.Linear, 1)  # the hidden-to-hidden layer

    def measure() -> dict[str, torch.Tensor]:
        th = theorem_matrices(model, data, block)
        emp_h = block_hessian(model, half_mse, data, block, loss="expected", n_masks=cfg.n_masks,
                              generator=ctx.generator(1))
        grads = example_gradient_samples(model, data, cfg.n_samples, block, generator=ctx.generator(2))
        with evaluation(model), torch.no_grad():
            out = model(train.x).reshape(-1)
        return {"h_theory": th.hessian, "sigma_theory": th.covariance, "a": th.a, "b": th.b,
                "h_empirical": emp_h.matrix, "h_stderr": emp_h.stderr,
                "sigma_empirical": torch.cov(grads.T, correction=0),
                "mean_gradient": grads.mean(0), "outputs": out}

    m = ctx.stage("matrices", measure)
    h_th, s_th, h_emp, s_emp = m["h_theory"], m["sigma_theory"], m["h_empirical"], m["sigma_empirical"]
    agree_h, agree_s = matrix_agreement(h_th, h_emp), matrix_agreement(s_th, s_emp)
    rel_se = float(m["h_stderr"].norm() / h_emp.norm())  # ‖MC error of H_emp‖_F ≈ ‖entrywise SE‖_F
    order_theory = proposition1(h_th, s_th, m["a"], m["b"])
    order_emp = proposition1(h_emp, s_emp, m["a"], m["b"])
    y = train.y.reshape(-1)
    delta = float(torch.minimum(m["outputs"], 1 - m["outputs"]).min())
    grad_ratio = float(m["mean_gradient"].norm() / s_emp.trace().sqrt())
    ctx.log(hessian=agree_h, covariance=agree_s, hessian_relative_stderr=rel_se, output_delta=delta,
            c_low=order_emp.c_low, c_high=order_emp.c_high, expected_gradient_over_noise=grad_ratio,
            train_mse=float(((m["outputs"] - y) ** 2).mean()), block_dim=h_th.shape[0])

    fig, axes = subplots(1, 3, figsize=(14, 4))
    n_entries = h_th.numel()  # D² entries (6.5 M at D = 2,550): plot a fixed random subset of them
    shown = torch.randperm(n_entries, generator=ctx.generator(3))[:MAX_SCATTER] if n_entries > MAX_SCATTER else None
    for ax, (a, b, name) in zip(axes[:2], ((h_th, h_emp, "H"), (s_th, s_emp, "Σ"))):
        xs, ys = b.reshape(-1), a.reshape(-1)
        ax.plot(xs if shown is None else xs[shown], ys if shown is None else ys[shown], ".", ms=1)
        lim = float(torch.cat([a.reshape(-1), b.reshape(-1)]).abs().max())
        ax.plot([-lim, lim], [-lim, lim], "k:", lw=0.8)
        ax.set(xlabel=f"empirical {name} entry", ylabel=f"closed-form {name} entry (Theorem {1 if name == 'H' else 2})",
               title=f"{name}: cosine {matrix_agreement(a, b)['cosine']:.3f}")
    lam = lambda t: torch.linalg.eigvalsh(t).flip(0).clamp_min(1e-12)  # noqa: E731
    axes[2].semilogy(lam(s_emp), label="Σ (empirical)")
    axes[2].semilogy(lam(order_emp.c_low * h_emp), "--", label="c_low·H (empirical)")
    axes[2].semilogy(lam(order_emp.c_high * h_emp), ":", label="c_high·H (empirical)")
    axes[2].set(xlabel="eigenvalue index i", ylabel="eigenvalue (squared gradient units)",
                title="Proposition 1: spectra")
    axes[2].legend(fontsize=7)
    ctx.figure(fig, "theory", f"{ctx.paper}, §8 (Theorems 1–2, Proposition 1): closed-form against empirical "
               f"matrices on the {h_th.shape[0]}-parameter hidden-to-hidden block of a ReLU FNN "
               f"{train.in_features}-{cfg.hidden}-{cfg.hidden}-1 (dropout keep {cfg.keep} before the last layer), "
               f"half-MSE on {cfg.dataset} digit parity; empirical H from {cfg.n_masks} masks, Σ from "
               f"{cfg.n_samples} single-example dropout gradients; the scatters show at most {MAX_SCATTER:,} "
               "entries.", claims=[THM1.id, THM2.id, PROP1.id])

    ctx.check(THM1, agree_h["relative_error"] <= 3 * rel_se, {**agree_h, "relative_stderr": rel_se})
    ctx.check(THM2, min(agree_s["cosine"], agree_s["top_eigenvector_cosine"]) >= cfg.cosine_min,
              {**agree_s, "cosine_min": cfg.cosine_min, "expected_gradient_over_noise": grad_ratio})
    ctx.check(PROP1, order_emp.holds(cfg.psd_tol),
              {"c_low": order_emp.c_low, "c_high": order_emp.c_high, "output_delta": delta,
               "min_eig_lower_rel": order_emp.min_eig_lower / order_emp.scale,
               "min_eig_upper_rel": order_emp.min_eig_upper / order_emp.scale,
               "theory_holds": order_theory.holds(), "sqrt_c_low": math.sqrt(max(order_emp.c_low, 0.0))})
