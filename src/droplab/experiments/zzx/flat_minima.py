"""Zhang, Zhou & Xu 2024, Fig. 1(a): dropout finds flatter minima that generalize better.

Reproduce: ``droplab run zzx-flat-minima --profile quick`` (``--profile paper`` for MNIST
784-1024-1024-10, keep 0.8/0.5, Adam lr 1e-4, with MNIST files in ``$DROPLAB_DATA``).

Two FNNs from the same initialization are trained to near-zero training loss, one with dropout
after the first and second hidden layers (the paper's "dropout rates" 0.8 and 0.5 are **keep**
probabilities; droplab's drop probability is 1 − keep), one without. Along K random
filter-normalized directions (Li et al. 2017, ``granularity`` "filter" by default — one
filter per output unit; the paper's §5 uses "layer") we draw the 1D profile of the
evaluation-mode training loss and measure two widths per direction: Definition 2's interval
flatness (loss ≤ 2·L(θ*)), and the width at a common absolute loss ``level`` — the fair
comparison between two minima of different depths, and the criterion of the claim.
"""

from __future__ import annotations

from dataclasses import dataclass
from statistics import median
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

from droplab._checks import check_probability  # noqa: E402
from droplab.experiments.common import load_task, train_stage  # noqa: E402
from droplab.experiments.config import ExperimentConfig  # noqa: E402
from droplab.experiments.registry import experiment  # noqa: E402
from droplab.experiments.run import RunContext  # noqa: E402
from droplab.landscape import filter_normalized_direction, interval_flatness, loss_profile  # noqa: E402
from droplab.models import FNN  # noqa: E402
from droplab.training import TrainConfig  # noqa: E402

PAPER = "Zhang, Zhou & Xu 2024"


@dataclass
class FlatMinimaConfig(ExperimentConfig):
    dataset: str = "digits"
    n_train: int | None = None
    hidden: tuple[int, ...] = (256, 256)
    keep: tuple[float, ...] = (0.8, 0.5)
    optimizer: str = "adam"
    lr: float = 1e-3
    steps: int = 3000
    batch_size: int | None = None
    stop_loss: float = 1e-3
    n_directions: int = 8
    granularity: str = "filter"
    plot_radius: float = 1.0
    radius: float = 4.0
    profile_points: int = 41
    level: float = 0.5
    near_zero: float = 0.05

    PROFILES = {
        "smoke": {"hidden": (32, 32), "steps": 150, "lr": 1e-2, "n_directions": 2, "profile_points": 9,
                  "n_train": 300},
        "paper": {"dataset": "mnist", "hidden": (1024, 1024), "lr": 1e-4, "steps": 20000, "batch_size": 128,
                  "n_directions": 20},
    }

    def validate(self) -> None:
        if len(self.keep) != len(self.hidden):
            raise ValueError(f"keep must give one keep probability per hidden layer ({len(self.hidden)}), "
                             f"got {self.keep}")
        for i, q in enumerate(self.keep):
            check_probability(f"keep[{i}]", q, low_open=True, high_open=False)


def _train_config(cfg: FlatMinimaConfig) -> TrainConfig:
    return TrainConfig(optimizer=cfg.optimizer, lr=cfg.lr, steps=cfg.steps, batch_size=cfg.batch_size,
                       stop_loss=cfg.stop_loss, eval_every=50, seed=cfg.seed)


def _widths(model: nn.Module, loss_fn, data, cfg: FlatMinimaConfig, gen_seed: int) -> dict[str, Any]:
    g = torch.Generator().manual_seed(gen_seed)
    alphas = torch.linspace(-cfg.plot_radius, cfg.plot_radius, cfg.profile_points)
    curves, rel, absolute, unbounded = [], [], [], 0
    for _ in range(cfg.n_directions):
        d = filter_normalized_direction(model, g, cfg.granularity)
        curves.append(loss_profile(model, loss_fn, data, d, alphas))

        def profile(delta: float, d=d) -> float:
            return float(loss_profile(model, loss_fn, data, d, [delta])[0])

        loss0 = profile(0.0)
        if loss0 > 0:
            fl = interval_flatness(profile, factor=2.0, radius=cfg.radius, tol=1e-3 * cfg.radius)
            rel.append(fl.width)
            unbounded += not fl.bounded
        if loss0 < cfg.level:
            fl = interval_flatness(profile, radius=cfg.radius, tol=1e-3 * cfg.radius, level=cfg.level)
            absolute.append(fl.width)
            unbounded += not fl.bounded
    return {"alphas": alphas, "curves": torch.stack(curves), "interval_flatness": rel,
            "level_width": absolute, "unbounded": unbounded}


