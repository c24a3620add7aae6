"""Zhang, Zhou & Xu 2024, Figs. 2(a, d) and 3(a, d): the structure of the dropout noise on an FNN.

Reproduce: ``droplab run zzx-variance-flatness --profile quick`` (likewise ``zzx-hessian-variance``
and ``zzx-alignment`` in :mod:`droplab.experiments.zzx.alignment`). App. A's setting: FNN
784-50-50-10, dropout after the second hidden layer, full-batch GD (``quick``: the 4,000
``mnist-5k`` training images; ``paper``: the first 10,000 MNIST images), the block = the 50×50
weight and bias between the hidden layers (D = 2,550), N = 3,000 samples (Fig. 2) or 1,000 (Fig. 3).
The paper's "dropout rate" p is the keep probability; droplab's drop probability is 1 − p.

Every experiment here trains the same nets through :func:`trained_nets` (one per (keep, lr) pair and
seed, in ``record_every``-step chunks through ``train_stage``) and draws the same samples through a
shared stage, so one ``reproduce`` trains and samples once for all of them. The measurements are
those of :mod:`~droplab.experiments.zzx.noise_measures`, shared with the ResNet-20 and transformer
rows (:mod:`~droplab.experiments.zzx.noise_nets`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from droplab._checks import check_probability
from droplab._params import block_size, layer_block
from droplab.data import Dataset
from droplab.experiments.claims import load_claims
from droplab.experiments.common import load_task, train_stage
from droplab.experiments.plotting import subplots
from droplab.experiments.registry import experiment
from droplab.experiments.run import RunContext
from droplab.experiments.zzx.noise_measures import KINDS, PAPER, TITLES, SamplingConfig, accuracy_gate, relations
from droplab.models import FNN
from droplab.training import TrainConfig

if TYPE_CHECKING:
    from matplotlib.figure import Figure

CE = nn.functional.cross_entropy


@dataclass
class NoiseConfig(SamplingConfig):
    """FNN in-50-50-out, dropout (keep p) after hidden layer 2, full-batch GD; one net per (keep, lr) and seed."""

    dataset: str = "mnist-5k"
    n_train: int | None = None
    hidden: tuple[int, int] = (50, 50)
    pairs: tuple[tuple[float, float], ...] = ((0.8, 0.5), (0.5, 0.5))
    steps: int = 400
    record_every: int = 100

    PROFILES = {
        "smoke": {"n_train": 200, "hidden": (12, 12), "pairs": ((0.8, 0.5),), "steps": 40, "record_every": 20,
                  "n_samples": 24, "n_trajectory": 16, "n_directions": 3, "n_boot": 20, "flat_tol": 3e-2,
                  "min_train_acc": 0.0},
        "paper": {"dataset": "mnist", "n_train": 10000, "steps": 20000, "record_every": 1000, "n_samples": 3000,
                  "n_trajectory": 3000, "n_directions": 400, "flat_tol": 1e-3, "min_train_acc": 0.99},
    }

    def validate(self) -> None:
        super().validate()
        for i, (keep, lr) in enumerate(self.pairs):
            check_probability(f"pairs[{i}] keep", keep, low_open=True, high_open=False)
            if lr <= 0:
                raise ValueError(f"pairs[{i}] lr must be > 0, got {lr}")
        if self.steps % self.record_every:
            raise ValueError(f"steps ({self.steps}) must be a multiple of record_every ({self.record_every})")


def hidden_block(model: nn.Module) -> list[str]:
    """App. A's block: the weight and bias of the linear layer between the two hidden layers."""
    return layer_block(model, nn.Linear, 1)


