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

from droplab._checks import check_choice, check_probability  # noqa: E402
from droplab.data import Dataset  # noqa: E402
from droplab.experiments.common import load_task, train_stage  # noqa: E402
from droplab.experiments.config import ExperimentConfig  # noqa: E402
from droplab.experiments.registry import experiment  # noqa: E402
from droplab.experiments.run import RunContext  # noqa: E402
from droplab.landscape import direction_flatness, filter_normalized_direction, loss_profile  # noqa: E402
from droplab.models import FNN, VGG9, ResNet20, Transformer, sequence_loss  # noqa: E402
from droplab.training import TrainConfig  # noqa: E402

PAPER = "Zhang, Zhou & Xu 2024"


MODELS = ("fnn", "vgg9", "resnet20", "transformer")


@dataclass
class FlatMinimaConfig(ExperimentConfig):
    """Fig. 1(a): the FNN. ``keep`` has one keep probability per hidden layer (FNN) or one for all
    noise layers (CNNs). ``level=None`` compares the nets at 2 × the larger of their two minima."""

    model: str = "fnn"
    dataset: str = "digits"
    n_train: int | None = None
    hidden: tuple[int, ...] = (256, 256)
    width: float = 1.0
    keep: tuple[float, ...] = (0.8, 0.5)
    optimizer: str = "adam"
    lr: float = 1e-3
    momentum: float = 0.0
    nesterov: bool = False
    milestones: tuple[int, ...] = ()
    warmup: int = 0
    steps: int = 3000
    batch_size: int | None = None
    chunk: int | None = None
    amp: bool = False
    stop_loss: float = 1e-3
    n_directions: int = 8
    granularity: str = "filter"
    plot_radius: float = 1.0
    radius: float = 4.0
    tol: float = 1e-3  # relative bisection tolerance of each width end (interval_flatness)
    profile_points: int = 41
    level: float | None = 0.5
    near_zero: float | None = 0.05

    PROFILES = {
        "smoke": {"hidden": (32, 32), "tol": 1e-2, "steps": 150, "lr": 1e-2, "n_directions": 2, "profile_points": 9,
                  "n_train": 300},
        "paper": {"dataset": "mnist", "hidden": (1024, 1024), "lr": 1e-4, "steps": 20000, "batch_size": 128,
                  "n_directions": 20},
    }

    def validate(self) -> None:
        check_choice("model", self.model, MODELS)
        if self.model == "fnn" and len(self.keep) != len(self.hidden):
            raise ValueError(f"keep must give one keep probability per hidden layer ({len(self.hidden)}), "
                             f"got {self.keep}")
        if self.model != "fnn" and len(self.keep) != 1:
            raise ValueError(f"keep must give one keep probability for model {self.model!r}, got {self.keep}")
        for i, q in enumerate(self.keep):
            check_probability(f"keep[{i}]", q, low_open=True, high_open=False)


@dataclass
class VGG9FlatMinimaConfig(FlatMinimaConfig):
    """Fig. 1(b): VGG-9, dropout (keep 0.8) after each pooling layer, GD with Nesterov momentum,
    lr 0.1 divided by 10 at 150, 225 and 275 of 300 epochs on the first 2,048 CIFAR-10 images."""

    model: str = "vgg9"
    width: float = 0.25
    keep: tuple[float, ...] = (0.8,)
    optimizer: str = "gd"
    lr: float = 0.1
    momentum: float = 0.9
    nesterov: bool = True
    milestones: tuple[int, ...] = (150, 225, 275)
    steps: int = 300

    PROFILES = {
        "smoke": {"width": 0.125, "tol": 1e-2, "steps": 30, "milestones": (15,), "n_directions": 2, "profile_points": 9,
                  "n_train": 200},
        "paper": {"dataset": "cifar10", "n_train": 2048, "width": 1.0, "n_directions": 20},
    }


