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
from droplab.experiments.claims import load_claims
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
    """Keep probability ``keep``; a logistic unit and a ``dim``-``hidden``-1 logistic net trained by dropout
    GD (``lr``, ``steps``) on ``n_train`` examples of a ``dim``-``hidden`` teacher, ``mc_samples`` masks per
    expected-gradient estimate at ``n_checkpoints`` checkpoints; the linear closed forms (eqs. 147,
    155) must match enumeration within relative ``exact_rtol``."""

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


def _deep_linear(keep: float) -> nn.Sequential:
    """The 4-3-3-1 linear net of eq. 155's check, with dropout (keep ``keep``) before every layer."""
    drop = 1 - keep
    return nn.Sequential(BernoulliDropout(drop, scale="none"), nn.Linear(4, 3), BernoulliDropout(drop, scale="none"),
                         nn.Linear(3, 3), BernoulliDropout(drop, scale="none"), nn.Linear(3, 1)).double()


def _eq155_terms(deep: nn.Module, xd: Tensor, yd: Tensor) -> dict[str, float]:
    """Eq. 155's relative error against enumeration, and ‖Cov(α, β)‖ / ‖w Var(α)‖ over all parameters."""
    dec = deep_linear_decomposition(deep, xd, yd)
    ref = expected_dropout_gradient(deep, _half_sse, (xd, yd), None)
    flat = lambda d: torch.cat([v.reshape(-1) for v in d.values()])  # noqa: E731
    rhs = flat(dec.ensemble) + flat(dec.weight_decay) + flat(dec.covariance)
    return {"rel_error": _rel(rhs, flat(ref.mean)),
            "cov_over_decay": float(flat(dec.covariance).norm() / flat(dec.weight_decay).norm()),
            "decay_over_expected": float(flat(dec.weight_decay).norm() / flat(ref.mean).norm())}


def _linear_checks(cfg: BSRegularizationConfig, seed: int) -> dict[str, float]:
    """Eqs. 147 and 155 against exact enumeration (float64), on a random deep linear net and the same net after
    ``cfg.steps`` steps of dropout GD on its regression data (eq. 155 holds for any weights)."""
    g = torch.Generator().manual_seed(seed)
    f64 = torch.float64
    keep = torch.rand(6, generator=g, dtype=f64) * 0.8 + 0.1
    torch.manual_seed(seed)
    unit = nn.Sequential(BernoulliDropout(1 - keep, scale="none"), nn.Linear(6, 2, bias=False)).double()
    x, y = torch.randn(10, 6, generator=g, dtype=f64), torch.randn(10, 2, generator=g, dtype=f64)
    exact = expected_dropout_gradient(unit, _half_sse, (x, y), None)
    ens, decay = linear_expected_gradient(unit[1].weight.detach(), x, y, keep)
    deep = _deep_linear(cfg.keep)
    xd, yd = torch.randn(10, 4, generator=g, dtype=f64), torch.randn(10, 1, generator=g, dtype=f64)
    random_net = _eq155_terms(deep, xd, yd)
    fit(deep, lambda o, t: 0.5 * (o - t).pow(2).sum(-1).mean(), xd, yd,
        TrainConfig(optimizer="gd", lr=0.05, steps=cfg.steps, seed=seed))
    trained = _eq155_terms(deep, xd, yd)
    return {
        "eq147_rel_error": _rel(ens + decay, exact.mean["1.weight"]),
        "eq147_ensemble_rel_error": _rel(ens, exact.ensemble["1.weight"]),
        "eq155_rel_error": max(random_net["rel_error"], trained["rel_error"]),
        "eq155_cov_over_decay_random": random_net["cov_over_decay"],
        "eq155_cov_over_decay_trained": trained["cov_over_decay"],
        "eq155_decay_over_expected": random_net["decay_over_expected"],
    }


SPECS = load_claims(__package__)
EQ147, EQ155, COV_SMALL = SPECS["bs-eq147-148"], SPECS["bs-eq155"], SPECS["bs-eq155-cov-small"]


EQ164, EQ181 = SPECS["bs-eq164"], SPECS["bs-eq181"]


