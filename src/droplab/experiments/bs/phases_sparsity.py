"""Baldi & Sadowski 2014, §11.7, Figs. 11.1–11.3: the three learning phases of dropout and sparse coding.

Reproduce: ``droplab run bs-phases-sparsity --profile quick`` (``--profile paper``: MNIST, three
hidden layers of 1000 logistic units, with MNIST files in ``$DROPLAB_DATA``).

A logistic FNN is trained with dropout; along training the dropout mean and standard deviation of
every hidden unit on fixed probe inputs are estimated by Monte Carlo over masks. Units are "active"
when their final mean activity exceeds 0.1 (Fig. 11.3's definition). The same net trained without
dropout from the same initialization gives the sparsity comparison of Fig. 11.1.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from droplab._checks import check_int, check_positive, check_probability
from droplab.dynamics import record_phases, sparsity, unit_activity
from droplab.experiments.common import load_task
from droplab.experiments.config import ExperimentConfig
from droplab.experiments.plotting import subplots
from droplab.experiments.registry import experiment
from droplab.experiments.run import RunContext
from droplab.models import FNN
from droplab.training import TrainConfig, accuracy, fit

PAPER = "Baldi & Sadowski 2014"


@dataclass
class PhasesConfig(ExperimentConfig):
    dataset: str = "digits"
    n_train: int | None = None
    hidden: tuple[int, ...] = (100, 100, 100)
    keep_input: float = 0.8
    keep_hidden: float = 0.5
    lr: float = 1e-3
    steps: int = 3000
    batch_size: int = 64
    n_records: int = 21
    n_probe: int = 20
    n_samples: int = 500
    n_sparsity: int = 400
    active: float = 0.1

    PROFILES = {
        "smoke": {
            "hidden": (8, 8),
            "steps": 20,
            "n_records": 3,
            "n_probe": 4,
            "n_samples": 50,
            "n_train": 200,
            "n_sparsity": 50,
        },
        "paper": {
            "dataset": "mnist",
            "hidden": (1000, 1000, 1000),
            "steps": 60000,
            "batch_size": 100,
            "n_sparsity": 1000,
            "n_samples": 1000,
        },
    }

    def validate(self) -> None:
        check_probability("keep_input", self.keep_input, low_open=True, high_open=False)
        check_probability("keep_hidden", self.keep_hidden, low_open=True, high_open=False)
        check_positive("lr", self.lr)
        check_positive("active", self.active)
        for name in ("steps", "batch_size", "n_probe", "n_samples", "n_sparsity"):
            check_int(name, getattr(self, name), minimum=1)
        check_int("n_records", self.n_records, minimum=3)
        if not self.hidden:
            raise ValueError("hidden must list at least one hidden width")


def _net(cfg: PhasesConfig, n_in: int, n_out: int, dropout: bool) -> nn.Module:
    torch.manual_seed(cfg.seed)  # the same initialization with and without dropout
    drops = {0: 1 - cfg.keep_input, **{k: 1 - cfg.keep_hidden for k in range(1, len(cfg.hidden) + 1)}}
    return FNN([n_in, *cfg.hidden, n_out], "logistic", dropout=drops if dropout else 0.0)


def _quantiles(x: Tensor) -> tuple[float, float, float]:
    if x.numel() == 0:
        return float("nan"), float("nan"), float("nan")
    q = torch.quantile(x.double(), torch.tensor([0.05, 0.5, 0.95], dtype=torch.float64))
    return float(q[0]), float(q[1]), float(q[2])


@experiment(
    "bs-phases-sparsity",
    paper=PAPER,
    reproduces="§11.7, Figs. 11.1–11.3: three learning phases, sparse coding, consistency across layers",
    config=PhasesConfig,
)
def run(cfg: PhasesConfig, ctx: RunContext) -> None:
    train, test = load_task(cfg.dataset, cfg.n_train, device=cfg.device)
    probe = test.x[: cfg.n_probe]
    tc = TrainConfig(optimizer="adam", lr=cfg.lr, steps=cfg.steps, batch_size=cfg.batch_size, seed=cfg.seed)
    loss_fn = nn.functional.cross_entropy
    every = max(cfg.steps // (cfg.n_records - 1), 1)

    def phases() -> dict[str, Any]:
        model = _net(cfg, train.in_features, train.n_classes, True)
        rec = record_phases(
            model,
            loss_fn,
            (train.x, train.y),
            probe,
            tc,
            record_every=every,
            n_samples=cfg.n_samples,
            generator=torch.Generator().manual_seed(cfg.seed + 1),
        )
        return {
            "steps": rec.steps,
            "mean": rec.mean,
            "std": rec.std,
            "final_activity": _activities(model, test.x[: cfg.n_sparsity]),
            "test_acc": accuracy(model, test.x, test.y),
        }

    def plain() -> dict[str, Any]:
        model = _net(cfg, train.in_features, train.n_classes, False)
        fit(model, loss_fn, train.x, train.y, tc)
        return {
            "final_activity": _activities(model, test.x[: cfg.n_sparsity]),
            "test_acc": accuracy(model, test.x, test.y),
        }

    d, p = ctx.stage("dropout", phases), ctx.stage("plain", plain)
    steps = d["steps"]
    n_layers = len(cfg.hidden)
    # Active (probe input, unit) pairs at the end of training (Fig. 11.3: final activity > 0.1).
    active = [d["mean"][k][-1] > cfg.active for k in range(n_layers)]
    rows = []
    for k in range(n_layers):
        for t, step in enumerate(steps):
            sd = d["std"][k][t]
            a5, a50, a95 = _quantiles(sd[active[k]])
            i5, i50, i95 = _quantiles(sd[~active[k]])
            rows.append(
                {
                    "layer": k + 1,
                    "step": step,
                    "active_std_p5": a5,
                    "active_std_median": a50,
                    "active_std_p95": a95,
                    "inactive_std_p5": i5,
                    "inactive_std_median": i50,
                    "inactive_std_p95": i95,
                }
            )
    ctx.table("unit_std_over_training", rows)
    spars = [
        {
            "layer": k + 1,
            "sparsity_dropout": sparsity(d["final_activity"][k], cfg.active),
            "sparsity_plain": sparsity(p["final_activity"][k], cfg.active),
            "active_fraction_dropout": float(active[k].double().mean()),
        }
        for k in range(n_layers)
    ]
    ctx.table("sparsity", spars)
    ctx.log(test_acc_dropout=d["test_acc"], test_acc_plain=p["test_acc"])

    _figures(cfg, ctx, d, p, rows, n_layers)

    first = {r["layer"]: r for r in rows if r["step"] == steps[0]}
    last = {r["layer"]: r for r in rows if r["step"] == steps[-1]}
    late = {r["layer"]: r for r in rows if r["step"] == steps[int(0.8 * (len(steps) - 1))]}
    peak = {k + 1: max(r["active_std_median"] for r in rows if r["layer"] == k + 1) for k in range(n_layers)}
    grows = all(peak[k] >= 2 * first[k]["active_std_median"] for k in peak)
    settles = all(
        abs(last[k]["active_std_median"] - late[k]["active_std_median"]) <= 0.2 * last[k]["active_std_median"]
        for k in last
    )
    quiet = all(last[k]["inactive_std_median"] < 0.5 * last[k]["active_std_median"] for k in last)
    measured = {
        "active_std_start": [first[k]["active_std_median"] for k in sorted(first)],
        "active_std_peak": [peak[k] for k in sorted(peak)],
        "active_std_80pct": [late[k]["active_std_median"] for k in sorted(late)],
        "active_std_end": [last[k]["active_std_median"] for k in sorted(last)],
        "inactive_std_end": [last[k]["inactive_std_median"] for k in sorted(last)],
    }
    valid = all(a.any() and (~a).any() for a in active)
    ctx.legacy_claim(
        id="bs-fig112-three-phases",
        paper=PAPER,
        where="§11.7, Fig. 11.2",
        statement="Active units start with low dropout variance, their variance grows during learning, then "
        "settles; inactive units stay silent with minimal variance.",
        criterion="Per hidden layer, over probe (input, unit) pairs: the median dropout std of active units "
        "peaks at ≥ 2× its initial value; between 80% and 100% of training it changes by ≤ 20%; "
        "the final median std of inactive units is < 0.5× that of active units. Inconclusive if a "
        "layer has no active or no inactive pair.",
        measured=measured,
        outcome=(grows and settles and quiet) if valid else None,
    )
    ctx.legacy_claim(
        id="bs-fig111-sparsity",
        paper=PAPER,
        where="§11.7, Fig. 11.1, eq. 189",
        statement="Dropout favours small activities and thus sparse representations.",
        criterion=f"In every hidden layer the fraction of final activities ≤ {cfg.active} on {cfg.n_sparsity}"
        " test inputs is larger with dropout than without (same initialization and training).",
        measured={
            "sparsity_dropout": [s["sparsity_dropout"] for s in spars],
            "sparsity_plain": [s["sparsity_plain"] for s in spars],
        },
        outcome=all(s["sparsity_dropout"] > s["sparsity_plain"] for s in spars),
    )
    ctx.legacy_claim(
        id="bs-fig113-consistency",
        paper=PAPER,
        where="§11.7, Fig. 11.3",
        statement="The consistency of active neurons does not noticeably decline in the upper layers.",
        criterion="Final median dropout std of active units in the top hidden layer ≤ 1.25× that of the 1st "
        "hidden layer.",
        measured={"active_std_end_per_layer": measured["active_std_end"]},
        outcome=(last[n_layers]["active_std_median"] <= 1.25 * last[1]["active_std_median"])
        if valid
        else None,
    )


def _activities(model: nn.Module, x: Tensor) -> list[Tensor]:
    """Ensemble (evaluation-mode) activity of every hidden layer on ``x``."""
    return unit_activity(model, x, 2, torch.Generator().manual_seed(0))[2]


def _figures(
    cfg: PhasesConfig,
    ctx: RunContext,
    d: dict[str, Any],
    p: dict[str, Any],
    rows: list[dict[str, Any]],
    n_layers: int,
) -> None:
    fig, ax = subplots(1, n_layers, figsize=(3.4 * n_layers, 3.2), squeeze=False)
    for k in range(n_layers):
        a = ax[0][k]
        bins = torch.linspace(0, 1, 26)
        a.hist(p["final_activity"][k].reshape(-1), bins=bins, alpha=0.5, density=True, label="no dropout")
        a.hist(d["final_activity"][k].reshape(-1), bins=bins, alpha=0.5, density=True, label="dropout")
        a.set(xlabel=f"activation, hidden layer {k + 1}", ylabel="density", yscale="log")
        a.legend(fontsize=8)
    ctx.figure(
        fig,
        "fig11_1_sparsity",
        f"{PAPER}, Fig. 11.1: distribution of final (ensemble) activations of each "
        f"hidden layer over {cfg.n_sparsity} test inputs, with and without dropout ({cfg.dataset}).",
    )

    fig, ax = subplots(1, n_layers, figsize=(3.4 * n_layers, 3.2), squeeze=False)
    for k in range(n_layers):
        a = ax[0][k]
        rs = [r for r in rows if r["layer"] == k + 1]
        s = [r["step"] for r in rs]
        for kind, color in (("active", "tab:red"), ("inactive", "tab:blue")):
            a.plot(s, [r[f"{kind}_std_median"] for r in rs], color=color, label=kind)
            a.fill_between(
                s,
                [r[f"{kind}_std_p5"] for r in rs],
                [r[f"{kind}_std_p95"] for r in rs],
                color=color,
                alpha=0.2,
            )
        a.set(xlabel="training step", ylabel=f"dropout std of unit activity, layer {k + 1}")
        a.legend(fontsize=8)
    ctx.figure(
        fig,
        "fig11_2_phases",
        f"{PAPER}, Figs. 11.2–11.3: dropout standard deviation (median, 5–95%) of "
        f"active (final activity > {cfg.active}) and inactive units on {cfg.n_probe} probe inputs, "
        f"{cfg.n_samples} masks per point, along training, per hidden layer.",
    )
