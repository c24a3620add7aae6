"""Baldi & Sadowski 2014, §11.2–11.5: the expected dropout gradient is the ensemble gradient plus decay.

Reproduce: ``droplab run bs-regularization --profile quick``.

1. Linear units (eqs. 147–148) and a deep linear net (eq. 155): the closed forms against the exact
   expectation by enumeration over all dropout masks.
2. A logistic unit (eq. 164) and the top layer of a logistic net (eq. 181) trained with dropout: at
   checkpoints along training, the expected dropout gradient is estimated by Monte Carlo over masks
   (with its standard error) and compared with the ensemble gradient alone and with the ensemble
   gradient plus the adaptive weight-decay term of the approximation.

B&S's p is the keep probability; droplab layers take the drop probability 1 − p (``scale="none"``).
"""

from __future__ import annotations

from dataclasses import dataclass
from statistics import median
from typing import Any

import torch
from torch import Tensor, nn

from droplab import data as _data
from droplab._checks import check_int, check_positive, check_probability
from droplab.experiments.config import ExperimentConfig
from droplab.experiments.plotting import subplots
from droplab.experiments.registry import experiment
from droplab.experiments.run import RunContext
from droplab.models import FNN
from droplab.nn import BernoulliDropout
from droplab.regularization import (
    deep_linear_decomposition,
    expected_dropout_gradient,
    linear_expected_gradient,
    sigmoid_expected_gradient,
    top_layer_expected_gradient,
)
from droplab.training import TrainConfig, fit

PAPER = "Baldi & Sadowski 2014"


def _bce_sum(o: Tensor, t: Tensor) -> Tensor:
    return nn.functional.binary_cross_entropy_with_logits(o.reshape(t.shape), t, reduction="sum")


def _bce_mean(o: Tensor, t: Tensor) -> Tensor:
    return nn.functional.binary_cross_entropy_with_logits(o.reshape(t.shape), t)


def _half_sse(o: Tensor, t: Tensor) -> Tensor:
    return 0.5 * (o - t).pow(2).sum()


@dataclass
class BSRegularizationConfig(ExperimentConfig):
    keep: float = 0.5
    dim: int = 8
    n_train: int = 200
    hidden: int = 16
    lr: float = 0.5
    steps: int = 600
    n_checkpoints: int = 7
    mc_samples: int = 4000
    exact_rtol: float = 1e-9

    PROFILES = {
        "smoke": {"n_train": 40, "hidden": 6, "steps": 20, "n_checkpoints": 3, "mc_samples": 200},
        "paper": {"n_train": 1000, "hidden": 100, "steps": 5000, "n_checkpoints": 11, "mc_samples": 20000},
    }

    def validate(self) -> None:
        check_probability("keep", self.keep, low_open=True)
        for name in ("dim", "n_train", "hidden", "steps"):
            check_int(name, getattr(self, name), minimum=1)
        check_int("n_checkpoints", self.n_checkpoints, minimum=2)
        check_int("mc_samples", self.mc_samples, minimum=2)
        check_positive("lr", self.lr)
        check_positive("exact_rtol", self.exact_rtol)


def _rel(a: Tensor, b: Tensor) -> float:
    return float((a - b).norm() / b.norm())


