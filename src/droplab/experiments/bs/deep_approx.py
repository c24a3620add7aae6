"""Baldi & Sadowski 2014, §9.5, Figs. 9.3–9.7 and 9.15: the dropout approximations in a deep logistic classifier.

Reproduce: ``droplab run bs-deep-approx --profile quick`` (real MNIST digits, ``mnist-5k``: 784-256⁴-10
logistic units — the widest four hidden layers that fit the quick budget, see
:mod:`droplab.experiments.bs.common` — keep 0.8/0.5, 2,000 sub-networks for each of 10 inputs, 3
seeds; ``paper``: MNIST 784-1200⁴-10, 10,000 sub-networks; needs the MNIST files).

For fixed weights (before and after training) and fixed test inputs, Monte Carlo over dropout
sub-networks gives, for every hidden unit, E (the true ensemble mean), V, and NWGM (from the
logits in float64); the deterministic ensemble network gives W. Per layer: |E − NWGM| against
the second-order approximations (eq. 87 around 0.5, eq. 202 around the mean) and the bounds of
eq. 87 (Figs. 9.3–9.5); the distributions of NWGM − E and W − E (Figs. 9.6–9.7); the layer-to-layer
propagation of §9.5's induction (eqs. 109–114): W's error ε = E − W splits into the layer's own
NWGM error α = E − NWGM and β = NWGM − W, which eq. 112 predicts from the errors ε of the layer
below; and E(σ′(S)) against σ′(E(S)) (eq. 220, Fig. 9.15; for a logistic unit σ′(E(S)) =
NWGM(1 − NWGM) and E(σ′(S)) = E − E² − Var(O)).

Reading of eq. 114 ("no accumulation"): the induction holds if the error a layer passes up, β^{l+1},
is smaller than the error ε^l it comes from; the per-layer gain rms(β^{l+1}) / rms(ε^l) < 1 means
ε^l stays of the order of the α's instead of growing with depth.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from scipy import stats
from torch import nn

from droplab.ensemble import approximations as A
from droplab.ensemble import means as M
from droplab.experiments.bs.common import (
    DEEP_PAPER_PROFILE,
    DEEP_SMOKE_PROFILE,
    PAPER,
    DeepNetConfig,
    layer_statistics,
    trained_pair,
)
from droplab.experiments.claims import load_claims
from droplab.experiments.plotting import subplots
from droplab.experiments.registry import experiment
from droplab.experiments.run import RunContext


@dataclass
class DeepApproxConfig(DeepNetConfig):
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


SPECS = load_claims(__package__)
BOUNDS, EXPANSION, CENTERED, NO_ACCUMULATION, PROPAGATION, DERIVATIVE = (SPECS["bs-fig93-bounds"],
                                                                         SPECS["bs-fig94-95-mean-expansion"],
                                                                         SPECS["bs-fig96-97-centered"],
                                                                         SPECS["bs-sec95-no-accumulation"],
                                                                         SPECS["bs-eq112-propagation"],
                                                                         SPECS["bs-fig915-derivative"])


def _propagation(model: nn.Module, layers: list[dict[str, Any]], samples: int) -> dict[str, Any]:
    """Per hidden layer l ≥ 2: measured β = NWGM − W, eq. 112's β̂, and ε = E − W of the layer below;
    ``noise``: the largest over layers 1 … L−1 of rms Monte Carlo SE of E (√(V/K)) / rms ε.

    droplab's dropout is inverted (kept units × 1/p), so E(S) = Σ w E(O) and the ensemble network uses w
    itself: the paper's p_j w_ij is the trained weight, and eq. 112 is applied with p = 1.
    """
    keep = 1.0
    noise = max((float((s["V"] / samples).mean().sqrt() / (s["E"] - s["W"]).pow(2).mean().sqrt())
                 for s in layers[:-1]), default=float("nan"))
    lins = [m for m in model.modules() if isinstance(m, nn.Linear)]
    beta, beta_hat, eps_below = [], [], []
    for k in range(1, len(layers)):
        below, here = layers[k - 1], layers[k]
        eps = below["E"] - below["W"]
        beta.append((here["NWGM"] - here["W"]).flatten())
        beta_hat.append(A.propagated_error(lins[k].weight.detach(), keep, eps, here["NWGM"]).flatten())
        eps_below.append(eps.flatten())
    if not beta:
        return {"explained": float("nan"), "gains": [], "noise": noise}
    b, bh = torch.cat(beta), torch.cat(beta_hat)
    rms = [float(x.pow(2).mean().sqrt()) for x in beta]
    return {"explained": float(1 - (b - bh).pow(2).sum() / b.pow(2).sum()), "beta": b, "beta_hat": bh, "noise": noise,
            "gains": [r / float(e.pow(2).mean().sqrt()) for r, e in zip(rms, eps_below)]}


def _derivative(layers: list[dict[str, Any]], samples: int) -> dict[str, Any]:
    """E(σ′(S)) = E − E² − Var(O) (population) and σ′(E(S)) = NWGM(1 − NWGM) over all hidden units (eq. 220)."""
    mean_d = torch.cat([A.logistic_derivative_mean(s["E"], s["V"] * (samples - 1) / samples).flatten()
                        for s in layers])
    at_mean = torch.cat([(s["NWGM"] * (1 - s["NWGM"])).flatten() for s in layers])
    return {"ratio": float((mean_d - at_mean).abs().mean() / mean_d.mean()), "diff": mean_d - at_mean}


def _pooled(layers: list[dict[str, Any]]) -> dict[str, float]:
    """Pooled over all hidden layers: median |E − NWGM| / bound 2 and the median errors of eqs. 87 and 202."""
    e = torch.cat([s["E"].flatten() for s in layers])
    v = torch.cat([s["V"].flatten() for s in layers])
    gap = (e - torch.cat([s["NWGM"].flatten() for s in layers])).abs()
    b2 = M.nwgm_bound_variance_free(e)
    ok = b2 > 0
    return {"median_gap_over_bound2": float((gap[ok] / b2[ok]).median()),
            "median_err_approx87": float((M.nwgm_error_second_order(e, v).abs() - gap).abs().median()),
            "median_err_approx202": float(((e - M.nwgm_second_order_mean(e, v)).abs() - gap).abs().median())}


@experiment("bs-deep-approx", paper=PAPER, reproduces="Figs. 9.3–9.7: E vs NWGM vs W per layer of a deep logistic "
            "dropout classifier; eqs. 112–114 and 220", config=DeepApproxConfig,
            claims=[BOUNDS, EXPANSION, CENTERED, NO_ACCUMULATION, PROPAGATION, DERIVATIVE])
def run(cfg: DeepApproxConfig, ctx: RunContext) -> None:
    per = {}
    for seed in ctx.seeds():
        initial, model, x, metrics = trained_pair(ctx, cfg, seed)
        before = layer_statistics(ctx, f"mc_before_s{seed}", initial, x, cfg, offset=11 + 100 * seed)
        after = layer_statistics(ctx, f"mc_after_s{seed}", model, x, cfg, offset=12 + 100 * seed)
        per[seed] = {"before": before, "after": after, "metrics": metrics, "pooled": _pooled(after),
                     "rows": _layer_rows(before, "before") + _layer_rows(after, "after"),
                     "prop": {"before": _propagation(initial, before, cfg.samples),
                              "after": _propagation(model, after, cfg.samples)},
                     "deriv": {"before": _derivative(before, cfg.samples), "after": _derivative(after, cfg.samples)}}
    ctx.table("layers", [{"seed": s, **r} for s, p in per.items() for r in p["rows"]])
    accs = [p["metrics"].get("test_acc") for p in per.values()]
    ctx.log(test_acc=accs)
    # every claim reads the trained net (some also the initial one): it must have learned (5× chance on 10 classes)
    trained = [a is not None and a >= 0.5 for a in accs]
    gate = {"regime_met": trained, "regime_values": {"test_acc": accs},
            "regime_reason": "the net did not reach 50% test accuracy; the claims are about a trained classifier"}
    pooled = [p["pooled"] for p in per.values()]
    ctx.claim(BOUNDS, [q["median_gap_over_bound2"] for q in pooled], **gate,
              measured={"min_fraction_bound2_per_layer": [min(r["frac_within_bound2"] for r in p["rows"]
                                                              if r["when"] == "after") for p in per.values()]})
    ctx.claim(EXPANSION, [q["median_err_approx87"] - q["median_err_approx202"] for q in pooled], **gate,
              measured={"median_err_eq87": [q["median_err_approx87"] for q in pooled],
                        "median_err_eq202": [q["median_err_approx202"] for q in pooled]})
    ctx.claim(CENTERED, [max(abs(r[f"{q}_mean"]) / r[f"{q}_std"] for r in p["rows"]
                             for q in ("nwgm_minus_E", "W_minus_E")) for p in per.values()], **gate,
              measured={"mean_W_minus_E": [[r["W_minus_E_mean"] for r in p["rows"]] for p in per.values()],
                        "std_W_minus_E": [[r["W_minus_E_std"] for r in p["rows"]] for p in per.values()]})
    after_rows = {s: [r for r in p["rows"] if r["when"] == "after"] for s, p in per.items()}
    deep = len(cfg.hidden) >= 2
    noise = [p["prop"]["after"]["noise"] for p in per.values()]  # the figures' weights: end of learning (§9.5)
    prop_gate = {"regime_met": [deep and t and n < 0.5 for t, n in zip(trained, noise)],
                 "regime_values": {"test_acc": accs, "mc_se_over_rms_eps": noise},
                 "regime_reason": "needs ≥ 2 hidden layers, a net that reached 50% test accuracy, and Monte Carlo "
                                  "errors of E below half the deviations ε they measure"}
    ctx.claim(NO_ACCUMULATION, [max(p["prop"]["after"]["gains"]) if deep else float("nan") for p in per.values()],
              **prop_gate,
              measured={"gain_by_layer": {s: {w: p["prop"][w]["gains"] for w in ("before", "after")}
                                          for s, p in per.items()},
                        "old_ratio_last_std_W_minus_E_over_sum_std_NWGM_minus_E": [
                            rs[-1]["W_minus_E_std"] / sum(r["nwgm_minus_E_std"] for r in rs)
                            for rs in after_rows.values()],
                        "std_W_minus_E_by_layer": [[r["W_minus_E_std"] for r in rs] for rs in after_rows.values()]})
    ctx.claim(PROPAGATION, [p["prop"]["after"]["explained"] for p in per.values()], **prop_gate,
              measured={"explained": {s: {w: p["prop"][w]["explained"] for w in ("before", "after")}
                                      for s, p in per.items()},
                        "mc_se_over_rms_eps": {s: {w: p["prop"][w]["noise"] for w in ("before", "after")}
                                               for s, p in per.items()}})
    ctx.claim(DERIVATIVE, [max(p["deriv"][w]["ratio"] for w in ("before", "after")) for p in per.values()], **gate,
              measured={"ratio": {s: {w: p["deriv"][w]["ratio"] for w in ("before", "after")} for s, p in per.items()},
                        "mean_difference": {s: {w: float(p["deriv"][w]["diff"].mean()) for w in ("before", "after")}
                                            for s, p in per.items()}})
    stats_before, stats_after = per[ctx.seeds()[0]]["before"], per[ctx.seeds()[0]]["after"]

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
    ctx.figure(fig, "fig93", f"{ctx.paper}, Figs. 9.3–9.4: per hidden layer of the trained net, Monte Carlo |E − NWGM| "
               f"against E with the eq. 87 approximation and variance-free bound (left), and W against E (right); "
               f"{cfg.n_inputs} inputs × all units, {cfg.samples} sub-networks each (activities are unitless; seed "
               f"{ctx.seeds()[0]}).", claims=[BOUNDS.id, EXPANSION.id])
    fig, ax = subplots(2, n_layers, figsize=(3.2 * n_layers, 5), squeeze=False)
    for col, (before, after_s) in enumerate(zip(stats_before, stats_after)):
        for row, q in enumerate(("NWGM", "W")):
            for label, s in (("before", before), ("after", after_s)):
                ax[row, col].hist((s[q] - s["E"]).flatten().numpy(), bins=40, histtype="step", lw=1.5, label=label)
            ax[row, col].set(title=f"layer {col + 1}", xlabel=f"{q} − E", ylabel="count")
    ax[0, 0].legend(fontsize=7)
    fig.tight_layout()
    ctx.figure(fig, "fig96_97", f"{ctx.paper}, Figs. 9.6–9.7: distributions of NWGM − E (top) and W − E (bottom) per "
               f"hidden layer, before and after training (unitless; seed {ctx.seeds()[0]}).",
               claims=[CENTERED.id])
    first = per[ctx.seeds()[0]]
    fig, ax = subplots(1, 2, figsize=(10, 4))
    for w in ("before", "after"):
        prop = first["prop"][w]
        if "beta" in prop:
            ax[0].scatter(prop["beta_hat"], prop["beta"], s=3, alpha=0.5, label=w)
        ax[1].hist(first["deriv"][w]["diff"].numpy(), bins=60, histtype="step", lw=1.5, label=w)
    lim = float(max(first["prop"][w].get("beta", torch.zeros(1)).abs().max() for w in ("before", "after")))
    ax[0].plot([-lim, lim], [-lim, lim], color="gray", lw=0.8)
    ax[0].set(xlabel="eq. 112: σ′(E(S)) Σ w p ε", ylabel="β = NWGM − W (Monte Carlo)",
              title="propagated error, hidden layers 2 … L")
    ax[1].set(xlabel="E(σ′(S)) − σ′(E(S))", ylabel="count", title="Fig. 9.15 (eq. 220)")
    for a in ax:
        a.legend(fontsize=7)
    fig.tight_layout()
    ctx.figure(fig, "propagation_fig915", f"{ctx.paper}, eq. 112 and Fig. 9.15: the error β = NWGM − W of hidden "
               "layers 2 … L against its first-order propagation from the layer below (left), and the difference "
               f"E(σ′(S)) − σ′(E(S)) over all hidden units × {cfg.n_inputs} inputs (right), before and after training "
               f"(unitless; seed {ctx.seeds()[0]}).", claims=[PROPAGATION.id, NO_ACCUMULATION.id, DERIVATIVE.id])