def _train_and_compare(
    cfg: BSRegularizationConfig, seed: int, model: nn.Module, x: Tensor, y: Tensor, param: str, approx
) -> list[dict[str, Any]]:
    """Train with dropout (GD on the mean BCE); at checkpoints compare MC E[∇] with approximations."""
    rows = []
    chunk = max(cfg.steps // (cfg.n_checkpoints - 1), 1)
    for c in range(cfg.n_checkpoints):
        if c:
            fit(
                model, _bce_mean, x, y, TrainConfig(optimizer="gd", lr=cfg.lr, steps=chunk, seed=seed + c)
            )
        mc = expected_dropout_gradient(
            model,
            _bce_sum,
            (x, y),
            cfg.mc_samples,
            generator=torch.Generator().manual_seed(seed + 1000 + c),
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


def _approx_tables(cfg: BSRegularizationConfig, seed: int) -> dict[str, list[dict[str, Any]]]:
    """Eqs. 164 and 181 along dropout GD on the teacher task of ``seed``."""
    ds = _data.load("teacher", "train", n_train=cfg.n_train, dim=cfg.dim, hidden=cfg.hidden, task="classification",
                    n_classes=2, seed=seed)
    x, y = ds.x.double(), ds.y.double()
    drop = 1 - cfg.keep
    torch.manual_seed(seed)
    unit = nn.Sequential(BernoulliDropout(drop, scale="none"), nn.Linear(cfg.dim, 1, bias=False)).double()
    unit_rows = _train_and_compare(cfg, seed, unit, x, y, "1.weight", lambda m: tuple(
        v.unsqueeze(0) for v in sigmoid_expected_gradient(m[1].weight.detach()[0], x, y, cfg.keep)))
    torch.manual_seed(seed)
    net = FNN([cfg.dim, cfg.hidden, 1], "logistic", dropout={1: drop},
              noise=lambda p: BernoulliDropout(p, scale="none")).double()
    top_rows = _train_and_compare(cfg, seed, net, x, y, "net.3.weight",
                                  lambda m: top_layer_expected_gradient(m, x, y.unsqueeze(1)))
    return {"eq164_sigmoid_unit": unit_rows, "eq181_top_layer": top_rows}


@experiment(
    "bs-regularization",
    paper=PAPER,
    reproduces="§11.2–11.5, eqs. 147–148, 155, 164–165, 181: expected dropout gradient = ensemble + decay",
    config=BSRegularizationConfig,
    claims=[EQ147, EQ155, COV_SMALL, EQ164, EQ181],
)
def run(cfg: BSRegularizationConfig, ctx: RunContext) -> None:
    exact = {s: ctx.stage(f"linear_exact_s{s}", lambda s=s: _linear_checks(cfg, s)) for s in ctx.seeds()}
    ctx.table("linear_exact", [{"seed": s, **e} for s, e in exact.items()])
    per_seed = {s: ctx.stage(f"approx_s{s}", lambda s=s: _approx_tables(cfg, s)) for s in ctx.seeds()}
    tables = per_seed[ctx.seeds()[0]]
    for name in tables:
        ctx.table(name, [{"seed": s, **r} for s, t in per_seed.items() for r in t[name]])

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
        f"{ctx.paper}, eqs. 164 and 181: relative error of the ensemble gradient "
        "and of the ensemble gradient plus the adaptive weight-decay term against the Monte Carlo expected "
        f"dropout gradient, along training (keep p = {cfg.keep}, {cfg.mc_samples} masks per estimate, seed "
        f"{ctx.seeds()[0]}).",
        claims=[EQ164.id, EQ181.id],
    )

    ctx.check(EQ147, all(e["eq147_rel_error"] <= cfg.exact_rtol for e in exact.values()),
              {"eq147_rel_error": [e["eq147_rel_error"] for e in exact.values()]})
    ctx.check(EQ155, all(e["eq155_rel_error"] <= cfg.exact_rtol for e in exact.values()),
              {"eq155_rel_error": [e["eq155_rel_error"] for e in exact.values()]})
    ratios = {k: [e[f"eq155_cov_over_decay_{k}"] for e in exact.values()] for k in ("random", "trained")}
    ctx.claim(COV_SMALL, [max(a, b) for a, b in zip(ratios["random"], ratios["trained"])],
              measured={f"cov_over_decay_{k}": v for k, v in ratios.items()})
    for spec, name in ((EQ164, "eq164_sigmoid_unit"), (EQ181, "eq181_top_layer")):
        med_ens = [median(r["err_ensemble"] for r in t[name]) for t in per_seed.values()]
        med_dec = [median(r["err_ensemble_plus_decay"] for r in t[name]) for t in per_seed.values()]
        noise = [max(r["mc_rel_stderr"] for r in t[name]) for t in per_seed.values()]
        ctx.claim(spec, [a - b for a, b in zip(med_ens, med_dec)],
                  regime_met=[n < min(a, b) for n, a, b in zip(noise, med_ens, med_dec)],
                  regime_values={"max_mc_rel_stderr": noise},
                  regime_reason="the Monte Carlo standard error exceeds the smaller median error",
                  measured={"median_err_ensemble": med_ens, "median_err_ensemble_plus_decay": med_dec})
