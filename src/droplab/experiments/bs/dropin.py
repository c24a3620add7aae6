"""Baldi & Sadowski 2014, §11.6: dropin (units set to 1 instead of 0) "does not work".

Reproduce: ``droplab run bs-dropin --profile quick``.

The same logistic FNN, data and initialization are trained three ways: with dropout (each hidden and
input unit set to 0 with probability q), with dropin (set to 1 with probability q) and without noise.
Reported: test accuracy, and the dropout standard deviation of the hidden units across masks on
probe inputs at the end of training — B&S's explanation is that setting units to 1 maximizes the
variances that dropout minimizes (eq. 189).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from droplab._checks import check_int, check_positive, check_probability
from droplab.dynamics import unit_activity
from droplab.experiments.claims import load_claims
from droplab.experiments.common import load_task, train_stage
from droplab.experiments.config import ExperimentConfig
from droplab.experiments.plotting import subplots
from droplab.experiments.registry import experiment
from droplab.experiments.run import RunContext
from droplab.models import FNN
from droplab.nn import BernoulliDropout, Dropin
from droplab.training import TrainConfig

PAPER = "Baldi & Sadowski 2014"
VARIANTS = ("dropout", "dropin", "none")


@dataclass
class DropinConfig(ExperimentConfig):
    dataset: str = "digits"
    n_train: int | None = None
    hidden: tuple[int, ...] = (100, 100)
    q_input: float = 0.2
    q_hidden: float = 0.5
    lr: float = 1e-3
    steps: int = 1500
    batch_size: int = 64
    n_probe: int = 50
    n_samples: int = 500
    margin: float = 0.02

    PROFILES = {
        "smoke": {"hidden": (8,), "steps": 20, "n_train": 200, "n_probe": 5, "n_samples": 30},
        "paper": {"dataset": "mnist", "hidden": (1200, 1200), "steps": 60000, "batch_size": 100},
    }

    def validate(self) -> None:
        check_probability("q_input", self.q_input)
        check_probability("q_hidden", self.q_hidden)
        check_positive("lr", self.lr)
        check_positive("margin", self.margin, allow_zero=True)
        for name in ("steps", "batch_size", "n_probe", "n_samples"):
            check_int(name, getattr(self, name), minimum=1)
        if not self.hidden:
            raise ValueError("hidden must list at least one hidden width")


def _net(cfg: DropinConfig, n_in: int, n_out: int, variant: str, seed: int) -> nn.Module:
    torch.manual_seed(seed)  # the same initialization for every variant
    if variant == "none":
        return FNN([n_in, *cfg.hidden, n_out], "logistic")
    layer = (lambda q: BernoulliDropout(q, scale="none")) if variant == "dropout" else Dropin
    rates = {0: cfg.q_input, **{k: cfg.q_hidden for k in range(1, len(cfg.hidden) + 1)}}
    return FNN([n_in, *cfg.hidden, n_out], "logistic", dropout=rates, noise=layer)


SPECS = load_claims(__package__)
FAILS, VARIANCE = SPECS["bs-dropin-fails"], SPECS["bs-dropin-variance"]


def _one_seed(cfg: DropinConfig, ctx: RunContext, seed: int) -> tuple[list[dict[str, Any]], dict[str, Tensor]]:
    """Train the three variants of one seed from one initialization; test accuracy and unit stds on the probe."""
    train, test = load_task(cfg.dataset, cfg.n_train, device=cfg.device)
    tc = TrainConfig(optimizer="adam", lr=cfg.lr, steps=cfg.steps, batch_size=cfg.batch_size, seed=seed)
    probe = test.x[: cfg.n_probe]
    rows: list[dict[str, Any]] = []
    stds: dict[str, Tensor] = {}
    for variant in VARIANTS:
        model = _net(cfg, train.in_features, train.n_classes, variant, seed)
        metrics = train_stage(ctx, f"train_{variant}_s{seed}", model, nn.functional.cross_entropy, train, test, tc)
        _, std, _ = unit_activity(model, probe, cfg.n_samples, torch.Generator().manual_seed(seed + 1))
        stds[variant] = torch.cat([s.reshape(-1) for s in std])
        rows.append({"seed": seed, "variant": variant, "test_acc": metrics["test_acc"],
                     "train_acc": metrics["train_acc"], "train_loss": metrics["train_loss"],
                     "median_unit_std": float(stds[variant].median()),
                     "mean_unit_std": float(stds[variant].mean()), "chance": 1 / train.n_classes})
    return rows, stds


@experiment(
    "bs-dropin",
    paper=PAPER,
    reproduces="§11.6: dropin vs dropout vs no noise; dropin 'does not work'",
    config=DropinConfig,
    claims=[FAILS, VARIANCE],
)
def run(cfg: DropinConfig, ctx: RunContext) -> None:
    results = {s: _one_seed(cfg, ctx, s) for s in ctx.seeds()}
    ctx.table("variants", [r for rows, _ in results.values() for r in rows])
    per = {s: {r["variant"]: r for r in rows} for s, (rows, _) in results.items()}
    by = per[ctx.seeds()[0]]
    stds = results[ctx.seeds()[0]][1]

    fig, ax = subplots(1, 2, figsize=(10, 3.8))
    ax[0].bar(
        list(VARIANTS), [100 * by[v]["test_acc"] for v in VARIANTS], color=["tab:blue", "tab:red", "gray"]
    )
    ax[0].set(ylabel="test accuracy (%)", title=f"{cfg.dataset}: dropout vs dropin vs no noise")
    bins = torch.linspace(0, float(max(s.max() for s in stds.values())) + 1e-6, 30)
    for v in ("dropout", "dropin"):
        ax[1].hist(stds[v], bins=bins, alpha=0.5, label=v)
    ax[1].set(
        xlabel="std of a hidden unit's activity across masks",
        ylabel="count of (input, unit) pairs",
        yscale="log",
        title="dropout variance of the units (end of training)",
    )
    ax[1].legend(fontsize=8)
    ctx.figure(
        fig,
        "dropin",
        f"{ctx.paper}, §11.6: test accuracy of the same logistic net trained with dropout "
        f"(q = {cfg.q_hidden} hidden, {cfg.q_input} input), dropin (units set to 1 with the same q) and no "
        f"noise; right, the across-mask standard deviation of hidden units on {cfg.n_probe} test inputs (seed "
        f"{ctx.seeds()[0]}).",
        claims=[FAILS.id, VARIANCE.id],
    )

    acc = {v: [p[v]["test_acc"] for p in per.values()] for v in VARIANTS}
    ctx.claim(FAILS, [min(d, n) - i for d, n, i in zip(acc["dropout"], acc["none"], acc["dropin"])],
              regime_met=[max(p["dropout"]["test_acc"], p["none"]["test_acc"]) >= 2 * p["none"]["chance"]
                          for p in per.values()],
              regime_values={f"test_acc_{v}": acc[v] for v in ("dropout", "none")},
              regime_reason="neither dropout nor the noiseless net reached twice chance test accuracy",
              measured={f"test_acc_{v}": acc[v] for v in VARIANTS})
    med = {v: [p[v]["median_unit_std"] for p in per.values()] for v in ("dropin", "dropout")}
    ctx.claim(VARIANCE, [a - b for a, b in zip(med["dropin"], med["dropout"])],
              measured={f"median_std_{v}": m for v, m in med.items()})