def trained_nets(cfg: NoiseConfig, ctx: RunContext, seed: int,
                 on_chunk: Callable[[float, float, int, FNN, Dataset], None] | None = None
                 ) -> Iterator[tuple[float, float, FNN, dict[str, Any]]]:
    """Per (keep, lr): the net trained by dropout GD from the seed's initialization and its metrics.

    Training runs in ``record_every``-step chunks through ``train_stage`` (identical configs in every
    experiment, so the shared cache trains once); ``on_chunk(keep, lr, step, model, train)`` sees each
    chunk's end.
    """
    train, test = load_task(cfg.dataset, cfg.n_train, device=cfg.device)
    for keep, lr in cfg.pairs:
        torch.manual_seed(seed)  # the same initialization for every pair of one seed
        model = FNN([train.in_features, *cfg.hidden, train.n_classes], "relu", dropout={2: 1 - keep})
        metrics: dict[str, Any] = {}
        for k in range(cfg.steps // cfg.record_every):
            tcfg = TrainConfig(optimizer="gd", lr=lr, steps=cfg.record_every, eval_every=cfg.record_every,
                               seed=seed * 1000 + k)
            metrics = train_stage(ctx, f"train_keep{keep}_lr{lr}_s{seed}_{k}", model, CE, train, test, tcfg)
            if on_chunk is not None:
                on_chunk(keep, lr, (k + 1) * cfg.record_every, model, train)
        yield keep, lr, model, {**metrics, "train": train}


def _label(fig: Figure, axes: Any, xlabel: str, ylabel: str) -> None:
    """Axis labels, one panel per kind of sample (gradients, parameters), legends and spacing."""
    for ax, kind in zip(axes, KINDS):
        ax.set(xlabel=xlabel, ylabel=ylabel, title=TITLES[kind])
        ax.legend(fontsize=7)
    fig.subplots_adjust(wspace=0.35)


SPECS = load_claims(__package__)
FIG2 = {"gradient": SPECS["zzx-fig2-gradient"], "trajectory": SPECS["zzx-fig2-trajectory"]}


@experiment("zzx-variance-flatness", paper=PAPER,
            reproduces="Fig. 2(a, d): inverse relation between the PCA variance λ_i(Σ) and the interval flatness",
            config=NoiseConfig, claims=list(FIG2.values()))
def run_variance_flatness(cfg: NoiseConfig, ctx: RunContext) -> None:
    rows, slopes, metrics, censored = [], {k: [] for k in KINDS}, [], {k: [] for k in KINDS}
    fig, axes = subplots(1, 2, figsize=(11, 4))
    for seed in ctx.seeds():
        worst = {k: -float("inf") for k in KINDS}
        n_cens = {k: 0 for k in KINDS}
        for keep, lr, model, m in trained_nets(cfg, ctx, seed):
            metrics.append(m)
            fig2 = relations(cfg, ctx, f"_keep{keep}_lr{lr}_s{seed}", model, CE, m["train"], hidden_block(model), lr,
                             seed, figures=("2",))["2"]
            for ax, kind in zip(axes, KINDS):
                rel = fig2[kind]
                n_cens[kind] += rel.censored
                worst[kind] = max(worst[kind], rel.fit.slope)
                rows += [{"seed": seed, "kind": kind, "keep": keep, "lr": lr, "lambda": float(la), "flatness": float(f),
                          "slope": rel.fit.slope, "r2": rel.fit.r2} for la, f in zip(rel.x, rel.y)]
                if seed == ctx.seeds()[0]:
                    ax.loglog(rel.x, rel.y, ".", label=f"keep={keep}, lr={lr} (slope {rel.fit.slope:.2f})")
        for kind in KINDS:
            slopes[kind].append(worst[kind])
            censored[kind].append(n_cens[kind])
    _label(fig, axes, "PCA variance λ_i(Σ)", "interval flatness F along v_i(Σ)")
    ctx.table("variance_flatness", rows)
    ctx.figure(fig, "variance_flatness", f"{ctx.paper}, Fig. 2(a, d): PCA variance of the dropout noise against "
               f"Definition 2's interval flatness (factor 2) along the top {cfg.n_directions} eigen-directions of the "
               f"{cfg.hidden[0]}×{cfg.hidden[1]}+{cfg.hidden[1]} block, seed {ctx.seeds()[0]}; gradient samples "
               f"N = {cfg.n_samples}, parameter samples N = {cfg.n_trajectory} (detrended), on {cfg.dataset}. "
               "Directions whose width the widened radius did not bound are left out.",
               claims=[c.id for c in FIG2.values()])
    met, why = accuracy_gate(cfg.min_train_acc, metrics)
    for kind, spec in FIG2.items():
        ctx.claim(spec, slopes[kind], regime_met=met, regime_reason=why,
                  regime_values={"train_acc": [m["train_acc"] for m in metrics]},
                  measured={"censored_directions_per_seed": censored[kind],
                            "directions_per_seed": cfg.n_directions * len(cfg.pairs)})


FIG3 = {"gradient": SPECS["zzx-fig3-gradient"], "trajectory": SPECS["zzx-fig3-trajectory"]}
CLEARER = SPECS["zzx-fig23-gradient-clearer"]


@experiment("zzx-hessian-variance", paper=PAPER,
            reproduces="Fig. 3(a, d): projected variance grows as a power of the Hessian eigenvalue",
            config=NoiseConfig, claims=[*FIG3.values(), CLEARER])
def run_hessian_variance(cfg: NoiseConfig, ctx: RunContext) -> None:
    rows, metrics = [], []
    slopes, r2 = {k: [] for k in KINDS}, {k: [] for k in KINDS}
    fig, axes = subplots(1, 2, figsize=(11, 4))
    dim = 0
    for seed in ctx.seeds():
        worst, fits = {k: float("inf") for k in KINDS}, {k: [] for k in KINDS}
        for keep, lr, model, m in trained_nets(cfg, ctx, seed):
            metrics.append(m)
            block = hidden_block(model)
            fig3 = relations(cfg, ctx, f"_keep{keep}_lr{lr}_s{seed}", model, CE, m["train"], block, lr, seed,
                             figures=("3",))["3"]
            dim = block_size(model, block)
            for ax, kind in zip(axes, KINDS):
                rel = fig3[kind]
                worst[kind] = min(worst[kind], rel.fit.slope)
                fits[kind].append(rel.fit.r2)
                rows += [{"seed": seed, "kind": kind, "keep": keep, "lr": lr, "slope": rel.fit.slope,
                          "r2": rel.fit.r2, "ci_low": rel.fit.ci_low, "ci_high": rel.fit.ci_high, "n": rel.fit.n}]
                if seed == ctx.seeds()[0]:
                    ax.loglog(rel.x, rel.y, ".", ms=2, label=f"keep={keep}, lr={lr} (slope {rel.fit.slope:.2f}, "
                                                             f"R² {rel.fit.r2:.2f})")
        for kind in KINDS:
            slopes[kind].append(worst[kind])
            r2[kind].append(sum(fits[kind]) / len(fits[kind]))
    _label(fig, axes, "Hessian eigenvalue λ_i(H) (evaluation-mode loss)", "Var(Proj_{v_i(H)} S)")
    ctx.table("hessian_variance", rows)
    ctx.figure(fig, "hessian_variance", f"{ctx.paper}, Fig. 3(a, d): variance of the dropout samples projected on "
               f"the Hessian's eigenvectors against the eigenvalues (positive part), block D = {dim}, seed "
               f"{ctx.seeds()[0]}; gradient samples N = {cfg.n_samples}, parameter samples N = {cfg.n_trajectory} "
               f"(detrended), on {cfg.dataset}.", claims=[*(c.id for c in FIG3.values()), CLEARER.id])
    met, why = accuracy_gate(cfg.min_train_acc, metrics)
    reg = {"train_acc": [m["train_acc"] for m in metrics]}
    for kind, spec in FIG3.items():
        ctx.claim(spec, slopes[kind], regime_met=met, regime_reason=why, regime_values=reg)
    ctx.claim(CLEARER, [a - b for a, b in zip(r2["gradient"], r2["trajectory"])], regime_met=met,
              regime_reason=why, regime_values=reg, measured={"r2_gradient": r2["gradient"],
                                                              "r2_trajectory": r2["trajectory"]})