@experiment("zzx-flat-minima", paper=PAPER, reproduces="Fig. 1(a): dropout finds flatter minima that generalize better",
            config=FlatMinimaConfig)
def run(cfg: FlatMinimaConfig, ctx: RunContext) -> None:
    train, test = load_task(cfg.dataset, cfg.n_train, device=cfg.device)
    widths = [train.in_features, *cfg.hidden, train.n_classes]
    loss_fn = nn.functional.cross_entropy
    results = {}
    for name, dropout in (("dropout", {k + 1: 1 - q for k, q in enumerate(cfg.keep)}), ("plain", {})):
        torch.manual_seed(cfg.seed)  # same initialization for both nets
        model = FNN(widths, "relu", dropout=dropout).to(cfg.device)
        metrics = train_stage(ctx, f"train_{name}", model, loss_fn, train, test, _train_config(cfg))
        land = ctx.stage(f"profiles_{name}", lambda m=model: _widths(m, loss_fn, (train.x, train.y), cfg,
                                                                       cfg.seed + 17))
        results[name] = {**metrics, **land}
    d, p = results["dropout"], results["plain"]
    ctx.log(**{f"{k}_{name}": results[name][k] for name in results
               for k in ("train_loss", "train_acc", "test_acc", "steps", "interval_flatness", "level_width",
                         "unbounded")})

    fig, ax = plt.subplots(1, 2, figsize=(10, 3.8))
    for name, color in (("plain", "tab:blue"), ("dropout", "tab:red")):
        r = results[name]
        for c in r["curves"]:
            ax[0].plot(r["alphas"], c, color=color, alpha=0.25, lw=0.8)
        ax[0].plot(r["alphas"], r["curves"].mean(0), color=color, lw=2,
                   label=f"{name} (test acc {100 * r['test_acc']:.1f}%)")
    ax[0].axhline(cfg.level, color="gray", ls=":", label=f"level {cfg.level}")
    ax[0].set(xlabel="step α along filter-normalized direction (units of ‖θ‖ per filter)",
              ylabel="training loss (cross-entropy, nats)", title="1D loss profiles (cf. ZZX Fig. 1(a))")
    ax[0].legend(fontsize=8)
    ax[1].boxplot([p["level_width"], d["level_width"]], tick_labels=["plain", "dropout"])
    ax[1].set(ylabel=f"width of {{α: L ≤ {cfg.level}}}", title="flatness per direction")
    ctx.figure(fig, "flat_minima", f"{PAPER}, Fig. 1(a): 1D loss profiles of the solutions found with and "
               f"without dropout on {cfg.dataset}, {cfg.n_directions} filter-normalized directions, and the "
               f"width of the region where the training loss stays below {cfg.level}.")

    reached = d["train_loss"] <= cfg.near_zero and p["train_loss"] <= cfg.near_zero
    measured = {"median_level_width_dropout": median(d["level_width"]) if d["level_width"] else None,
                "median_level_width_plain": median(p["level_width"]) if p["level_width"] else None,
                "median_interval_flatness_dropout": median(d["interval_flatness"]) if d["interval_flatness"] else None,
                "median_interval_flatness_plain": median(p["interval_flatness"]) if p["interval_flatness"] else None,
                "test_acc_dropout": d["test_acc"], "test_acc_plain": p["test_acc"],
                "train_loss_dropout": d["train_loss"], "train_loss_plain": p["train_loss"],
                "unbounded_sides_dropout": d["unbounded"], "unbounded_sides_plain": p["unbounded"]}
    outcome = None
    if reached and d["level_width"] and p["level_width"]:
        outcome = (measured["median_level_width_dropout"] > measured["median_level_width_plain"]
                   and d["test_acc"] >= p["test_acc"])
    ctx.claim(id="zzx-fig1a-flatter", paper=PAPER, where="Fig. 1(a), §5",
              statement="Training with dropout finds a flatter minimum that generalizes better than training without.",
              criterion=(f"Both nets reach evaluation-mode training loss ≤ {cfg.near_zero} (else inconclusive); "
                         f"reproduced iff the median over {cfg.n_directions} filter-normalized directions of the "
                         f"width where L ≤ {cfg.level} is larger with dropout AND test accuracy with dropout ≥ "
                         f"without. A side that stays below the level within ±{cfg.radius} counts as {cfg.radius} "
                         "(a lower bound; such directions are counted in 'unbounded')."),
              measured=measured, outcome=outcome)