@dataclass
class ResNetFlatMinimaConfig(FlatMinimaConfig):
    """Fig. 1(c): ResNet-20, dropout (keep 0.8) after the convolutions, GD at lr 0.01 for 1,200 epochs on
    CIFAR-100. The paper's nets do not reach a small training loss, so no near-zero gate, and the two
    nets are compared at 2 × the larger minimum (``level=None``)."""

    model: str = "resnet20"
    width: float = 0.5
    keep: tuple[float, ...] = (0.8,)
    optimizer: str = "gd"
    lr: float = 0.01
    steps: int = 600
    level: float | None = None
    near_zero: float | None = None

    PROFILES = {
        "smoke": {"width": 0.25, "tol": 1e-2, "steps": 20, "n_directions": 2, "profile_points": 9, "n_train": 200},
        "paper": {"dataset": "cifar100", "width": 1.0, "steps": 1200, "chunk": 2500, "n_directions": 20},
    }


@dataclass
class TransformerFlatMinimaConfig(FlatMinimaConfig):
    """Fig. 1(d): the App. A transformer (d_model 50, d_k = d_v = 20, d_ff 256, 4 heads, 3 layers),
    dropout (keep 0.9) on sub-layer outputs and embedding sums, full-batch Adam with the warm-up
    schedule of Vaswani et al. (4,000 warm-up steps, 10,000 steps) on the first 2,048 Multi30k pairs,
    cross-entropy with label smoothing 0.1. ``quick`` runs on the generated ``reversal`` task. Like
    ResNet-20, the paper's nets do not reach a small loss: no near-zero gate, ``level=None``."""

    model: str = "transformer"
    dataset: str = "reversal"
    keep: tuple[float, ...] = (0.9,)
    optimizer: str = "adam"
    lr: float = 3e-3
    warmup: int = 100
    steps: int = 600
    level: float | None = None
    near_zero: float | None = None

    PROFILES = {
        "smoke": {"steps": 20, "warmup": 5, "tol": 1e-2, "n_directions": 2, "profile_points": 9, "n_train": 64},
        "paper": {"dataset": "multi30k", "n_train": 2048, "lr": 50 ** -0.5 * 4000 ** -0.5, "warmup": 4000,
                  "steps": 10000, "n_directions": 20},
    }


def _train_config(cfg: FlatMinimaConfig) -> TrainConfig:
    return TrainConfig(optimizer=cfg.optimizer, lr=cfg.lr, steps=cfg.steps, batch_size=cfg.batch_size,
                       momentum=cfg.momentum, nesterov=cfg.nesterov, milestones=cfg.milestones, warmup=cfg.warmup,
                       chunk=cfg.chunk, amp=cfg.amp, stop_loss=cfg.stop_loss, eval_every=50, seed=cfg.seed)


def _build(cfg: FlatMinimaConfig, train: Dataset, with_dropout: bool) -> nn.Module:
    """The net of ``cfg.model`` for ``train``'s input shape, with or without its noise layers."""
    if cfg.model == "fnn":
        dropout = {k + 1: 1 - q for k, q in enumerate(cfg.keep)} if with_dropout else {}
        return FNN([train.in_features, *cfg.hidden, train.n_classes], "relu", dropout=dropout)
    drop = 1 - cfg.keep[0] if with_dropout else 0.0
    if cfg.model == "transformer":
        return Transformer(train.meta["src_vocab"], train.meta["tgt_vocab"], max_len=train.x.shape[-1], dropout=drop,
                           pad=train.meta["pad"])
    channels = train.x.shape[1]
    if cfg.model == "vgg9":
        return VGG9(train.n_classes, in_channels=channels, image_size=train.x.shape[-1], width=cfg.width, dropout=drop)
    return ResNet20(train.n_classes, in_channels=channels, width=cfg.width, dropout=drop)


def _directions(model: nn.Module, cfg: FlatMinimaConfig, gen_seed: int) -> list[list[torch.Tensor]]:
    """``cfg.n_directions`` filter-normalized directions, the same for the profiles and the widths."""
    g = torch.Generator().manual_seed(gen_seed)
    return [filter_normalized_direction(model, g, cfg.granularity) for _ in range(cfg.n_directions)]


