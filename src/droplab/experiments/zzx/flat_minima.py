"""Zhang, Zhou & Xu 2024, Fig. 1(a): dropout finds flatter minima that generalize better.

Reproduce: ``droplab run zzx-flat-minima --profile quick`` (real MNIST: the 4,000 ``mnist-5k``
training images, FNN 784-128-128-10 — the widest that fits the quick budget — keep 0.8/0.5, Adam at
lr 1e-3 to reach near-zero loss in 1,500 steps; ``--profile paper`` for MNIST 784-1024-1024-10,
Adam lr 1e-4, with MNIST files in ``$DROPLAB_DATA``). The VGG-9, ResNet-20 and transformer rows run
on offline substitutes (``mnist-5k`` images for CIFAR, the generated ``reversal`` translation task
with 128 pairs for Multi30k), labelled as such.

Two FNNs from the same initialization are trained to near-zero training loss, one with dropout
after the first and second hidden layers (the paper's "dropout rates" 0.8 and 0.5 are **keep**
probabilities; droplab's drop probability is 1 − keep), one without. Along K random
filter-normalized directions (Li et al. 2017; ``granularity`` "layer" for the FNN as §5 does it —
"for FNN, each layer can be regarded as a filter" — and "filter" for the CNNs, one per output
channel; ``also_granularity`` reports the other) we draw the 1D profile of the evaluation-mode
training loss and measure Definition 2's interval flatness (loss ≤ c·L(θ*) for each factor c of
``factors``) and the width at a common absolute loss ``level`` — the fair comparison between two
minima of different depths, and the criterion of the flatness claim.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from statistics import median
from typing import Any

import torch
from torch import nn

from droplab._checks import check_choice, check_int, check_positive, check_probability
from droplab.data import Dataset
from droplab.experiments.claims import ClaimSpec, Criterion
from droplab.experiments.common import load_task, train_stage
from droplab.experiments.config import ExperimentConfig
from droplab.experiments.plotting import subplots
from droplab.experiments.registry import experiment
from droplab.experiments.run import RunContext
from droplab.landscape import GRANULARITIES, direction_flatness, filter_normalized_direction, loss_profile
from droplab.models import FNN, VGG9, ResNet20, Transformer, sequence_loss
from droplab.training import TrainConfig

PAPER = "Zhang, Zhou & Xu 2024"


MODELS = ("fnn", "vgg9", "resnet20", "transformer")


@dataclass
class FlatMinimaConfig(ExperimentConfig):
    """Fig. 1(a): the FNN. ``keep`` has one keep probability per hidden layer (FNN) or one for all
    noise layers (CNNs). ``level=None`` compares the nets at 2 × the larger of their two minima."""

    model: str = "fnn"
    dataset: str = "mnist-5k"
    n_train: int | None = None
    n_test: int | None = None
    hidden: tuple[int, ...] = (128, 128)
    width: float = 1.0
    keep: tuple[float, ...] = (0.8, 0.5)
    optimizer: str = "adam"
    lr: float = 1e-3
    momentum: float = 0.0
    nesterov: bool = False
    milestones: tuple[int, ...] = ()
    warmup: int = 0
    steps: int = 1500
    batch_size: int | None = 128
    chunk: int | None = None
    amp: bool = False
    stop_loss: float = 1e-3
    n_directions: int = 6
    granularity: str = "layer"
    also_granularity: str | None = "filter"
    factors: tuple[float, ...] = (1.5, 2.0, 3.0)
    plot_radius: float = 1.0
    radius: float = 4.0
    tol: float = 1e-2  # relative bisection tolerance of each width end (interval_flatness)
    profile_points: int = 21
    level: float | None = 0.5
    near_zero: float | None = 0.05
    min_gap: float | None = None

    PROFILES = {
        "smoke": {"hidden": (32, 32), "steps": 150, "lr": 1e-2, "n_directions": 2, "profile_points": 9,
                  "n_train": 300},
        "paper": {"dataset": "mnist", "hidden": (1024, 1024), "lr": 1e-4, "steps": 20000, "tol": 1e-3,
                  "profile_points": 41, "n_directions": 20},
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
        check_choice("granularity", self.granularity, GRANULARITIES)
        if self.also_granularity is not None:
            check_choice("also_granularity", self.also_granularity, GRANULARITIES)
        if not self.factors or any(not c > 1 for c in self.factors):
            raise ValueError(f"factors must be Definition 2 pre-factors > 1, got {self.factors}")
        check_int("profile_points", self.profile_points, minimum=3)
        for name in ("radius", "plot_radius", "tol") + (("level",) if self.level is not None else ()) + \
                (("near_zero",) if self.near_zero is not None else ()):
            check_positive(name, getattr(self, name))
        _train_config(self).validate()


@dataclass
class VGG9FlatMinimaConfig(FlatMinimaConfig):
    """Fig. 1(b): VGG-9, dropout (keep 0.8) after each pooling layer, GD with Nesterov momentum,
    lr 0.1 divided by 10 at 150, 225 and 275 of 300 epochs on the first 2,048 CIFAR-10 images."""

    model: str = "vgg9"
    n_train: int | None = 512
    width: float = 0.125
    keep: tuple[float, ...] = (0.8,)
    optimizer: str = "gd"
    lr: float = 0.1
    momentum: float = 0.9
    nesterov: bool = True
    milestones: tuple[int, ...] = (150, 225, 275)
    steps: int = 300
    batch_size: int | None = None
    granularity: str = "filter"
    also_granularity: str | None = None
    factors: tuple[float, ...] = (2.0,)
    n_directions: int = 4

    PROFILES = {
        "smoke": {"steps": 10, "milestones": (5,), "n_directions": 1, "profile_points": 5, "n_train": 16,
                  "n_test": 16},
        "paper": {"dataset": "cifar10", "n_train": 2048, "width": 1.0, "n_directions": 20},
    }


@dataclass
class ResNetFlatMinimaConfig(FlatMinimaConfig):
    """Fig. 1(c): ResNet-20, dropout (keep 0.8) after the convolutions, GD at lr 0.01 for 1,200 epochs on
    CIFAR-100. The paper's nets do not reach a small training loss, so no near-zero gate, and the two
    nets are compared at 2 × the larger minimum (``level=None``)."""

    model: str = "resnet20"
    n_train: int | None = 512
    width: float = 0.25
    keep: tuple[float, ...] = (0.8,)
    optimizer: str = "gd"
    lr: float = 0.05
    steps: int = 300
    batch_size: int | None = None
    granularity: str = "filter"
    also_granularity: str | None = None
    factors: tuple[float, ...] = (2.0,)
    n_directions: int = 4
    level: float | None = None
    near_zero: float | None = None
    min_gap: float | None = 0.1

    PROFILES = {
        "smoke": {"steps": 10, "n_directions": 1, "profile_points": 5, "n_train": 16, "n_test": 16},
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
    n_train: int | None = 128
    keep: tuple[float, ...] = (0.9,)
    optimizer: str = "adam"
    lr: float = 3e-3
    warmup: int = 100
    steps: int = 600
    batch_size: int | None = None
    granularity: str = "filter"
    also_granularity: str | None = None
    factors: tuple[float, ...] = (2.0,)
    n_directions: int = 4
    level: float | None = None
    near_zero: float | None = None
    min_gap: float | None = 0.1

    PROFILES = {
        "smoke": {"steps": 20, "warmup": 5, "n_directions": 2, "profile_points": 9, "n_train": 64},
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


def _directions(model: nn.Module, cfg: FlatMinimaConfig, gen_seed: int,
                granularity: str | None = None) -> list[list[torch.Tensor]]:
    """``cfg.n_directions`` filter-normalized directions, the same for the profiles and the widths."""
    g = torch.Generator().manual_seed(gen_seed)
    return [filter_normalized_direction(model, g, granularity or cfg.granularity) for _ in range(cfg.n_directions)]


def _profiles(model: nn.Module, loss_fn, data, cfg: FlatMinimaConfig, gen_seed: int) -> dict[str, Any]:
    """1D profiles along ``cfg.n_directions`` filter-normalized directions and Definition 2's widths, one list
    per pre-factor of ``cfg.factors`` (the Remark's "not sensitive to the selection of the pre-factor 2")."""
    alphas = torch.linspace(-cfg.plot_radius, cfg.plot_radius, cfg.profile_points)
    dirs = _directions(model, cfg, gen_seed)
    curves = torch.stack([loss_profile(model, loss_fn, data, d, alphas) for d in dirs])
    loss0 = float(loss_profile(model, loss_fn, data, dirs[0], [0.0])[0])
    rel = {c: [fl.width for fl in direction_flatness(model, loss_fn, data, dirs, c, cfg.radius, cfg.tol,
                                                     initial=cfg.radius / 64)] if loss0 > 0 else []
           for c in cfg.factors}
    return {"alphas": alphas, "curves": curves, "interval_flatness": rel, "loss0": loss0}


def _level_widths(model: nn.Module, loss_fn, data, cfg: FlatMinimaConfig, level: float,
                  gen_seed: int) -> dict[str, Any]:
    """Width of {α : L(θ* + α d) ≤ level} along the same directions as :func:`_profiles` (``cfg.granularity``)
    and, with ``cfg.also_granularity``, along directions normalized the other way."""
    out: dict[str, Any] = {}
    for key, gran in (("", cfg.granularity), ("_also", cfg.also_granularity)):
        if gran is None:
            continue
        found = direction_flatness(model, loss_fn, data, _directions(model, cfg, gen_seed, gran), radius=cfg.radius,
                                   tol=cfg.tol, initial=cfg.radius / 64, level=level)
        out[f"level_width{key}"] = [fl.width for fl in found]
        out[f"unbounded{key}"] = sum(not fl.bounded for fl in found)
    return out


PAPER_ACC = {"1a": "98.7% vs 98.1% (MNIST)", "1b": "60.6% vs 59.2% (CIFAR-10, 2,048 images)",
             "1c": "54.7% vs 34.1% (CIFAR-100)", "1d": "49.33% vs 34.73% (Multi30k, 2,048 pairs)"}


def flat_claims(fig: str, model: str, gated: bool, substitute: str = "",
                granularity: str = "filter") -> tuple[ClaimSpec, ClaimSpec]:
    """Fig. 1's two statements for one net: a flatter minimum, and better generalization (paired over seeds)."""
    quote = ("For all network structures shown in Fig. 1, dropout can improve the generalization of the network "
             "and find a flatter minimum.")
    regime = ("both nets reach evaluation-mode training loss ≤ near_zero (Fig. 1(a, b): 'the training loss values "
              "are all closed to zero')" if gated else
              "the plain net overfits its small training set: training accuracy at least min_gap above its test "
              "accuracy (Fig. 1(c, d): the nets do 'not achieve very small training error' but dropout gives "
              "'much better generalization', 54.7% vs 34.1% and 49.3% vs 34.7%)")
    norm = ("layer-normalized (§5: 'for FNN, each layer can be regarded as a filter')" if granularity == "layer"
            else "filter-normalized (§5: 'each filter is normalized individually')")
    flatter = ClaimSpec(
        id=f"zzx-fig{fig}-flatter", kind="claim", where=f"Fig. 1({fig[-1]}), §5",
        statement=f"Training the {model} with dropout finds a flatter minimum than training without.",
        quote=quote, paper_value="flatter with dropout (Fig. 1 profiles)",
        criterion=Criterion(
            quantity=f"paired difference (dropout − plain) of the median width of {{α : L(θ* + α d) ≤ level}} over "
                     f"{norm} random directions d",
            op=">", threshold=0.0,
            reading="'flatter' read as a wider sublevel set at a common absolute loss level: the two minima have "
                    "different depths, so Definition 2's relative factor would favour the shallower one."),
        regime=regime, substitute=substitute)
    better = ClaimSpec(
        id=f"zzx-fig{fig}-generalizes", kind="claim", where=f"Fig. 1({fig[-1]}), §5",
        statement=f"The {model} trained with dropout generalizes better than without.",
        quote=quote, paper_value=f"test accuracy with vs without dropout: {PAPER_ACC[fig]}",
        criterion=Criterion(quantity="paired difference (dropout − plain) of test accuracy", op=">", threshold=0.0,
                            reading="'improve the generalization' read as a higher test accuracy at the end of "
                                    "training, same seed and initialization for both nets."),
        regime=regime, substitute=substitute)
    return flatter, better


FACTOR = ClaimSpec(
    id="zzx-fig1a-factor-robust", kind="claim", where="Definition 2 (Remark), Fig. 1(a)",
    statement="The flatness comparison of the FNN minima does not depend on Definition 2's pre-factor 2.",
    quote="The experiments show that the result is not sensitive to the selection of the pre-factor 2.",
    paper_value="same comparison for any reasonable pre-factor",
    criterion=Criterion(
        quantity="the smallest over pre-factors c ∈ factors (1.5, 2, 3) of the paired difference (dropout − plain) "
                 "of the median interval flatness F_v (loss ≤ c·L(θ*)) over layer-normalized directions",
        op=">", threshold=0.0,
        reading="'not sensitive' read as: the dropout minimum is flatter by Definition 2 at every pre-factor "
                "(the sign of the comparison holds at 1.5, 2 and 3); the widths at each factor are reported."),
    regime="both nets reach evaluation-mode training loss ≤ near_zero (as Fig. 1(a))")


def _one_seed(cfg: FlatMinimaConfig, ctx: RunContext, seed: int) -> dict[str, dict[str, Any]]:
    """Train both nets of one seed from the same initialization and measure their profiles and widths."""
    train, test = load_task(cfg.dataset, cfg.n_train, cfg.n_test, device=cfg.device, flat=cfg.model == "fnn")
    pad = train.meta.get("pad") if cfg.model == "transformer" else None
    loss_fn = sequence_loss(pad) if pad is not None else nn.functional.cross_entropy
    data = (train.x, train.y)
    models, results = {}, {}
    tcfg = replace(_train_config(cfg), seed=seed)
    for name in ("dropout", "plain"):
        torch.manual_seed(seed)  # the same initialization for both nets
        models[name] = model = _build(cfg, train, name == "dropout").to(cfg.device)
        metrics = train_stage(ctx, f"train_{name}_s{seed}", model, loss_fn, train, test, tcfg, ignore_index=pad)
        land = ctx.stage(f"profiles_{name}_s{seed}", lambda m=model: _profiles(m, loss_fn, data, cfg, seed + 17))
        results[name] = {**metrics, **land}
    d, p = results["dropout"], results["plain"]
    level = cfg.level if cfg.level is not None else 2 * max(d["loss0"], p["loss0"])
    for name, model in models.items():
        results[name]["level"] = level
        if results[name]["loss0"] < level:
            results[name].update(ctx.stage(f"level_{name}_s{seed}", lambda m=model: _level_widths(
                m, loss_fn, data, cfg, level, seed + 17)))
        else:
            results[name].update({"level_width": [], "unbounded": 0, "level_width_also": [], "unbounded_also": 0})
    return results


def _median(values: list[float]) -> float:
    return median(values) if values else float("nan")


def _regime(cfg: FlatMinimaConfig, per_seed: dict) -> tuple[list[bool], dict[str, list], str]:
    """Per-seed regime of Fig. 1: near-zero training loss (a, b) or an overfitting plain net (c, d)."""
    runs = list(per_seed.values())
    reg = {f"{k}_{n}": [r[n][k] for r in runs] for k in ("train_loss", "train_acc", "test_acc")
           for n in ("dropout", "plain")}
    gate, why = [True] * len(runs), []
    if cfg.near_zero is not None:
        gate = [g and r["dropout"]["train_loss"] <= cfg.near_zero and r["plain"]["train_loss"] <= cfg.near_zero
                for g, r in zip(gate, runs)]
        why.append(f"a net stayed above training loss {cfg.near_zero}")
    if cfg.min_gap is not None:
        gate = [g and r["plain"]["train_acc"] - r["plain"]["test_acc"] >= cfg.min_gap for g, r in zip(gate, runs)]
        why.append(f"the plain net did not overfit (training accuracy less than {cfg.min_gap} above test accuracy)")
    return gate, reg, " or ".join(why)


def flat_minima(cfg: FlatMinimaConfig, ctx: RunContext, claims: tuple[ClaimSpec, ...]) -> None:
    """Train with and without dropout from one initialization per seed, then compare widths and test accuracy."""
    per_seed = {s: _one_seed(cfg, ctx, s) for s in ctx.seeds()}
    keys = ("train_loss", "train_acc", "test_acc", "steps", "level", "level_width", "unbounded", "level_width_also",
            "unbounded_also")
    ctx.table("per_seed", [{"seed": s, "net": name, **{k: r[name].get(k) for k in keys},
                            **{f"median_F_factor{c}": _median(r[name]["interval_flatness"][c]) for c in cfg.factors}}
                           for s, r in per_seed.items() for name in ("dropout", "plain")])
    first = per_seed[ctx.seeds()[0]]
    fig, ax = subplots(1, 2, figsize=(11, 4))
    for name, color in (("plain", "tab:blue"), ("dropout", "tab:red")):
        r = first[name]
        for c in r["curves"]:
            ax[0].plot(r["alphas"], c, color=color, alpha=0.25, lw=0.8)
        ax[0].plot(r["alphas"], r["curves"].mean(0), color=color, lw=2,
                   label=f"{name} (test acc {100 * r['test_acc']:.1f}%)")
    ax[0].axhline(first["plain"]["level"], color="gray", ls=":", label=f"level {first['plain']['level']:.3g}")
    ax[0].set(xlabel=f"step α along a {cfg.granularity}-normalized direction",
              ylabel="training loss (cross-entropy, nats)", title=f"1D loss profiles, seed {ctx.seeds()[0]}")
    ax[0].legend(fontsize=8)
    widths = {name: [_median(r[name]["level_width"]) for r in per_seed.values()] for name in ("plain", "dropout")}
    for s_idx, _ in enumerate(per_seed):
        ax[1].plot([0, 1], [widths["plain"][s_idx], widths["dropout"][s_idx]], "o-", color="gray", alpha=0.7)
    ax[1].set_xticks([0, 1], ["plain", "dropout"])
    ax[1].set(ylabel="median width of {α: L ≤ level}", title=f"paired over {len(per_seed)} seeds")
    flatter, better = claims[:2]
    data = (f"{cfg.dataset} ({cfg.n_train or 'all'} training examples), a substitute: {flatter.substitute}"
            if flatter.substitute else cfg.dataset)
    ctx.figure(fig, "flat_minima", f"{ctx.paper}, {flatter.where}: 1D training-loss profiles of the {cfg.model} "
               f"solutions with and without dropout on {data} ({cfg.n_directions} {cfg.granularity}-normalized "
               "directions), and the median sublevel-set width per seed (lines join the two nets of one seed).",
               claims=[c.id for c in claims])

    gate, reg, why = _regime(cfg, per_seed)
    measured = {"median_width_dropout": widths["dropout"], "median_width_plain": widths["plain"],
                "unbounded_dropout": [r["dropout"]["unbounded"] for r in per_seed.values()],
                "unbounded_plain": [r["plain"]["unbounded"] for r in per_seed.values()]}
    if cfg.also_granularity is not None:
        also = {n: [_median(r[n]["level_width_also"]) for r in per_seed.values()] for n in ("dropout", "plain")}
        measured.update({f"{cfg.also_granularity}_normalized_median_width_dropout": also["dropout"],
                         f"{cfg.also_granularity}_normalized_median_width_plain": also["plain"],
                         f"{cfg.also_granularity}_normalized_difference": [a - b for a, b in
                                                                          zip(also["dropout"], also["plain"])]})
    ctx.claim(flatter, [a - b for a, b in zip(widths["dropout"], widths["plain"])], regime_met=gate,
              regime_values=reg, regime_reason=why, measured=measured)
    acc = {name: [r[name]["test_acc"] for r in per_seed.values()] for name in ("dropout", "plain")}
    ctx.log(**{f"test_acc_{k}": sum(v) / len(v) for k, v in acc.items()},
            **{f"median_width_{k}": sum(v) / len(v) for k, v in widths.items()})
    ctx.claim(better, [a - b for a, b in zip(acc["dropout"], acc["plain"])], regime_met=gate, regime_values=reg,
              regime_reason=why, measured={"test_acc_dropout": acc["dropout"], "test_acc_plain": acc["plain"]})
    if len(claims) > 2:
        diff = {c: [_median(r["dropout"]["interval_flatness"][c]) - _median(r["plain"]["interval_flatness"][c])
                    for r in per_seed.values()] for c in cfg.factors}
        ctx.claim(claims[2], [min(v) for v in zip(*diff.values())], regime_met=gate, regime_values=reg,
                  regime_reason=why, measured={f"difference_factor_{c}": v for c, v in diff.items()})


_IMAGES = "mnist-5k (real MNIST digits, 1×28×28) for CIFAR"
FIG1A = (*flat_claims("1a", "FNN", gated=True, granularity="layer"), FACTOR)
FIG1B = flat_claims("1b", "VGG-9", gated=True, substitute=f"{_IMAGES}-10 (512 images, as the paper's first 2,048)")
FIG1C = flat_claims("1c", "ResNet-20", gated=False, substitute=f"{_IMAGES}-100 (512 images: a data-starved net)")
FIG1D = flat_claims("1d", "transformer", gated=False,
                    substitute="reversal (generated translation task, 128 training pairs) for Multi30k")


@experiment("zzx-flat-minima", paper=PAPER, reproduces="Fig. 1(a): dropout finds flatter minima that generalize better",
            config=FlatMinimaConfig, claims=FIG1A)
def run(cfg: FlatMinimaConfig, ctx: RunContext) -> None:
    flat_minima(cfg, ctx, FIG1A)


@experiment("zzx-flat-minima-vgg9", paper=PAPER,
            reproduces="Fig. 1(b): VGG-9 with dropout finds a flatter minimum that generalizes better",
            config=VGG9FlatMinimaConfig, claims=FIG1B)
def run_vgg9(cfg: VGG9FlatMinimaConfig, ctx: RunContext) -> None:
    flat_minima(cfg, ctx, FIG1B)


@experiment("zzx-flat-minima-transformer", paper=PAPER,
            reproduces="Fig. 1(d): a transformer with dropout finds a flatter minimum that generalizes better",
            config=TransformerFlatMinimaConfig, claims=FIG1D)
def run_transformer(cfg: TransformerFlatMinimaConfig, ctx: RunContext) -> None:
    flat_minima(cfg, ctx, FIG1D)


@experiment("zzx-flat-minima-resnet20", paper=PAPER,
            reproduces="Fig. 1(c): ResNet-20 with dropout finds a flatter minimum that generalizes better",
            config=ResNetFlatMinimaConfig, claims=FIG1C)
def run_resnet20(cfg: ResNetFlatMinimaConfig, ctx: RunContext) -> None:
    flat_minima(cfg, ctx, FIG1C)
