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
from droplab.experiments.bs.common import (
    DEEP_PAPER_PROFILE,
    DEEP_SMOKE_PROFILE,
    PAPER,
    DeepNetConfig,
    layer_statistics,
    trained_pair,
)
from droplab.experiments.claims import ClaimSpec, Criterion
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


FIG95_QUOTE = ("'the results show how well the NWGM(O_i^l) and the deterministic values W_i^l approximate the true "
               "expectation E(O_i^l) in each layer, both at the beginning and the end of learning, and how the "
               "deviations can roughly be viewed as small, approximately Gaussian, fluctuations well within the "
               "bounds derived in Section 8' (§9.5)")
BOUNDS = ClaimSpec(
    id="bs-fig93-bounds", kind="claim", where="§9.5, Fig. 9.3 (eq. 87)",
    statement="In the hidden layers of a trained deep logistic net, |E − NWGM| lies well within the bounds of eq. 87.",
    quote=FIG95_QUOTE, paper_value="deviations 'well within' bound 2 (Fig. 9.3)",
    criterion=Criterion(quantity="per seed, the median over (unit, input) pairs of all hidden layers of |E − NWGM| / "
                                 "(E(1−E)|1−2E|/(1−2E(1−E))) after training", op="<", threshold=0.5,
                        reading="'well within the bounds' read as the typical deviation using less than half of the "
                                "variance-free bound of eq. 87 (a coverage of 100% would be 'within')."),
    method="t", regime="a deep logistic net trained with dropout (keep 0.8 input, 0.5 hidden)")
EXPANSION = ClaimSpec(
    id="bs-fig94-95-mean-expansion", kind="claim", where="§9.5, Figs. 9.4–9.5 (App. B, eq. 202)",
    statement="The expansion around the mean (eq. 202) approximates |E − NWGM| slightly more accurately than the "
              "expansion around 0.5 (eq. 87).",
    quote="'In general, this approximation is slightly more accurate than the approximation obtained in Section 8 by "
          "expanding around 0.5 (Eq. (87)), as shown by Figs. 9.4 and 9.5' (App. B, eq. 202)",
    paper_value="eq. 202 slightly more accurate than eq. 87",
    criterion=Criterion(quantity="paired difference (eq. 87 − eq. 202) of the median absolute error of the "
                                 "approximated |E − NWGM| over the pairs of all hidden layers, after training",
                        op=">", threshold=0.0,
                        reading="'in general … slightly more accurate' read as a smaller median error pooled over "
                                "the layers (not in every layer)."),
    method="paired-t", regime="a deep logistic net trained with dropout")
CENTERED = ClaimSpec(
    id="bs-fig96-97-centered", kind="claim", where="§9.5, Figs. 9.6–9.7",
    statement="NWGM − E and W − E are small, approximately Gaussian deviations centered near 0 in every layer, "
              "before and after training.",
    quote=FIG95_QUOTE, paper_value="histograms centered near 0 (Figs. 9.6–9.7)",
    criterion=Criterion(quantity="per seed, the largest over layers, before/after training and both deviations "
                                 "(NWGM − E, W − E) of |mean| / std", op="<", threshold=0.5,
                        reading="'fluctuations' around E read as deviations whose mean is less than half their "
                                "spread (the paper gives no absolute threshold; the old 0.01 was not the paper's)."),
    method="t", regime="a deep logistic net, before and after training with dropout")
NO_ACCUMULATION = ClaimSpec(
    id="bs-sec95-no-accumulation", kind="claim", where="§9.5, eqs. 109–116",
    statement="The deviations W − E cancel rather than accumulate across layers.",
    quote="'Approximation errors tend to cancel each other and do not accumulate' (§9.5); eq. 114 propagates "
          "ε^{l+1} = α^{l+1} + β^{l+1}, α the NWGM error of the layer, β the propagated error of the layer below",
    paper_value="no accumulation across the four hidden layers",
    criterion=Criterion(quantity="per seed, std(W − E) in the last hidden layer / Σ over hidden layers of "
                                 "std(NWGM − E), after training", op="<", threshold=1.0,
                        reading="if the errors of eq. 114 accumulated, the last layer's error would be as large as "
                                "the sum of the NWGM errors α^l added layer by layer; 'cancel … do not accumulate' is "
                                "a ratio below 1."),
    method="t", regime="a deep logistic net trained with dropout, at least two hidden layers")


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
            "dropout classifier", config=DeepApproxConfig, claims=[BOUNDS, EXPANSION, CENTERED, NO_ACCUMULATION])
def run(cfg: DeepApproxConfig, ctx: RunContext) -> None:
    per = {}
    for seed in ctx.seeds():
        initial, model, x, metrics = trained_pair(ctx, cfg, seed)
        before = layer_statistics(ctx, f"mc_before_s{seed}", initial, x, cfg, offset=11 + 100 * seed)
        after = layer_statistics(ctx, f"mc_after_s{seed}", model, x, cfg, offset=12 + 100 * seed)
        per[seed] = {"before": before, "after": after, "metrics": metrics, "pooled": _pooled(after),
                     "rows": _layer_rows(before, "before") + _layer_rows(after, "after")}
    ctx.table("layers", [{"seed": s, **r} for s, p in per.items() for r in p["rows"]])
    ctx.log(test_acc=[p["metrics"].get("test_acc") for p in per.values()])
    pooled = [p["pooled"] for p in per.values()]
    ctx.claim(BOUNDS, [q["median_gap_over_bound2"] for q in pooled],
              measured={"min_fraction_bound2_per_layer": [min(r["frac_within_bound2"] for r in p["rows"]
                                                              if r["when"] == "after") for p in per.values()]})
    ctx.claim(EXPANSION, [q["median_err_approx87"] - q["median_err_approx202"] for q in pooled],
              measured={"median_err_eq87": [q["median_err_approx87"] for q in pooled],
                        "median_err_eq202": [q["median_err_approx202"] for q in pooled]})
    ctx.claim(CENTERED, [max(abs(r[f"{q}_mean"]) / r[f"{q}_std"] for r in p["rows"]
                             for q in ("nwgm_minus_E", "W_minus_E")) for p in per.values()],
              measured={"mean_W_minus_E": [[r["W_minus_E_mean"] for r in p["rows"]] for p in per.values()],
                        "std_W_minus_E": [[r["W_minus_E_std"] for r in p["rows"]] for p in per.values()]})
    after_rows = {s: [r for r in p["rows"] if r["when"] == "after"] for s, p in per.items()}
    ctx.claim(NO_ACCUMULATION, [rs[-1]["W_minus_E_std"] / sum(r["nwgm_minus_E_std"] for r in rs)
                                for rs in after_rows.values()],
              regime_met=len(cfg.hidden) >= 2, regime_reason="a single hidden layer has nothing to accumulate",
              measured={"std_W_minus_E_by_layer": [[r["W_minus_E_std"] for r in rs] for rs in after_rows.values()],
                        "std_NWGM_minus_E_by_layer": [[r["nwgm_minus_E_std"] for r in rs]
                                                      for rs in after_rows.values()]})
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