def _profiles(model: nn.Module, loss_fn, data, cfg: FlatMinimaConfig, gen_seed: int) -> dict[str, Any]:
    """1D profiles along ``cfg.n_directions`` filter-normalized directions and Definition 2's widths."""
    alphas = torch.linspace(-cfg.plot_radius, cfg.plot_radius, cfg.profile_points)
    dirs = _directions(model, cfg, gen_seed)
    curves = torch.stack([loss_profile(model, loss_fn, data, d, alphas) for d in dirs])
    loss0 = float(loss_profile(model, loss_fn, data, dirs[0], [0.0])[0])
    rel = [fl.width for fl in direction_flatness(model, loss_fn, data, dirs, 2.0, cfg.radius, cfg.tol,
                                                 initial=cfg.radius / 64)] if loss0 > 0 else []
    return {"alphas": alphas, "curves": curves, "interval_flatness": rel, "loss0": loss0}


def _level_widths(model: nn.Module, loss_fn, data, cfg: FlatMinimaConfig, level: float,
                  gen_seed: int) -> dict[str, Any]:
    """Width of {α : L(θ* + α d) ≤ level} along the same directions as :func:`_profiles`."""
    found = direction_flatness(model, loss_fn, data, _directions(model, cfg, gen_seed), radius=cfg.radius,
                               tol=cfg.tol, initial=cfg.radius / 64, level=level)
    return {"level_width": [fl.width for fl in found], "unbounded": sum(not fl.bounded for fl in found)}


def flat_minima(cfg: FlatMinimaConfig, ctx: RunContext, where: str, claim_id: str) -> None:
    """Train with and without dropout from one initialization, then compare profiles and widths."""
    train, test = load_task(cfg.dataset, cfg.n_train, device=cfg.device, flat=cfg.model == "fnn")
    pad = train.meta.get("pad") if cfg.model == "transformer" else None
    loss_fn = sequence_loss(pad) if pad is not None else nn.functional.cross_entropy
    data = (train.x, train.y)
    models, results = {}, {}
    for name in ("dropout", "plain"):
        torch.manual_seed(cfg.seed)  # the same initialization for both nets
        models[name] = model = _build(cfg, train, name == "dropout").to(cfg.device)
        metrics = train_stage(ctx, f"train_{name}", model, loss_fn, train, test, _train_config(cfg),
                              ignore_index=pad)
        land = ctx.stage(f"profiles_{name}", lambda m=model: _profiles(m, loss_fn, data, cfg, cfg.seed + 17))
        results[name] = {**metrics, **land}
    d, p = results["dropout"], results["plain"]
    level = cfg.level if cfg.level is not None else 2 * max(d["loss0"], p["loss0"])
    for name, model in models.items():
        if results[name]["loss0"] < level:
            results[name].update(ctx.stage(f"level_{name}", lambda m=model: _level_widths(
                m, loss_fn, data, cfg, level, cfg.seed + 17)))
        else:
            results[name].update({"level_width": [], "unbounded": 0})
    ctx.log(level=level, **{f"{k}_{name}": results[name][k] for name in results
                            for k in ("train_loss", "train_acc", "test_acc", "steps", "interval_flatness",
                                      "level_width", "unbounded")})

    fig, ax = plt.subplots(1, 2, figsize=(10, 3.8))
    for name, color in (("plain", "tab:blue"), ("dropout", "tab:red")):
        r = results[name]
        for c in r["curves"]:
            ax[0].plot(r["alphas"], c, color=color, alpha=0.25, lw=0.8)
        ax[0].plot(r["alphas"], r["curves"].mean(0), color=color, lw=2,
                   label=f"{name} (test acc {100 * r['test_acc']:.1f}%)")
    ax[0].axhline(level, color="gray", ls=":", label=f"level {level:.3g}")
    ax[0].set(xlabel="step α along filter-normalized direction (units of ‖θ‖ per filter)",
              ylabel="training loss (cross-entropy, nats)", title=f"1D loss profiles (cf. ZZX {where})")
    ax[0].legend(fontsize=8)
    ax[1].boxplot([p["level_width"], d["level_width"]], tick_labels=["plain", "dropout"])
    ax[1].set(ylabel=f"width of {{α: L ≤ {level:.3g}}}", title="flatness per direction")
    ctx.figure(fig, "flat_minima", f"{PAPER}, {where}: 1D loss profiles of the {cfg.model} solutions found with "
               f"and without dropout on {cfg.dataset}, {cfg.n_directions} filter-normalized directions, and the "
               f"width of the region where the training loss stays below {level:.3g}.")

    reached = cfg.near_zero is None or (d["train_loss"] <= cfg.near_zero and p["train_loss"] <= cfg.near_zero)
    med = {f"median_{k}_{name}": (median(results[name][k]) if results[name][k] else None)
           for k in ("level_width", "interval_flatness") for name in ("dropout", "plain")}
    measured = {**med, "level": level, "test_acc_dropout": d["test_acc"], "test_acc_plain": p["test_acc"],
                "train_loss_dropout": d["train_loss"], "train_loss_plain": p["train_loss"],
                "unbounded_directions_dropout": d["unbounded"], "unbounded_directions_plain": p["unbounded"]}
    outcome = None
    if reached and d["level_width"] and p["level_width"]:
        outcome = (med["median_level_width_dropout"] > med["median_level_width_plain"]
                   and d["test_acc"] >= p["test_acc"])
    gate = (f"Both nets reach evaluation-mode training loss ≤ {cfg.near_zero} (else inconclusive); "
            if cfg.near_zero is not None else "")
    level_text = (f"L ≤ {cfg.level}" if cfg.level is not None
                  else "L ≤ 2 × the larger of the two nets' training losses")
    ctx.claim(id=claim_id, paper=PAPER, where=f"{where}, §5",
              statement=f"Training the {cfg.model} with dropout finds a flatter minimum that generalizes better "
                        "than training without.",
              criterion=(f"{gate}reproduced iff the median over {cfg.n_directions} filter-normalized directions "
                         f"of the width where {level_text} is larger with dropout AND test accuracy with dropout ≥ "
                         f"without. A side that stays below the level within ±{cfg.radius} counts as {cfg.radius} "
                         "(a lower bound; such directions are counted in 'unbounded')."),
              measured=measured, outcome=outcome)


