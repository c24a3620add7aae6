"""Baldi & Sadowski 2014, §8 and Figs. 8.1–8.2: how close the NWGM is to the expectation.

Reproduce: ``droplab run bs-bounds --profile quick`` (pure computation; ``paper`` draws more sets).

Three checks and a claim: the curves of the variance-free bound ``E(1−E)|1−2E|/(1−2E(1−E))`` (Fig. 8.1) and
the simple bound ``2E(1−E)|1−2E|`` (Fig. 8.2) and where they peak; the §8 numeric example; the
ordering ``G ≤ NWGM ≤ E`` on random "consistently low" sets (all O ≤ 1/2, Ky Fan, eq. 81) and
``NWGM ≥ E`` on "consistently high" ones (eq. 82); and how |E − NWGM| and the violations of
eq. 87's approximate bounds shrink with the spread of the values.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from droplab._checks import check_int
from droplab.ensemble import means as M
from droplab.experiments.claims import load_claims
from droplab.experiments.config import ExperimentConfig
from droplab.experiments.plotting import subplots
from droplab.experiments.registry import experiment
from droplab.experiments.run import RunContext

PAPER = "Baldi & Sadowski 2014"
EXAMPLE = {"E": 0.676759, "G": 0.674577, "G'": 0.318648, "NWGM": 0.679179}


@dataclass
class BoundsConfig(ExperimentConfig):
    """``spreads``: the grid of logit spreads s (sets are σ(c + s·N(0, 1)), c ~ U[−4, 4]) over which eq. 87 is
    followed to s → 0."""

    n_sets: int = 20000
    set_size: int = 20
    grid: int = 100001
    spreads: tuple[float, ...] = (0.0625, 0.125, 0.25, 0.5, 1.0, 2.0)

    PROFILES = {"smoke": {"n_sets": 200, "set_size": 10, "grid": 1001, "spreads": (0.125, 0.5, 2.0)},
                "paper": {"n_sets": 200000}}

    def validate(self) -> None:
        check_int("n_sets", self.n_sets, minimum=1)
        check_int("set_size", self.set_size, minimum=1)
        check_int("grid", self.grid, minimum=3)
        if len(self.spreads) < 2 or any(not s > 0 for s in self.spreads) or list(self.spreads) != sorted(self.spreads):
            raise ValueError(f"spreads must list at least two increasing positive logit spreads, got {self.spreads}")


def random_sets(n: int, m: int, low: float, high: float, generator: torch.Generator) -> tuple[torch.Tensor, ...]:
    """``n`` value-sets of ``m`` values uniform in [low, high] with Dirichlet(1) probability weights."""
    values = low + (high - low) * torch.rand(n, m, generator=generator, dtype=torch.float64)
    e = -torch.log(torch.rand(n, m, generator=generator, dtype=torch.float64))
    return values, e / e.sum(-1, keepdim=True)


def spread_sets(n: int, m: int, spread: float, generator: torch.Generator) -> tuple[torch.Tensor, ...]:
    """Sets spread over (0, 1): σ(c + spread·N(0, 1)) with random centers c ~ U[−4, 4], Dirichlet(1) weights."""
    center = 8 * torch.rand(n, 1, generator=generator, dtype=torch.float64) - 4
    s = center + spread * torch.randn(n, m, generator=generator, dtype=torch.float64)
    e = -torch.log(torch.rand(n, m, generator=generator, dtype=torch.float64))
    return torch.sigmoid(s), e / e.sum(-1, keepdim=True)


SPECS = load_claims(__package__)
MAXIMA, EXAMPLE_CHECK, KY_FAN, EQ87 = (SPECS["bs-fig81-82-maxima"], SPECS["bs-sec8-example"], SPECS["bs-sec8-ky-fan"],
                                       SPECS["bs-eq87-bounds"])


def _eq87_seed(cfg: BoundsConfig, seed: int) -> list[dict[str, float]]:
    """Per spread of the grid: the median ratio |E − NWGM| / bound 1 and the violation fractions of both bounds."""
    g = torch.Generator().manual_seed(seed * 1_000_003 + 2)
    rows = []
    for spread in cfg.spreads:
        v, w = spread_sets(cfg.n_sets, cfg.set_size, spread, g)
        sm = M.summary(v, w)
        gap = (sm.expectation - sm.nwgm).abs()
        b1 = M.nwgm_bound_variance(sm.expectation, sm.variance)
        b2 = M.nwgm_bound_variance_free(sm.expectation)
        ok = b1 > 0
        rows.append({"seed": seed, "spread": spread, "median_ratio_bound1": float((gap[ok] / b1[ok]).median()),
                     "violations_bound1": float((gap > b1).double().mean()),
                     "violations_bound2": float((gap > b2).double().mean()),
                     "max_excess_bound2": float((gap - b2).clamp_min(0).max())})
    return rows


def _slope(x: list[float], y: list[float]) -> float:
    lx, ly = torch.tensor(x, dtype=torch.float64).log(), torch.tensor(y, dtype=torch.float64).log()
    return float(((lx - lx.mean()) * (ly - ly.mean())).sum() / ((lx - lx.mean()) ** 2).sum())


@experiment("bs-bounds", paper=PAPER, reproduces="Figs. 8.1–8.2 and §8: NWGM vs E, bounds, ordering, numeric example",
            config=BoundsConfig, claims=[MAXIMA, EXAMPLE_CHECK, KY_FAN, EQ87])
def run(cfg: BoundsConfig, ctx: RunContext) -> None:
    # Fig. 8.1 / 8.2 curves and their maxima on [0, 0.5]
    e = torch.linspace(0, 1, cfg.grid, dtype=torch.float64)
    curves = {"variance_free": M.nwgm_bound_variance_free(e), "simple": M.nwgm_bound_simple(e)}
    half = e <= 0.5
    argmax = {k: float(e[half][c[half].argmax()]) for k, c in curves.items()}
    paper_argmax = {"variance_free": M.BOUND_ARGMAX_VARIANCE_FREE, "simple": M.BOUND_ARGMAX_SIMPLE}
    step = 1 / (cfg.grid - 1)
    ctx.log(argmax_variance_free=argmax["variance_free"], argmax_simple=argmax["simple"],
            max_variance_free=float(curves["variance_free"].max()), max_simple=float(curves["simple"].max()))
    ctx.check(MAXIMA, all(abs(argmax[k] - paper_argmax[k]) <= step for k in argmax),
              {"argmax": argmax, "closed_form": paper_argmax, "grid_step": step})

    # §8 numeric example
    s = M.summary(torch.tensor([0.622459, 0.731059], dtype=torch.float64))
    got = {"E": float(s.expectation), "G": float(s.geometric_mean), "G'": float(s.complement_geometric_mean),
           "NWGM": float(s.nwgm)}
    ctx.log(example=got)
    ctx.check(EXAMPLE_CHECK, all(round(got[k], 6) == EXAMPLE[k] for k in EXAMPLE), {"computed": got, "paper": EXAMPLE})

    # Ky Fan orderings on random consistently low / high sets
    g = ctx.generator(1)
    tol = 1e-12
    rows = []
    for name, (lo, hi) in {"low": (1e-6, 0.5), "high": (0.5, 1 - 1e-6)}.items():
        v, w = random_sets(cfg.n_sets, cfg.set_size, lo, hi, g)
        sm = M.summary(v, w)
        if name == "low":
            ok = (sm.geometric_mean <= sm.nwgm + tol) & (sm.nwgm <= sm.expectation + tol)
        else:
            ok = (sm.nwgm >= sm.expectation - tol) & (sm.geometric_mean <= sm.nwgm + tol)
        rows.append({"sets": name, "n": cfg.n_sets, "fraction_ordered": float(ok.double().mean()),
                     "mean_E_minus_NWGM": float((sm.expectation - sm.nwgm).mean())})
    ctx.table("orderings", rows)
    ctx.check(KY_FAN, all(r["fraction_ordered"] == 1.0 for r in rows),
              {r["sets"]: r["fraction_ordered"] for r in rows})

    # eq. 87 over a grid of spreads, one independent draw of sets per seed
    grid_rows = [r for seed in ctx.seeds() for r in ctx.stage(f"eq87_s{seed}", lambda s=seed: _eq87_seed(cfg, s))]
    ctx.table("eq87_spreads", grid_rows)
    slopes = [_slope([r["spread"] for r in grid_rows if r["seed"] == s],
                     [r["median_ratio_bound1"] for r in grid_rows if r["seed"] == s]) for s in ctx.seeds()]
    by_spread = {sp: {k: [r[k] for r in grid_rows if r["spread"] == sp]
                      for k in ("violations_bound1", "violations_bound2", "median_ratio_bound1")}
                 for sp in cfg.spreads}
    ctx.claim(EQ87, slopes, measured={"slope_per_seed": slopes, "by_spread": by_spread})

    fig, ax = subplots(1, 3, figsize=(14, 3.8))
    for a, key, title, fig_id in ((ax[0], "variance_free", "E(1−E)|1−2E| / (1−2E(1−E))", "Fig. 8.1"),
                                  (ax[1], "simple", "2E(1−E)|1−2E|", "Fig. 8.2")):
        a.plot(e, curves[key])
        a.axvline(paper_argmax[key], color="gray", ls=":", label=f"closed-form argmax {paper_argmax[key]:.4f}")
        a.axvline(1 - paper_argmax[key], color="gray", ls=":")
        a.set(xlabel="E (expectation, unitless)", ylabel="bound on |E − NWGM|", title=f"{fig_id}: {title}")
        a.legend(fontsize=8)
    for key, marker in (("median_ratio_bound1", "o-"), ("violations_bound1", "s--"), ("violations_bound2", "^--")):
        mean = [sum(by_spread[sp][key]) / len(by_spread[sp][key]) for sp in cfg.spreads]
        ax[2].plot(cfg.spreads, [max(m, 1e-6) for m in mean], marker, label=key.replace("_", " "))
    ax[2].plot(cfg.spreads, [by_spread[cfg.spreads[0]]["median_ratio_bound1"][0] * (sp / cfg.spreads[0]) ** 2
                             for sp in cfg.spreads], color="gray", ls=":", label="∝ spread² (second order)")
    ax[2].set(xscale="log", yscale="log", xlabel="logit spread s of the set", ylabel="ratio / fraction (floored 1e-6)",
              title="eq. 87 as the spread shrinks")
    ax[2].legend(fontsize=7)
    ctx.figure(fig, "bounds", f"{ctx.paper}, Figs. 8.1–8.2: the approximate bounds on |E − NWGM| of eq. 87 as "
               "functions of E (maxima marked); right, over a grid of logit spreads, the median |E − NWGM| / bound 1 "
               f"and the fraction of sets violating bounds 1 and 2 ({cfg.n_sets} sets per spread, mean over "
               f"{len(ctx.seeds())} seeds).",
               claims=[EQ87.id])
    ctx.log(bound_peak_value=float(M.nwgm_bound_variance_free(M.BOUND_ARGMAX_VARIANCE_FREE)),
            simple_peak_value=float(M.nwgm_bound_simple(M.BOUND_ARGMAX_SIMPLE)), sqrt3_over_18=math.sqrt(3) / 18)