def _linear_checks(cfg: BSRegularizationConfig) -> dict[str, float]:
    """Eqs. 147 and 155 against exact enumeration (float64, random nets)."""
    g = torch.Generator().manual_seed(cfg.seed)
    f64 = torch.float64
    keep = torch.rand(6, generator=g, dtype=f64) * 0.8 + 0.1
    torch.manual_seed(cfg.seed)
    unit = nn.Sequential(BernoulliDropout(1 - keep, scale="none"), nn.Linear(6, 2, bias=False)).double()
    x, y = torch.randn(10, 6, generator=g, dtype=f64), torch.randn(10, 2, generator=g, dtype=f64)
    exact = expected_dropout_gradient(unit, _half_sse, (x, y), None)
    ens, decay = linear_expected_gradient(unit[1].weight.detach(), x, y, keep)
    deep = nn.Sequential(
        BernoulliDropout(1 - cfg.keep, scale="none"),
        nn.Linear(4, 3),
        BernoulliDropout(1 - cfg.keep, scale="none"),
        nn.Linear(3, 3),
        BernoulliDropout(1 - cfg.keep, scale="none"),
        nn.Linear(3, 1),
    ).double()
    xd, yd = torch.randn(10, 4, generator=g, dtype=f64), torch.randn(10, 1, generator=g, dtype=f64)
    dec = deep_linear_decomposition(deep, xd, yd)
    ref = expected_dropout_gradient(deep, _half_sse, (xd, yd), None)
    flat = lambda d: torch.cat([v.reshape(-1) for v in d.values()])  # noqa: E731
    rhs = flat(dec.ensemble) + flat(dec.weight_decay) + flat(dec.covariance)
    return {
        "eq147_rel_error": _rel(ens + decay, exact.mean["1.weight"]),
        "eq147_ensemble_rel_error": _rel(ens, exact.ensemble["1.weight"]),
        "eq155_rel_error": _rel(rhs, flat(ref.mean)),
        "eq155_cov_over_decay": float(flat(dec.covariance).norm() / flat(dec.weight_decay).norm()),
        "eq155_decay_over_expected": float(flat(dec.weight_decay).norm() / flat(ref.mean).norm()),
    }