@experiment("zzx-flat-minima", paper=PAPER, reproduces="Fig. 1(a): dropout finds flatter minima that generalize better",
            config=FlatMinimaConfig)
def run(cfg: FlatMinimaConfig, ctx: RunContext) -> None:
    flat_minima(cfg, ctx, "Fig. 1(a)", "zzx-fig1a-flatter")


@experiment("zzx-flat-minima-vgg9", paper=PAPER,
            reproduces="Fig. 1(b): VGG-9 with dropout finds a flatter minimum that generalizes better",
            config=VGG9FlatMinimaConfig)
def run_vgg9(cfg: VGG9FlatMinimaConfig, ctx: RunContext) -> None:
    flat_minima(cfg, ctx, "Fig. 1(b)", "zzx-fig1b-flatter")


@experiment("zzx-flat-minima-transformer", paper=PAPER,
            reproduces="Fig. 1(d): a transformer with dropout finds a flatter minimum that generalizes better",
            config=TransformerFlatMinimaConfig)
def run_transformer(cfg: TransformerFlatMinimaConfig, ctx: RunContext) -> None:
    flat_minima(cfg, ctx, "Fig. 1(d)", "zzx-fig1d-flatter")


@experiment("zzx-flat-minima-resnet20", paper=PAPER,
            reproduces="Fig. 1(c): ResNet-20 with dropout finds a flatter minimum that generalizes better",
            config=ResNetFlatMinimaConfig)
def run_resnet20(cfg: ResNetFlatMinimaConfig, ctx: RunContext) -> None:
    flat_minima(cfg, ctx, "Fig. 1(c)", "zzx-fig1c-flatter")
