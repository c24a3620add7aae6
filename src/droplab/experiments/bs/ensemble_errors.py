"""Baldi & Sadowski 2014, §4.3, §6, §7.1, §8: errors of combined ensembles, and how close the NWGM is to E.

Reproduce: ``droplab run bs-ensemble-errors --profile quick`` (the dropout nets of ``bs-spiking``: real
MNIST, the 4,000 ``mnist-5k`` training images, logistic 784-128-128-10 with keep 0.5 on the hidden
units, Adam 1,500 steps; a ``reproduce`` trains them once for both experiments).

* eq. 47 (check): the NWGM of a layer of normalized exponential units, normalized over the classes
  (eq. 44), is the softmax of the expected linear sums — by enumeration of every mask of small layers
  (unit dropout with unequal keep probabilities, connection dropout), and on the trained nets' outputs.
* §7.1 (check): the logistic functions, and only they among the sigmoids tried, satisfy NWGM(f) = f(E);
  eqs. 63–64 recover a logistic from two of its values.
* eqs. 56–58: for each test image, K sampled sub-networks form an ensemble; Error(E), Error(WGM) and
  Error(NWGM) are compared with E(Error). For the relative entropy all three inequalities are theorems
  (a check); for the squared error eqs. 57–58 are not (the paper's composition lemma needs a
  non-decreasing error, see :mod:`droplab.ensemble.errors`), so whether they hold on real nets is a claim.
  The deterministic weight-scaled net W is compared with E(Error) too (§6, last paragraph).
* eqs. 83–86: on the sub-network output sets of the trained nets' logistic hidden units, is the NWGM
  closer to E than the geometric mean G, and than a randomly drawn member (expected error Σ P_i|O_i − E|)?
  The same fractions on the four sampling distributions of §9.2 are reported beside.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from droplab._checks import check_int
from droplab.ensemble import errors as ER
from droplab.ensemble import means as M
from droplab.ensemble import transfer as T
from droplab.ensemble.montecarlo import ensemble_activations, subnetwork_outputs
from droplab.experiments.bs.nwgm_sampling import DISTRIBUTIONS, draw
from droplab.experiments.bs.spiking import SpikingNetConfig, train_net
from droplab.experiments.claims import load_claims
from droplab.experiments.common import load_task
from droplab.experiments.plotting import subplots
from droplab.experiments.registry import experiment
from droplab.experiments.run import RunContext

PAPER = "Baldi & Sadowski 2014"
F64 = torch.float64
TOL = 1e-12  # relative float64 tolerance of the exact inequalities


@dataclass
class EnsembleErrorsConfig(SpikingNetConfig):
    """The dropout nets of bs-spiking; ``n_test`` test images (None: all) with ``output_samples``
    sub-networks each for eqs. 56–58; ``n_inputs`` images with ``hidden_samples`` sub-networks for the hidden
    units' sets (eqs. 83–86); ``n_sets`` sets of ``set_size`` values per §9.2 distribution; ``n_enum`` inputs of
    the enumerated softmax layer (2^n_enum masks)."""

    n_test: int | None = None
    output_samples: int = 100
    n_inputs: int = 50
    hidden_samples: int = 500
    n_sets: int = 2000
    set_size: int = 100
    n_enum: int = 10

    PROFILES = {
        "smoke": {"hidden": (16, 16), "steps": 30, "n_train": 200, "n_test": 50, "output_samples": 20, "n_inputs": 5,
                  "hidden_samples": 50, "n_sets": 100, "n_enum": 6},
        "paper": {"dataset": "mnist", "hidden": (1200, 1200, 1200), "steps": 30000, "output_samples": 1000,
                  "n_inputs": 100, "hidden_samples": 10000, "n_sets": 10000},
    }

    def validate(self) -> None:
        super().validate()
        for name in ("output_samples", "hidden_samples", "n_sets"):
            check_int(name, getattr(self, name), minimum=2)
        check_int("set_size", self.set_size, minimum=2)
        check_int("n_enum", self.n_enum, minimum=2)
        if self.n_enum > 16:
            raise ValueError(f"n_enum must be <= 16 (2^n_enum masks are enumerated), got {self.n_enum}")
        for name in ("n_test", "n_inputs"):
            if getattr(self, name) is not None:
                check_int(name, getattr(self, name), minimum=1)


SPECS = load_claims(__package__)
EQ47, SEC71, JENSEN, ORDER = (SPECS["bs-eq47-softmax-nwgm"], SPECS["bs-sec71-logistic-unique"],
                              SPECS["bs-eq56-58-exact"], SPECS["bs-sec8-g-nwgm-order"])


EQ57, EQ58, DETERMINISTIC, CLOSER_G, CLOSER_SAMPLE = (SPECS["bs-eq57-squared"], SPECS["bs-eq58-squared"],
                                                      SPECS["bs-sec6-deterministic-beats-members"],
                                                      SPECS["bs-sec8-nwgm-closer-than-g"],
                                                      SPECS["bs-sec8-nwgm-closer-than-sample"])


def enumerated_softmax_gap(n: int, g: torch.Generator) -> dict[str, float]:
    """max |NWGM − softmax(E S)| over every mask of two small softmax layers (eq. 47, any distribution)."""
    k = 3
    w, x = torch.randn(k, n, generator=g, dtype=F64), torch.randn(n, generator=g, dtype=F64)
    keep = 0.2 + 0.7 * torch.rand(n, generator=g, dtype=F64)  # unequal keep probabilities
    masks = torch.tensor(list(itertools.product((0.0, 1.0), repeat=n)), dtype=F64)  # (2^n, n)
    prob = (masks * keep + (1 - masks) * (1 - keep)).prod(-1)
    s = (masks * x) @ w.T  # (2^n, k): unit dropout on the inputs, shared by the k classes (not factorial)
    unit = (ER.normalized_exponential_nwgm(torch.softmax(s, -1).T, prob) - torch.softmax(w @ (keep * x), -1)).abs()
    w2, x2 = torch.randn(k, 4, generator=g, dtype=F64), torch.randn(4, generator=g, dtype=F64)
    q = 0.3 + 0.5 * torch.rand(k, 4, generator=g, dtype=F64)
    edges = torch.tensor(list(itertools.product((0.0, 1.0), repeat=k * 4)), dtype=F64).reshape(-1, k, 4)
    p_edges = (edges * q + (1 - edges) * (1 - q)).flatten(1).prod(-1)
    s2 = (edges * w2 * x2).sum(-1)  # (2^12, k): connection dropout (factorial over classes)
    conn = (ER.normalized_exponential_nwgm(torch.softmax(s2, -1).T, p_edges) - torch.softmax((q * w2) @ x2, -1)).abs()
    return {"unit_dropout": float(unit.max()), "connection_dropout": float(conn.max())}


def logistic_uniqueness(g: torch.Generator) -> dict[str, Any]:
    """§7.1: NWGM identity gaps of logistic and non-logistic sigmoids on random weighted sets; eqs. 63–64."""
    s = 1.5 * torch.randn(2000, 8, generator=g, dtype=F64)
    e = torch.rand(2000, 8, generator=g, dtype=F64).log().neg()
    w = e / e.sum(-1, keepdim=True)
    logistic = {f"c={c},λ={lam}": (lambda t, c=c, lam=lam: T.logistic(t, lam, c))
                for c, lam in ((1.0, 1.0), (0.3, 2.5), (4.0, 0.5))}
    logistic["(1+tanh)/2"] = lambda t: (1 + torch.tanh(t)) / 2
    others = {"arctan": lambda t: 0.5 + torch.atan(t) / math.pi,
              "x/sqrt(1+x^2)": lambda t: (1 + t / (1 + t * t).sqrt()) / 2, "probit": torch.special.ndtr}
    gaps = {name: float(T.nwgm_identity_gap(f, s, w).abs().max()) for name, f in {**logistic, **others}.items()}
    c, lam, u, v = 0.7, 1.8, -1.3, 2.1
    fu, fv = (float(T.logistic(torch.tensor(z, dtype=F64), lam, c)) for z in (u, v))
    odds_u, odds_v = (1 - fu) / fu, (1 - fv) / fv
    c_hat = odds_u ** (v / (v - u)) * odds_v ** (-u / (v - u))  # eq. 63
    lam_hat = math.log(odds_u / odds_v) / (v - u)  # eq. 64
    return {"gaps_logistic": {k: gaps[k] for k in logistic}, "gaps_other": {k: gaps[k] for k in others},
            "c": [c, c_hat], "lambda": [lam, lam_hat],
            "passed": max(gaps[k] for k in logistic) <= 1e-9 and min(gaps[k] for k in others) > 1e-3
            and abs(c_hat - c) <= 1e-9 and abs(lam_hat - lam) <= 1e-9}


def _hidden_sets(s: Tensor) -> dict[str, Tensor]:
    """E, G, NWGM, V and the random member's expected error of logistic units' sub-network sets.

    ``s`` is (K, N, d) pre-activations; O = σ(S) in float64, members last."""
    values = torch.sigmoid(s.to(F64)).permute(1, 2, 0).reshape(-1, s.shape[0])
    sm = M.summary(values)
    return {"E": sm.expectation, "G": sm.geometric_mean, "NWGM": sm.nwgm, "V": sm.variance,
            "MAD": M.mean_absolute_deviation(values)}


def _one_seed(cfg: EnsembleErrorsConfig, ctx: RunContext, seed: int) -> dict[str, Any]:
    train, test = load_task(cfg.dataset, cfg.n_train, device=cfg.device)
    model, metrics = train_net(ctx, cfg, "dropout", seed, train, test)
    names = {m: n for n, m in model.named_modules()}
    # the hidden linears fed through a noise layer: their sums S vary over sub-networks (the first's do not)
    out_name, hidden_names = names[model.linears[-1]], [names[lin] for lin in model.linears[1:-1]]
    x, y = (test.x, test.y) if cfg.n_test is None else (test.x[:cfg.n_test], test.y[:cfg.n_test])

    def sample() -> dict[str, Any]:
        logits = subnetwork_outputs(model, x, [out_name], cfg.output_samples,
                                    generator=torch.Generator().manual_seed(seed * 1_000_003 + 11))[out_name]
        pre = subnetwork_outputs(model, x[:cfg.n_inputs], hidden_names, cfg.hidden_samples,
                                 generator=torch.Generator().manual_seed(seed * 1_000_003 + 12)) if hidden_names else {}
        w_out = ensemble_activations(model, x, [out_name])[out_name]
        return {"logits": logits, "pre": pre, "w_logits": w_out}

    got = ctx.stage(f"samples_s{seed}", sample)
    logits = got["logits"].to(F64)  # (K, N, k)
    probs = torch.softmax(logits, -1).permute(1, 2, 0)  # (N, k, K): members last
    eq47_gap = float((ER.normalized_exponential_nwgm(probs) - torch.softmax(logits.mean(0), -1)).abs().max())
    err = {loss: ER.softmax_ensemble_errors(probs, y, loss=loss) for loss in ER.LOSSES}
    w_err = {loss: ER.softmax_ensemble_errors(torch.softmax(got["w_logits"].to(F64), -1).unsqueeze(-1), y,
                                              loss=loss).expected for loss in ER.LOSSES}  # one member: Error(W)

    def above(a: Tensor, b: Tensor) -> Tensor:
        return a > b + TOL * (1 + b.abs())

    ce, sq = err["relative-entropy"], err["squared"]
    exact_ok = not any(bool(above(v, e.expected).any()) for e, v in
                       ((ce, ce.of_expectation), (ce, ce.of_wgm), (ce, ce.of_nwgm), (sq, sq.of_expectation)))
    parts = [_hidden_sets(s) for s in got["pre"].values()]
    sets = {k: torch.cat([p[k] for p in parts]) if parts else torch.zeros(0, dtype=F64)
            for k in ("E", "G", "NWGM", "V", "MAD")}
    live = (sets["V"] > 0) & sets["NWGM"].isfinite()
    d_nwgm, d_g = (sets["E"] - sets["NWGM"]).abs()[live], (sets["E"] - sets["G"])[live]
    below = (sets["NWGM"] <= sets["E"])[live]
    order_ok = bool((sets["G"][live] <= sets["NWGM"][live] + TOL).all()) and bool((d_nwgm <= d_g + TOL)[below].all())
    return {
        "test_acc": metrics["test_acc"], "eq47_gap": eq47_gap, "exact_ok": exact_ok, "order_ok": order_ok,
        "violations_wgm": float(above(sq.of_wgm, sq.expected).double().mean()),
        "violations_nwgm": float(above(sq.of_nwgm, sq.expected).double().mean()),
        "gain_w": float((ce.expected - w_err["relative-entropy"]).mean()),
        "gain_w_squared": float((sq.expected - w_err["squared"]).mean()),
        "closer_than_g": float((d_nwgm < d_g).double().mean()) if live.any() else math.nan,
        "closer_than_sample": float((d_nwgm < sets["MAD"][live]).double().mean()) if live.any() else math.nan,
        "n_sets": int(live.sum()),
        "errors": {f"{loss}_{k}": getattr(e, k).mean().item() for loss, e in err.items()
                   for k in ("of_expectation", "of_wgm", "of_nwgm", "expected")},
        "plot": {"sq_expected": sq.expected, "sq_nwgm": sq.of_nwgm, "d_nwgm": d_nwgm, "d_g": d_g,
                 "mad": sets["MAD"][live], "V": sets["V"][live]},
    }


def paper_distributions(cfg: EnsembleErrorsConfig, g: torch.Generator) -> dict[str, dict[str, float]]:
    """Fractions of sets where the NWGM beats G and a random member, on the four §9.2 distributions; and the
    exact inequalities for single outputs with random targets t ∈ [0, 1] (eqs. 56–58, relative entropy)."""
    out = {}
    for name in DISTRIBUTIONS:
        v = draw(name, (cfg.n_sets, cfg.set_size), g)
        sm = M.summary(v)
        d = (sm.expectation - sm.nwgm).abs()
        t = torch.rand(cfg.n_sets, generator=g, dtype=F64)
        e = ER.ensemble_errors(v, t, loss="relative-entropy")
        sq = ER.ensemble_errors(v, t, loss="squared")
        worst = max(float(((a - e.expected) / (1 + e.expected.abs())).max())
                    for a in (e.of_expectation, e.of_wgm, e.of_nwgm))
        out[name] = {"closer_than_g": float((d < sm.expectation - sm.geometric_mean).double().mean()),
                     "closer_than_sample": float((d < M.mean_absolute_deviation(v)).double().mean()),
                     "max_rel_excess_relative_entropy": worst,
                     "max_rel_excess_squared_eq56": float(((sq.of_expectation - sq.expected) /
                                                           (1 + sq.expected)).max()),
                     "squared_nwgm_violations": float((sq.of_nwgm > sq.expected).double().mean())}
    return out


@experiment("bs-ensemble-errors", paper=PAPER, config=EnsembleErrorsConfig,
            reproduces="§4.3, §6, §7.1, §8: softmax NWGM (eq. 47), Error(E/WGM/NWGM) vs E(Error) (eqs. 56–58), "
                       "logistic uniqueness, NWGM vs G and vs a random member (eqs. 83–86)",
            claims=[EQ47, SEC71, JENSEN, ORDER, EQ57, EQ58, DETERMINISTIC, CLOSER_G, CLOSER_SAMPLE])
def run(cfg: EnsembleErrorsConfig, ctx: RunContext) -> None:
    enum = enumerated_softmax_gap(cfg.n_enum, ctx.generator(1))
    uniq = logistic_uniqueness(ctx.generator(2))
    dists = paper_distributions(cfg, ctx.generator(3))
    per = {s: _one_seed(cfg, ctx, s) for s in ctx.seeds()}
    seeds = list(per)
    col = {k: [per[s][k] for s in seeds] for k in ("test_acc", "eq47_gap", "violations_wgm", "violations_nwgm",
                                                    "gain_w", "gain_w_squared", "closer_than_g",
                                                    "closer_than_sample", "n_sets")}
    ctx.table("per_seed", [{"seed": s, **{k: per[s][k] for k in col}, **per[s]["errors"]} for s in seeds])
    ctx.table("paper_distributions", [{"distribution": k, **v} for k, v in dists.items()])
    ctx.log(enumerated_eq47_gap=enum, logistic_uniqueness={k: v for k, v in uniq.items() if k != "passed"})

    ctx.check(EQ47, max(*enum.values(), *col["eq47_gap"]) <= TOL, {"enumerated": enum, "trained": col["eq47_gap"]})
    ctx.check(SEC71, uniq["passed"], {k: v for k, v in uniq.items() if k != "passed"})
    exact_dists = all(d["max_rel_excess_relative_entropy"] <= TOL and d["max_rel_excess_squared_eq56"] <= TOL
                      for d in dists.values())
    ctx.check(JENSEN, all(per[s]["exact_ok"] for s in seeds) and exact_dists,
        {"trained_nets": [per[s]["exact_ok"] for s in seeds],
         "paper_distributions": {k: [v["max_rel_excess_relative_entropy"], v["max_rel_excess_squared_eq56"]]
                                 for k, v in dists.items()}})
    ctx.check(ORDER, all(per[s]["order_ok"] for s in seeds), {"per_seed": [per[s]["order_ok"] for s in seeds]})

    learned = [a >= 0.5 for a in col["test_acc"]]
    nets = {"regime_met": learned, "regime_values": {"test_acc": col["test_acc"]},
            "regime_reason": "a dropout net did not learn (test accuracy < 0.5)"}
    ctx.claim(EQ57, col["violations_wgm"], **nets,
              measured={"errors": [per[s]["errors"] for s in seeds],
                        "paper_distributions": {k: v["squared_nwgm_violations"] for k, v in dists.items()}})
    ctx.claim(EQ58, col["violations_nwgm"], **nets, measured={"errors": [per[s]["errors"] for s in seeds]})
    ctx.claim(DETERMINISTIC, col["gain_w"], **nets, measured={"gain_squared_error": col["gain_w_squared"]})
    sets_ok = [a and n > 0 for a, n in zip(learned, col["n_sets"])]
    gate = {"regime_met": sets_ok, "regime_values": {"test_acc": col["test_acc"], "n_sets": col["n_sets"]},
            "regime_reason": "a dropout net did not learn, or no hidden unit varied over the sub-networks"}
    ctx.claim(CLOSER_G, col["closer_than_g"], **gate,
              measured={"paper_distributions": {k: v["closer_than_g"] for k, v in dists.items()}})
    ctx.claim(CLOSER_SAMPLE, col["closer_than_sample"], **gate,
              measured={"paper_distributions": {k: v["closer_than_sample"] for k, v in dists.items()}})

    first = per[seeds[0]]["plot"]
    fig, ax = subplots(1, 2, figsize=(11, 4))
    ax[0].scatter(first["sq_expected"], first["sq_nwgm"], s=5)
    top = float(max(first["sq_expected"].max(), first["sq_nwgm"].max()))
    ax[0].plot([0, top], [0, top], "k:", lw=1, label="Error(NWGM) = E(Error)")
    ax[0].set(xlabel="E(Error): mean squared error of the sub-networks", ylabel="squared error of the NWGM (eq. 44)",
              title="eq. 58, squared error, per test image")
    ax[0].legend(fontsize=8)
    order = first["V"].argsort()
    for key, label in (("d_g", "E − G"), ("mad", "random member Σ P|O − E|"), ("d_nwgm", "|E − NWGM|")):
        ax[1].scatter(first["V"][order], first[key][order].clamp_min(1e-12), s=2, label=label)
    ax[1].set(xscale="log", yscale="log", xlabel="V = Var O over sub-networks", ylabel="error as an estimate of E",
              title="eqs. 83–86: hidden-unit sets")
    ax[1].legend(fontsize=8, markerscale=4)
    ctx.figure(fig, "ensemble_errors",
               f"{ctx.paper}, §6 and §8 on a trained net (not a paper figure): left, per test image of {cfg.dataset}, "
               f"the squared error of the NWGM of {cfg.output_samples} sampled sub-networks against their mean squared "
               f"error (points above the diagonal violate eq. 58); right, for the logistic hidden units' sets "
               f"({cfg.hidden_samples} sub-networks, {cfg.n_inputs} test images), the distance to E of G, of a random "
               f"member and of the NWGM against V (seed {seeds[0]}, logistic {cfg.hidden}, keep {cfg.r}).",
               claims=[EQ58.id, CLOSER_G.id, CLOSER_SAMPLE.id])
