"""Baldi & Sadowski 2014, §9.6, Figs. 9.8–9.14: variances and covariances from the ensemble network.

Reproduce: ``droplab run bs-variance-cov --profile quick`` (``paper``: MNIST 784-1200⁴-10).

The deep logistic dropout classifier of bs-deep-approx is trained in ``n_snapshots`` equal
segments (a fresh Adam state per segment). At initialization and after every segment, Monte Carlo
over sub-networks gives each hidden unit's variance V, compared with the estimates W(1 − W) and 0
(eqs. 117–118, Figs. 9.8–9.11). Before and after training, E(O_i O_j) of random unconnected
pairs is compared with W_i W_j and with 0 (eq. 119, Figs. 9.12–9.13), and of connected pairs
(unit j of layer h feeding unit i of layer h+1) with W_ij W_j and W_i W_j (eqs. 121–124, Fig. 9.14).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from droplab._checks import check_int
from droplab.ensemble import approximations as A
from droplab.ensemble import sample_ensemble
from droplab.experiments.bs.common import (
    DEEP_PAPER_PROFILE,
    DEEP_SMOKE_PROFILE,
    PAPER,
    DeepNetConfig,
    build,
    hidden_modules,
    layer_statistics,
    train_config,
)
from droplab.experiments.common import load_task, train_stage
from droplab.experiments.plotting import subplots
from droplab.experiments.registry import experiment
from droplab.experiments.run import RunContext


@dataclass
class VarianceCovConfig(DeepNetConfig):
    n_snapshots: int = 5
    n_pairs: int = 200

    PROFILES = {"smoke": {**DEEP_SMOKE_PROFILE, "n_snapshots": 2, "n_pairs": 10},
                "paper": {**DEEP_PAPER_PROFILE, "n_snapshots": 10}}

    def validate(self) -> None:
        super().validate()
        check_int("n_snapshots", self.n_snapshots, minimum=2)
        check_int("n_pairs", self.n_pairs, minimum=1)


def _pairs(model: nn.Module, g: torch.Generator, n: int) -> dict[str, list[tuple[str, int, str, int]]]:
    """Random unconnected pairs (same layer, or layers two apart) and connected pairs (adjacent layers)."""
    mods = hidden_modules(model)
    widths = {m: lin.out_features for m, lin in zip(mods, [x for x in model.modules() if isinstance(x, nn.Linear)])}

    def draw(a: str, b: str) -> tuple[str, int, str, int]:
        i, j = torch.randint(widths[a], (1,), generator=g).item(), torch.randint(widths[b], (1,), generator=g).item()
        if a == b and i == j:
            j = (j + 1) % widths[b]
        return (a, i, b, j)

    layers = torch.randint(len(mods), (n,), generator=g).tolist()
    unconnected = [draw(mods[k], mods[k] if k + 2 >= len(mods) or k % 2 == 0 else mods[k + 2]) for k in layers]
    connected = []
    if len(mods) >= 2:
        for k in torch.randint(len(mods) - 1, (n,), generator=g).tolist():
            connected.append(draw(mods[k + 1], mods[k]))  # (target, i, source, j): j feeds i
    return {"unconnected": unconnected, "connected": connected}


def _pair_errors(model: nn.Module, x: torch.Tensor, pairs: dict[str, list], cfg: VarianceCovConfig,
                 g: torch.Generator) -> dict[str, Any]:
    mods = hidden_modules(model)
    all_pairs = pairs["unconnected"] + pairs["connected"]
    res = sample_ensemble(model, x, mods, cfg.samples, generator=g, pairs=all_pairs)
    truth = res.pairs.product_mean
    w = {m: res.units[m].ensemble.to(torch.float64) for m in mods}
    nu = len(pairs["unconnected"])
    indep = torch.stack([w[a][:, i] * w[b][:, j] for a, i, b, j in all_pairs], -1)
    out = {"unconnected_err_WW": float((truth[:, :nu] - indep[:, :nu]).abs().mean()),
           "unconnected_err_zero": float(truth[:, :nu].abs().mean())}
    if pairs["connected"]:
        names = dict(model.named_modules())
        corrected = []
        for target, i, source, j in pairs["connected"]:
            t_idx = target.rsplit(".", 1)
            linear = f"{t_idx[0]}.{int(t_idx[1]) - 1}"
            if not isinstance(names.get(linear), nn.Linear):
                raise ValueError(f"expected an nn.Linear before {target}, got {linear!r}")
            est = A.connected_product_estimate(model, x, source, linear, target, torch.tensor([[j, i]]))
            corrected.append(est["corrected"][:, 0].to(torch.float64))
        corrected_t = torch.stack(corrected, -1)
        out["connected_err_corrected"] = float((truth[:, nu:] - corrected_t).abs().mean())
        out["connected_err_WW"] = float((truth[:, nu:] - indep[:, nu:]).abs().mean())
        out["connected_truth"], out["connected_corrected"] = truth[:, nu:], corrected_t
        out["connected_WW"] = indep[:, nu:]
    out["unconnected_truth"], out["unconnected_WW"] = truth[:, :nu], indep[:, :nu]
    return out


@experiment("bs-variance-cov", paper=PAPER, reproduces="Figs. 9.8–9.14: variance and covariance estimates from the "
            "ensemble network, over training", config=VarianceCovConfig)
def run(cfg: VarianceCovConfig, ctx: RunContext) -> None:
    train, test = load_task(cfg.dataset, cfg.n_train, device=cfg.device)
    torch.manual_seed(cfg.seed)
    model = build(cfg, train.in_features, train.n_classes)
    x = test.x[torch.randperm(len(test.x), generator=ctx.generator(7))[:cfg.n_inputs]]
    seg = max(1, cfg.steps // cfg.n_snapshots)
    snapshots, rows = [], []
    initial = copy.deepcopy(model)
    for k in range(cfg.n_snapshots + 1):
        if k > 0:
            train_stage(ctx, f"train_{k}", model, nn.functional.cross_entropy, train, test, train_config(cfg, seg))
        layers = layer_statistics(ctx, f"mc_{k}", model, x, cfg, offset=100 + k)
        snapshots.append(layers)
        for layer, s in enumerate(layers):
            v, w = s["V"], s["W"]
            upper = A.variance_estimate_upper(w)
            rows.append({"snapshot": k, "step": k * seg, "layer": layer + 1, "median_V": float(v.median()),
                         "median_W1mW": float(upper.median()),
                         "err_W1mW": float((v - upper).abs().median()), "err_zero": float(v.abs().median())})
    ctx.table("variance", rows)
    ends = [r for r in rows if r["snapshot"] in (0, cfg.n_snapshots)]
    zero_better = all(r["err_zero"] < r["err_W1mW"] for r in ends)
    ctx.legacy_claim(id="bs-fig98-99-variance-zero", paper=PAPER, where="§9.6, eqs. 117–118, Figs. 9.8–9.9",
              statement="At the beginning and the end of learning the dropout variances are small, so Var(O) ≈ 0 is "
                        "a better estimate than W(1 − W).",
              criterion="At initialization and after training, in every hidden layer the median |V − 0| is smaller "
                        "than the median |V − W(1 − W)| (V by Monte Carlo).",
              measured={f"step{r['step']}_layer{r['layer']}": {"err_zero": r["err_zero"], "err_W1mW": r["err_W1mW"]}
                        for r in ends},
              outcome=zero_better)
    ratio = [sum(r["median_V"] / max(r["median_W1mW"], 1e-12) for r in rows if r["snapshot"] == k) /
             len(snapshots[k]) for k in range(cfg.n_snapshots + 1)]
    peak = max(range(len(ratio)), key=ratio.__getitem__)
    ctx.log(variance_ratio_by_snapshot=ratio)
    ctx.legacy_claim(id="bs-fig910-911-variance-training", paper=PAPER, where="§9.6, Figs. 9.10–9.11",
              statement="During learning the variances are larger, closer to their upper estimate W(1 − W), than at "
                        "the beginning and the end.",
              criterion="The layer-averaged ratio median V / median W(1 − W) is largest at an intermediate snapshot "
                        "(neither at initialization nor after the last segment).",
              measured={"ratio_by_snapshot": ratio, "steps": [k * seg for k in range(cfg.n_snapshots + 1)]},
              outcome=0 < peak < cfg.n_snapshots)

    pairs = _pairs(model, ctx.generator(3), cfg.n_pairs)
    errs = {"before": ctx.stage("pairs_before", lambda: _pair_errors(initial, x, pairs, cfg, ctx.generator(4))),
            "after": ctx.stage("pairs_after", lambda: _pair_errors(model, x, pairs, cfg, ctx.generator(5)))}
    scalar = {w: {k: v for k, v in e.items() if isinstance(v, float)} for w, e in errs.items()}
    ctx.log(pair_errors=scalar)
    ctx.legacy_claim(id="bs-fig912-913-unconnected", paper=PAPER, where="§9.6, eq. 119, Figs. 9.12–9.13",
              statement="For pairs of units that are not directly connected, E(O_i O_j) ≈ W_i W_j, much better than 0.",
              criterion=f"Before and after training, over {cfg.n_pairs} random unconnected pairs × {cfg.n_inputs} "
                        "inputs, the mean |E(O_i O_j) − W_i W_j| is below half the mean |E(O_i O_j) − 0|.",
              measured=scalar, outcome=all(e["unconnected_err_WW"] < 0.5 * e["unconnected_err_zero"]
                                           for e in scalar.values()))
    if "connected_err_corrected" in scalar["after"]:
        ctx.legacy_claim(id="bs-fig914-connected", paper=PAPER, where="§9.6, eqs. 121–124, Fig. 9.14",
                  statement="For connected pairs the correction E(O_i O_j) ≈ W_ij W_j improves slightly on W_i W_j "
                            "at the end of learning (not at the beginning).",
                  criterion="After training, the mean absolute error of W_ij W_j is smaller than that of W_i W_j "
                            "(the beginning is reported, not judged).",
                  measured={w: {k: e[k] for k in ("connected_err_corrected", "connected_err_WW")} for w, e in
                            scalar.items()},
                  outcome=scalar["after"]["connected_err_corrected"] < scalar["after"]["connected_err_WW"])

    fig, ax = subplots(1, 3, figsize=(14, 4))
    for k, label in ((0, "before"), (cfg.n_snapshots, "after")):
        v = torch.cat([s["V"].flatten() for s in snapshots[k]])
        w = torch.cat([s["W"].flatten() for s in snapshots[k]])
        ax[0].scatter(A.variance_estimate_upper(w), v, s=3, alpha=0.5, label=label)
    ax[0].plot([0, 0.25], [0, 0.25], color="gray", lw=0.8)
    ax[0].set(xlabel="W(1 − W)", ylabel="Var(O) by Monte Carlo", title="Figs. 9.8–9.9: variance vs its estimates")
    ax[0].legend(fontsize=8)
    steps = [k * seg for k in range(cfg.n_snapshots + 1)]
    ax[1].plot(steps, ratio, "o-")
    ax[1].set(xlabel="training step", ylabel="median V / median W(1 − W)", title="Figs. 9.10–9.11: over training")
    for when, marker in (("before", "x"), ("after", "o")):
        e = errs[when]
        ax[2].scatter(e["unconnected_truth"].flatten(), e["unconnected_WW"].flatten(), s=4, marker=marker,
                      label=f"unconnected W_iW_j ({when})")
        if "connected_truth" in e:
            ax[2].scatter(e["connected_truth"].flatten(), e["connected_corrected"].flatten(), s=4, marker=marker,
                          label=f"connected W_ijW_j ({when})")
    ax[2].plot([0, 1], [0, 1], color="gray", lw=0.8)
    ax[2].set(xlabel="E(O_i O_j) by Monte Carlo", ylabel="estimate", title="Figs. 9.12–9.14: pair products")
    ax[2].legend(fontsize=7)
    ctx.figure(fig, "variance_cov", f"{PAPER}, Figs. 9.8–9.14: Monte Carlo variances against W(1 − W), their ratio "
               "over training, and E(O_i O_j) against the ensemble-network estimates (activities unitless).")