def _train_and_compare(
    cfg: BSRegularizationConfig, model: nn.Module, x: Tensor, y: Tensor, param: str, approx
) -> list[dict[str, Any]]:
    """Train with dropout (GD on the mean BCE); at checkpoints compare MC E[∇] with approximations."""
    rows = []
    chunk = max(cfg.steps // (cfg.n_checkpoints - 1), 1)
    for c in range(cfg.n_checkpoints):
        if c:
            fit(
                model, _bce_mean, x, y, TrainConfig(optimizer="gd", lr=cfg.lr, steps=chunk, seed=cfg.seed + c)
            )
        mc = expected_dropout_gradient(
            model,
            _bce_sum,
            (x, y),
            cfg.mc_samples,
            generator=torch.Generator().manual_seed(cfg.seed + 1000 + c),
        )
        ens, decay = approx(model)
        e, se = mc.mean[param], mc.stderr[param]
        rows.append(
            {
                "step": c * chunk,
                "err_ensemble": _rel(ens, e),
                "err_ensemble_plus_decay": _rel(ens + decay, e),
                "mc_rel_stderr": float(se.norm() / e.norm()),
                "decay_rel_size": float(decay.norm() / e.norm()),
            }
        )
    return rows


@experiment(
    "bs-regularization",
    paper=PAPER,
    reproduces="§11.2–11.5, eqs. 147–148, 155, 164–165, 181: expected dropout gradient = ensemble + decay",
    config=BSRegularizationConfig,
)
def run(cfg: BSRegularizationConfig, ctx: RunContext) -> None:
    exact = ctx.stage("linear_exact", lambda: _linear_checks(cfg))
    ctx.log(**exact)
    ds = _data.load(
        "teacher",
        "train",
        n_train=cfg.n_train,
        dim=cfg.dim,
        hidden=cfg.hidden,
        task="classification",
        n_classes=2,
        seed=cfg.seed,
    )
    x, y = ds.x.double(), ds.y.double()
    drop = 1 - cfg.keep

    def unit_rows() -> list[dict[str, Any]]:
        torch.manual_seed(cfg.seed)
        unit = nn.Sequential(BernoulliDropout(drop, scale="none"), nn.Linear(cfg.dim, 1, bias=False)).double()
        return _train_and_compare(
            cfg,
            unit,
            x,
            y,
            "1.weight",
            lambda m: tuple(
                v.unsqueeze(0) for v in sigmoid_expected_gradient(m[1].weight.detach()[0], x, y, cfg.keep)
            ),
        )

    def top_rows() -> list[dict[str, Any]]:
        torch.manual_seed(cfg.seed)
        net = FNN(
            [cfg.dim, cfg.hidden, 1],
            "logistic",
            dropout={1: drop},
            noise=lambda p: BernoulliDropout(p, scale="none"),
        ).double()
        return _train_and_compare(
            cfg, net, x, y, "net.3.weight", lambda m: top_layer_expected_gradient(m, x, y.unsqueeze(1))
        )

    tables = {
        "eq164_sigmoid_unit": ctx.stage("eq164", unit_rows),
        "eq181_top_layer": ctx.stage("eq181", top_rows),
    }
    for name, rows in tables.items():
        ctx.table(name, rows)

    fig, ax = subplots(1, 2, figsize=(10, 3.8))
    for a, (name, rows) in zip(ax, tables.items()):
        steps = [r["step"] for r in rows]
        a.plot(steps, [r["err_ensemble"] for r in rows], "o-", label="ensemble gradient alone")
        a.plot(steps, [r["err_ensemble_plus_decay"] for r in rows], "s-", label="ensemble + adaptive decay")
        a.plot(steps, [r["mc_rel_stderr"] for r in rows], ":", color="gray", label="MC standard error")
        a.set(
            xlabel="training step (GD with dropout)",
            ylabel="relative error vs E[∂E_D/∂w] (Monte Carlo)",
            title=name.replace("_", " "),
            yscale="log",
        )
        a.legend(fontsize=8)
    ctx.figure(
        fig,
        "approximation_errors",
        f"{PAPER}, eqs. 164 and 181: relative error of the ensemble gradient "
        "and of the ensemble gradient plus the adaptive weight-decay term against the Monte Carlo expected "
        f"dropout gradient, along training (keep p = {cfg.keep}, {cfg.mc_samples} masks per estimate).",
    )

    ctx.legacy_claim(
        id="bs-eq147-148",
        paper=PAPER,
        where="§11.2, eqs. 147–148",
        statement="For linear units E[∂E_D/∂w_i] = ∂E_ENS/∂w_i + w_i I_i² Var δ_i (regularizer eq. 148).",
        criterion=f"Relative error against exact enumeration over all masks ≤ {cfg.exact_rtol:g}.",
        measured={k: exact[k] for k in ("eq147_rel_error", "eq147_ensemble_rel_error")},
        outcome=exact["eq147_rel_error"] <= cfg.exact_rtol,
    )
    ctx.legacy_claim(
        id="bs-eq155",
        paper=PAPER,
        where="§11.3, eq. 155",
        statement="For deep linear nets E[∂E_D/∂w] = ∂E_ENS/∂w + w Var(α) + Cov(α, β).",
        criterion=f"Relative error against exact enumeration over all masks ≤ {cfg.exact_rtol:g}.",
        measured={
            k: exact[k] for k in ("eq155_rel_error", "eq155_cov_over_decay", "eq155_decay_over_expected")
        },
        outcome=exact["eq155_rel_error"] <= cfg.exact_rtol,
    )
    ctx.legacy_claim(
        id="bs-eq155-cov-small",
        paper=PAPER,
        where="§11.3, after eq. 155",
        statement="In general the covariance term Cov(α, β) is small (next to the weight-decay term).",
        criterion="‖Cov(α, β)‖ < ‖w Var(α)‖ over all parameters of a 3-layer linear net with dropout "
        "before every layer (exact enumeration).",
        measured={"cov_over_decay": exact["eq155_cov_over_decay"]},
        outcome=exact["eq155_cov_over_decay"] < 1.0,
    )
    for cid, where, name in (
        ("bs-eq164", "§11.4, eqs. 164–165", "eq164_sigmoid_unit"),
        ("bs-eq181", "§11.5, eqs. 179–181", "eq181_top_layer"),
    ):
        rows = tables[name]
        med_ens = median(r["err_ensemble"] for r in rows)
        med_dec = median(r["err_ensemble_plus_decay"] for r in rows)
        noise = max(r["mc_rel_stderr"] for r in rows)
        ctx.legacy_claim(
            id=cid,
            paper=PAPER,
            where=where,
            statement="The expected dropout gradient is approximately the ensemble gradient plus an adaptive "
            "weight-decay term (λσ'(U) w Var(δ O)).",
            criterion="Median over training checkpoints of the relative error vs the Monte Carlo expectation "
            "is smaller for ensemble + decay than for the ensemble gradient alone; inconclusive if "
            "the largest relative MC standard error exceeds the smaller median error.",
            measured={
                "median_err_ensemble": med_ens,
                "median_err_ensemble_plus_decay": med_dec,
                "max_mc_rel_stderr": noise,
            },
            outcome=None if noise > min(med_ens, med_dec) else med_dec < med_ens,
        )
