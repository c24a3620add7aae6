"""Baldi & Sadowski 2014, §9.5, Figs. 9.3–9.7: the dropout approximations in a deep logistic classifier.

Reproduce: ``droplab run bs-deep-approx --profile quick`` (``paper``: MNIST 784-1200⁴-10, keep
0.8/0.5, 10,000 sub-networks for each of 10 inputs; needs the MNIST files).

For fixed weights (before and after training) and fixed test inputs, Monte Carlo over dropout
sub-networks gives, for every hidden unit, E (the true ensemble mean), V, and NWGM; the
deterministic ensemble network gives W. Per layer: |E − NWGM| against the second-order
approximations (eq. 87 around 0.5, eq. 202 around the mean) and the bounds of eq. 87 (Figs.
9.3–9.5); the distributions of NWGM − E and W − E (Figs. 9.6–9.7); and whether errors grow
with depth (§9.5's cancellation argument).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from scipy import stats

from droplab.ensemble import means as M
from droplab.experiments.bs.ensemble_net import (
    DEEP_PAPER_PROFILE,
    DEEP_SMOKE_PROFILE,
    PAPER,
    DeepNetConfig,
    layer_statistics,
    trained_pair,
)
from droplab.experiments.plotting import subplots
from droplab.experiments.registry import experiment
from droplab.experiments.run import RunContext


@dataclass
class DeepApproxConfig(DeepNetConfig):
    mean_tol: float = 0.01
    depth_factor: float = 2.0

    PROFILES = {"smoke": DEEP_SMOKE_PROFILE, "paper": DEEP_PAPER_PROFILE}


def _dist(x: torch.Tensor) -> dict[str, float]:
    v = x.flatten().double().numpy()
    return {"mean": float(v.mean()), "std": float(v.std()), "skewness": float(stats.skew(v)),
            "normaltest_stat": float(stats.normaltest(v).statistic) if v.size >= 20 else float("nan")}


def _layer_rows(layers: list[dict[str, Any]], when: str) -> list[dict[str, Any]]:
    rows = []
    for k, s in enumerate(layers):
        e, v, nw, w = s["E"], s["V"], s["NWGM"], s["W"]
        gap = (e - nw).abs()
        approx87 = M.nwgm_error_second_order(e, v).abs()
        approx202 = (e - M.nwgm_second_order_mean(e, v)).abs()
        rows.append({"when": when, "layer": k + 1,
                     "median_abs_E_minus_NWGM": float(gap.median()),
                     "frac_within_bound1": float((gap <= M.nwgm_bound_variance(e, v)).double().mean()),
                     "frac_within_bound2": float((gap <= M.nwgm_bound_variance_free(e)).double().mean()),
                     "median_err_approx87": float((approx87 - gap).abs().median()),
                     "median_err_approx202": float((approx202 - gap).abs().median()),
                     **{f"nwgm_minus_E_{k2}": v2 for k2, v2 in _dist(nw - e).items()},
                     **{f"W_minus_E_{k2}": v2 for k2, v2 in _dist(w - e).items()}})
    return rows


@experiment("bs-deep-approx", paper=PAPER, reproduces="Figs. 9.3–9.7: E vs NWGM vs W per layer of a deep logistic "
            "dropout classifier", config=DeepApproxConfig)
def run(cfg: DeepApproxConfig, ctx: RunContext) -> None:
    initial, model, x, metrics = trained_pair(ctx, cfg)
    stats_before = layer_statistics(ctx, "mc_before", initial, x, cfg, offset=11)
    stats_after = layer_statistics(ctx, "mc_after", model, x, cfg, offset=12)
    rows = _layer_rows(stats_before, "before") + _layer_rows(stats_after, "after")
    ctx.table("layers", rows)
    ctx.log(**{k: metrics[k] for k in ("train_loss", "train_acc", "test_acc") if k in metrics})
    after = [r for r in rows if r["when"] == "after"]

    frac2 = min(r["frac_within_bound2"] for r in after)
    ctx.legacy_claim(id="bs-fig93-bounds", paper=PAPER, where="§9.5, Fig. 9.3 (eq. 87)",
              statement="In every hidden layer of the trained net, |E − NWGM| stays within the bounds of eq. 87.",
              criterion="After training, in every hidden layer at least 99% of (unit, input) pairs have Monte Carlo "
                        "|E − NWGM| ≤ E(1−E)|1−2E|/(1−2E(1−E)) (the variance-free bound).",
              measured={"min_fraction_bound2": frac2,
                        "min_fraction_bound1": min(r["frac_within_bound1"] for r in after)},
              outcome=frac2 >= 0.99)

    better = all(r["median_err_approx202"] < r["median_err_approx87"] for r in after)
    ctx.legacy_claim(id="bs-fig94-95-mean-expansion", paper=PAPER, where="§9.5, Figs. 9.4–9.5 (App. B, eq. 202)",
              statement="The expansion around the mean (eq. 202) approximates NWGM more accurately than the "
                        "expansion around 0.5 (eq. 87).",
              criterion="After training, in every hidden layer the median absolute error of eq. 202's |E − NWGM| is "
                        "smaller than that of eq. 87's.",
              measured={f"layer{r['layer']}": {"eq87": r["median_err_approx87"], "eq202": r["median_err_approx202"]}
                        for r in after},
              outcome=better)

    centered = all(abs(r[f"{q}_mean"]) <= cfg.mean_tol for r in rows for q in ("nwgm_minus_E", "W_minus_E"))
    ctx.legacy_claim(id="bs-fig96-97-centered", paper=PAPER, where="§9.5, Figs. 9.6–9.7",
              statement="NWGM − E and W − E are small, approximately Gaussian deviations with mean ≈ 0 in every "
                        "layer, before and after training.",
              criterion=f"|mean| ≤ {cfg.mean_tol} for both NWGM − E and W − E in every hidden layer, before and after "
                        "training (std, skewness and the D'Agostino–Pearson statistic are reported, not judged).",
              measured={f"{r['when']}_layer{r['layer']}": {q: {"mean": r[f"{q}_mean"], "std": r[f"{q}_std"],
                                                             "skewness": r[f"{q}_skewness"]}
                                                         for q in ("nwgm_minus_E", "W_minus_E")} for r in rows},
              outcome=centered)

    first, last = after[0]["W_minus_E_std"], after[-1]["W_minus_E_std"]
    ctx.legacy_claim(id="bs-sec95-no-accumulation", paper=PAPER, where="§9.5, eqs. 109–116",
              statement="The deviations W − E cancel rather than accumulate across layers.",
              criterion=f"After training, std(W − E) in the last hidden layer ≤ {cfg.depth_factor} × std(W − E) in the "
                        "first hidden layer.",
              measured={"std_W_minus_E_by_layer": [r["W_minus_E_std"] for r in after]},
              outcome=last <= cfg.depth_factor * first)

    n_layers = len(stats_after)
    fig, ax = subplots(n_layers, 2, figsize=(10, 2.6 * n_layers), squeeze=False)
    for k, s in enumerate(stats_after):
        e, v = s["E"].flatten(), s["V"].flatten()
        gap = (e - s["NWGM"].flatten()).abs()
        order = e.argsort()
        ax[k, 0].scatter(e, gap, s=3, label="|E − NWGM| (Monte Carlo)")
        ax[k, 0].scatter(e, M.nwgm_error_second_order(e, v).abs(), s=3, label="eq. 87 approx.")
        ax[k, 0].plot(e[order], M.nwgm_bound_variance_free(e[order]), color="tab:red", lw=1, label="bound 2")
        ax[k, 0].set(xlabel="E", ylabel="|E − NWGM|", title=f"hidden layer {k + 1}")
        ax[k, 1].scatter(e, s["W"].flatten(), s=3)
        ax[k, 1].plot([0, 1], [0, 1], color="gray", lw=0.8)
        ax[k, 1].set(xlabel="E", ylabel="W (ensemble network)")
    ax[0, 0].legend(fontsize=7)
    fig.tight_layout()
    ctx.figure(fig, "fig93", f"{PAPER}, Figs. 9.3–9.4: per hidden layer of the trained net, Monte Carlo |E − NWGM| "
               f"against E with the eq. 87 approximation and variance-free bound (left), and W against E (right); "
               f"{cfg.n_inputs} inputs × all units, {cfg.samples} sub-networks each (activities are unitless).")
    fig, ax = subplots(2, n_layers, figsize=(3.2 * n_layers, 5), squeeze=False)
    for col, (before, after_s) in enumerate(zip(stats_before, stats_after)):
        for row, q in enumerate(("NWGM", "W")):
            for label, s in (("before", before), ("after", after_s)):
                ax[row, col].hist((s[q] - s["E"]).flatten().numpy(), bins=40, alpha=0.6, label=label)
            ax[row, col].set(title=f"layer {col + 1}", xlabel=f"{q} − E", ylabel="count")
    ax[0, 0].legend(fontsize=7)
    fig.tight_layout()
    ctx.figure(fig, "fig96_97", f"{PAPER}, Figs. 9.6–9.7: distributions of NWGM − E (top) and W − E (bottom) per "
               "hidden layer, before and after training (unitless).")
