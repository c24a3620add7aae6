"""Baldi & Sadowski 2014, §11.7, Figs. 11.1–11.3: the three learning phases of dropout and sparse coding.

Reproduce: ``droplab run bs-phases-sparsity --profile quick`` (real MNIST: the 4,000 ``mnist-5k``
training images, 784 sparse inputs, three hidden layers of 400 logistic units — the widest that fit
the quick budget, enough for the ≥ 100 active units per layer Fig. 11.3 reports; ``--profile paper``:
MNIST, three hidden layers of 1000 logistic units, with MNIST files in ``$DROPLAB_DATA``).

Per seed, a logistic FNN is trained with dropout; along training the dropout mean and standard
deviation of every hidden unit on fixed probe inputs are estimated by Monte Carlo over masks. Units
are "active" when their final mean activity exceeds 0.1 (Fig. 11.3's definition). The same net
trained without dropout from the same initialization gives the paired sparsity comparison of
Fig. 11.1. Every claim is a per-seed number with a t-interval over seeds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from droplab._checks import check_int, check_positive, check_probability
from droplab.dynamics import record_phases, sparsity, unit_activity
from droplab.experiments.bs.common import DropoutNetConfig
from droplab.experiments.claims import load_claims
from droplab.experiments.common import load_task
from droplab.experiments.plotting import subplots
from droplab.experiments.registry import experiment
from droplab.experiments.run import RunContext
from droplab.models import FNN
from droplab.training import TrainConfig, accuracy, fit

PAPER = "Baldi & Sadowski 2014"


@dataclass
class PhasesConfig(DropoutNetConfig):
    hidden: tuple[int, ...] = (400, 400, 400)
    lr: float = 1e-3
    steps: int = 600
    batch_size: int = 64
    n_records: int = 11
    n_probe: int = 10
    n_samples: int = 200
    n_sparsity: int = 500
    active: float = 0.1
    min_active: int = 100
    min_test_acc: float = 0.8

    PROFILES = {
        "smoke": {
            "hidden": (8, 8),
            "steps": 20,
            "n_records": 3,
            "n_probe": 4,
            "n_samples": 50,
            "n_train": 200,
            "n_sparsity": 50,
            "min_active": 2,
        },
        "paper": {
            "dataset": "mnist",
            "hidden": (1000, 1000, 1000),
            "steps": 60000,
            "batch_size": 100,
            "n_sparsity": 1000,
            "n_samples": 1000,
            "n_records": 21,
            "n_probe": 20,
        },
    }

    def validate(self) -> None:
        super().validate()
        check_positive("lr", self.lr)
        check_positive("active", self.active)
        for name in ("steps", "batch_size", "n_probe", "n_samples", "n_sparsity"):
            check_int(name, getattr(self, name), minimum=1)
        check_int("n_records", self.n_records, minimum=3)
        check_int("min_active", self.min_active, minimum=1)
        check_probability("min_test_acc", self.min_test_acc)


def _net(cfg: PhasesConfig, n_in: int, n_out: int, dropout: bool, seed: int) -> nn.Module:
    torch.manual_seed(seed)  # the same initialization with and without dropout
    return FNN([n_in, *cfg.hidden, n_out], "logistic", dropout=cfg.dropout_rates() if dropout else 0.0)


def _quantiles(x: Tensor) -> tuple[float, float, float]:
    if x.numel() == 0:
        return float("nan"), float("nan"), float("nan")
    q = torch.quantile(x.double(), torch.tensor([0.05, 0.5, 0.95], dtype=torch.float64))
    return float(q[0]), float(q[1]), float(q[2])


SPECS = load_claims(__package__)
RISE, SETTLE, QUIET, ASYMMETRY, SPARSE, CONSISTENT = (SPECS["bs-fig112-rise"], SPECS["bs-fig112-settle"],
                                                      SPECS["bs-fig112-inactive-quiet"], SPECS["bs-sec117-asymmetry"],
                                                      SPECS["bs-fig111-sparsity"], SPECS["bs-fig113-consistency"])
CLAIMS = (RISE, SETTLE, QUIET, ASYMMETRY, SPARSE, CONSISTENT)


def _lowest(xs: list[float]) -> float:
    """The smallest value, or NaN if any is NaN (a layer without the pairs it needs)."""
    return float("nan") if any(math.isnan(x) for x in xs) or not xs else min(xs)


def _highest(xs: list[float]) -> float:
    return -_lowest([-x for x in xs])


def _ratio(a: float, b: float) -> float:
    return a / b if b > 0 else float("nan")


def _median(x: Tensor) -> float:
    return float(x.double().median()) if x.numel() else float("nan")


def phase_summary(steps: list[int], mean: list[Tensor], std: list[Tensor], active: float) -> dict[str, list[float]]:
    """Per hidden layer, from (records, probe inputs, units) Monte Carlo means and stds along training: the count of
    active units (final mean > ``active``) on the median probe input, the median std of active pairs at step 0, at
    80% of training and at the end, the final median std of inactive pairs, and the difference of median std
    increases between pairs whose final mean is above and below 0.5 (§11.7: towards 1 vs towards 0)."""
    late = int(0.8 * (len(steps) - 1))
    out: dict[str, list[float]] = {k: [] for k in ("n_active", "active_start", "active_80pct", "active_end",
                                                   "inactive_end", "rise_up_minus_down", "n_up", "n_down")}
    for m, s in zip(mean, std):
        on = m[-1] > active
        up, down = m[-1] > 0.5, m[-1] < 0.5
        rise = s[-1] - s[0]
        out["n_active"].append(float(on.sum(1).double().median()))
        out["active_start"].append(_median(s[0][on]))
        out["active_80pct"].append(_median(s[late][on]))
        out["active_end"].append(_median(s[-1][on]))
        out["inactive_end"].append(_median(s[-1][~on]))
        out["rise_up_minus_down"].append(_median(rise[up]) - _median(rise[down]))
        out["n_up"].append(float(up.sum()))
        out["n_down"].append(float(down.sum()))
    return out


def _one_seed(cfg: PhasesConfig, ctx: RunContext, seed: int) -> dict[str, Any]:
    """Train the dropout net (recording unit statistics) and the plain net from one initialization."""
    train, test = load_task(cfg.dataset, cfg.n_train, device=cfg.device)
    probe = test.x[: cfg.n_probe]
    tc = TrainConfig(optimizer="adam", lr=cfg.lr, steps=cfg.steps, batch_size=cfg.batch_size, seed=seed)
    loss_fn = nn.functional.cross_entropy
    every = max(cfg.steps // (cfg.n_records - 1), 1)

    def phases() -> dict[str, Any]:
        model = _net(cfg, train.in_features, train.n_classes, True, seed)
        rec = record_phases(model, loss_fn, (train.x, train.y), probe, tc, record_every=every,
                            n_samples=cfg.n_samples, generator=torch.Generator().manual_seed(seed + 1))
        return {"steps": rec.steps, "mean": rec.mean, "std": rec.std,
                "final_activity": _activities(model, test.x[: cfg.n_sparsity]),
                "test_acc": accuracy(model, test.x, test.y)}

    def plain() -> dict[str, Any]:
        model = _net(cfg, train.in_features, train.n_classes, False, seed)
        fit(model, loss_fn, train.x, train.y, tc)
        return {"final_activity": _activities(model, test.x[: cfg.n_sparsity]),
                "test_acc": accuracy(model, test.x, test.y)}

    d, p = ctx.stage(f"dropout_s{seed}", phases), ctx.stage(f"plain_s{seed}", plain)
    summary = phase_summary(d["steps"], d["mean"], d["std"], cfg.active)
    summary["sparsity_dropout"] = [sparsity(a, cfg.active) for a in d["final_activity"]]
    summary["sparsity_plain"] = [sparsity(a, cfg.active) for a in p["final_activity"]]
    return {"dropout": d, "plain": p, "summary": summary}


def _std_rows(cfg: PhasesConfig, d: dict[str, Any]) -> list[dict[str, Any]]:
    """Median and 5–95% quantiles of the dropout std of active and inactive pairs, per layer and record."""
    rows = []
    for k in range(len(cfg.hidden)):
        on = d["mean"][k][-1] > cfg.active
        for t, step in enumerate(d["steps"]):
            sd = d["std"][k][t]
            a5, a50, a95 = _quantiles(sd[on])
            i5, i50, i95 = _quantiles(sd[~on])
            rows.append({"layer": k + 1, "step": step, "active_std_p5": a5, "active_std_median": a50,
                         "active_std_p95": a95, "inactive_std_p5": i5, "inactive_std_median": i50,
                         "inactive_std_p95": i95})
    return rows


@experiment(
    "bs-phases-sparsity",
    paper=PAPER,
    reproduces="§11.7, Figs. 11.1–11.3: three learning phases, sparse coding, consistency across layers",
    config=PhasesConfig,
    claims=list(CLAIMS),
)
def run(cfg: PhasesConfig, ctx: RunContext) -> None:
    per = {s: _one_seed(cfg, ctx, s) for s in ctx.seeds()}
    first = per[ctx.seeds()[0]]
    rows = _std_rows(cfg, first["dropout"])
    ctx.table("unit_std_over_training", rows)
    sums = {s: r["summary"] for s, r in per.items()}
    ctx.table("per_seed_layer", [{"seed": s, "layer": k + 1, **{key: v[k] for key, v in sm.items()}}
                                 for s, sm in sums.items() for k in range(len(cfg.hidden))])
    acc = {n: [r[n]["test_acc"] for r in per.values()] for n in ("dropout", "plain")}
    ctx.log(test_acc_dropout=acc["dropout"], test_acc_plain=acc["plain"])
    _figures(cfg, ctx, first["dropout"], first["plain"], rows, len(cfg.hidden))

    n_active = {f"n_active_per_layer_s{s}": sm["n_active"] for s, sm in sums.items()}
    enough = [min(sm["n_active"]) >= cfg.min_active for sm in sums.values()]
    few = f"a hidden layer has fewer than {cfg.min_active} active units on the median probe input"
    regime = {"regime_met": enough, "regime_values": n_active, "regime_reason": few}
    ctx.claim(RISE, [_lowest([math.log2(r) if r > 0 else float("nan") for r in map(
        _ratio, sm["active_end"], sm["active_start"])]) for sm in sums.values()], **regime,
              measured={"active_std_start": [sm["active_start"] for sm in sums.values()],
                        "active_std_end": [sm["active_end"] for sm in sums.values()]})
    ctx.claim(SETTLE, [_highest([_ratio(abs(e - m), e) for e, m in zip(sm["active_end"], sm["active_80pct"])])
                       for sm in sums.values()], **regime,
              measured={"active_std_80pct": [sm["active_80pct"] for sm in sums.values()],
                        "active_std_end": [sm["active_end"] for sm in sums.values()]})
    ctx.claim(QUIET, [_highest(list(map(_ratio, sm["inactive_end"], sm["active_end"]))) for sm in sums.values()],
              **regime, measured={"inactive_std_end": [sm["inactive_end"] for sm in sums.values()]})
    ctx.claim(CONSISTENT, [_highest([_ratio(a, sm["active_end"][0]) for a in sm["active_end"][1:]])
                           for sm in sums.values()], **regime,
              measured={"active_std_end_per_layer": [sm["active_end"] for sm in sums.values()]})
    both = [min(sm["n_up"]) > 0 and min(sm["n_down"]) > 0 for sm in sums.values()]
    ctx.claim(ASYMMETRY, [_lowest(sm["rise_up_minus_down"]) for sm in sums.values()], regime_met=both,
              regime_values={"n_towards_1": [sm["n_up"] for sm in sums.values()],
                             "n_towards_0": [sm["n_down"] for sm in sums.values()]},
              regime_reason="a hidden layer has no probe pair on one side of 0.5",
              measured={"rise_up_minus_down_per_layer": [sm["rise_up_minus_down"] for sm in sums.values()]})
    learned = [min(a, b) >= cfg.min_test_acc for a, b in zip(acc["dropout"], acc["plain"])]
    ctx.claim(SPARSE, [_lowest([a - b for a, b in zip(sm["sparsity_dropout"], sm["sparsity_plain"])])
                       for sm in sums.values()], regime_met=learned, regime_values={f"test_acc_{k}": v
                                                                                      for k, v in acc.items()},
              regime_reason=f"a net stayed below test accuracy {cfg.min_test_acc}",
              measured={"sparsity_dropout": [sm["sparsity_dropout"] for sm in sums.values()],
                        "sparsity_plain": [sm["sparsity_plain"] for sm in sums.values()]})

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
        f"hidden layer over {cfg.n_sparsity} test inputs, with and without dropout ({cfg.dataset}, hidden "
        f"{cfg.hidden}, seed {cfg.seed}).",
        claims=[SPARSE.id],
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
        f"{cfg.n_samples} masks per point, along training, per hidden layer ({cfg.dataset}, hidden {cfg.hidden}, "
        f"seed {cfg.seed}).",
        claims=[RISE.id, SETTLE.id, QUIET.id, CONSISTENT.id],
    )
