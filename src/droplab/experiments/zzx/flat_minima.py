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

from dataclasses import replace
from statistics import median
from typing import Any

import torch
from torch import nn

from droplab.data import Dataset
from droplab.experiments.claims import ClaimSpec, load_claims
from droplab.experiments.common import load_task, train_stage
from droplab.experiments.plotting import subplots
from droplab.experiments.registry import experiment
from droplab.experiments.run import RunContext
from droplab.experiments.zzx.flat_configs import (
    FlatMinimaConfig,
    ResNetFlatMinimaConfig,
    TransformerFlatMinimaConfig,
    VGG9FlatMinimaConfig,
    train_config,
)
from droplab.landscape import filter_normalized_direction, flatness_table, loss_at
from droplab.models import FNN, VGG9, ResNet20, Transformer, sequence_loss

PAPER = "Zhang, Zhou & Xu 2024"


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


def _directions(model: nn.Module, cfg: FlatMinimaConfig, gen_seed: int, granularity: str) -> list[list[torch.Tensor]]:
    """``cfg.n_directions`` normalized directions; one generator seed, so each granularity gets the same draws."""
    g = torch.Generator().manual_seed(gen_seed)
    return [filter_normalized_direction(model, g, granularity) for _ in range(cfg.n_directions)]


def _loss0(model: nn.Module, loss_fn, data) -> float:
    """The evaluation-mode training loss at the minimum θ*."""
    return float(loss_at(model, loss_fn, data, [[torch.zeros_like(p) for p in model.parameters()]], torch.zeros(1, 1)))


def _measure(model: nn.Module, loss_fn, data, cfg: FlatMinimaConfig, level: float, gen_seed: int) -> dict[str, Any]:
    """1D profiles along ``cfg.n_directions`` ``cfg.granularity``-normalized directions and, along the same directions,
    Definition 2's widths at each pre-factor of ``cfg.factors`` (the Remark's "not sensitive to the selection of the
    pre-factor 2") and the width at the common loss ``level``, from one batched search (:func:`flatness_table`);
    with ``cfg.also_granularity`` the level widths along directions normalized that way too."""
    loss0 = _loss0(model, loss_fn, data)
    dirs = _directions(model, cfg, gen_seed, cfg.granularity)
    alphas = torch.linspace(-cfg.plot_radius, cfg.plot_radius, cfg.profile_points)
    grid = torch.block_diag(*[alphas[:, None]] * len(dirs))  # row k·P + a: step alphas[a] along direction k
    levels = (level,) if loss0 < level else ()
    chunk = 1 if cfg.device == "cpu" else 16  # vmap is slower than plain calls on a CPU (loss_at)
    search = {"radius": cfg.radius, "tol": cfg.tol, "initial": cfg.radius / 64, "chunk": chunk}
    by_factor, by_level = flatness_table(model, loss_fn, data, dirs, cfg.factors if loss0 > 0 else (), levels,
                                         **search)
    found = {"": by_level.get(level, [])}
    if cfg.also_granularity is not None:
        also = _directions(model, cfg, gen_seed, cfg.also_granularity)
        found["_also"] = flatness_table(model, loss_fn, data, also, (), levels, **search)[1].get(level, [])
    return {"alphas": alphas, "curves": loss_at(model, loss_fn, data, dirs, grid, chunk=chunk).reshape(len(dirs), -1),
            "loss0": loss0, "level": level,
            "interval_flatness": {c: [fl.width for fl in by_factor.get(c, [])] for c in cfg.factors},
            **{f"level_width{k}": [fl.width for fl in v] for k, v in found.items()},
            **{f"unbounded{k}": sum(not fl.bounded for fl in v) for k, v in found.items()}}


def _one_seed(cfg: FlatMinimaConfig, ctx: RunContext, seed: int) -> dict[str, dict[str, Any]]:
    """Train both nets of one seed from the same initialization and measure their profiles and widths."""
    train, test = load_task(cfg.dataset, cfg.n_train, cfg.n_test, device=cfg.device, flat=cfg.model == "fnn",
                            pool=cfg.pool)
    pad = train.meta.get("pad") if cfg.model == "transformer" else None
    loss_fn = sequence_loss(pad) if pad is not None else nn.functional.cross_entropy
    data = (train.x, train.y)
    models, metrics = {}, {}
    tcfg = replace(train_config(cfg), seed=seed)
    for name in ("dropout", "plain"):
        torch.manual_seed(seed)  # the same initialization for both nets
        models[name] = model = _build(cfg, train, name == "dropout").to(cfg.device)
        metrics[name] = train_stage(ctx, f"train_{name}_s{seed}", model, loss_fn, train, test, tcfg, ignore_index=pad)
    level = cfg.level if cfg.level is not None else 2 * max(_loss0(m, loss_fn, data) for m in models.values())
    return {name: {**metrics[name], **ctx.stage(f"measure_{name}_s{seed}", lambda m=model: _measure(
        m, loss_fn, data, cfg, level, seed + 17))} for name, model in models.items()}


def _median(values: list[float]) -> float:
    return median(values) if values else float("nan")


LEARNED = 0.5  # Fig. 1(c, d): the dropout nets reach 54.7% / 49.3% test accuracy, so at least this on training


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
        gate = [g and r["plain"]["train_acc"] - r["plain"]["test_acc"] >= cfg.min_gap
                and r["dropout"]["train_acc"] >= LEARNED for g, r in zip(gate, runs)]
        why.append(f"the plain net did not overfit (training accuracy less than {cfg.min_gap} above test accuracy) "
                   f"or the dropout net did not learn (training accuracy below {LEARNED})")
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
        med = {(n, c): [_median(r[n]["interval_flatness"][c]) for r in per_seed.values()]
               for n in ("dropout", "plain") for c in cfg.factors}
        diff = {c: [a - b for a, b in zip(med["dropout", c], med["plain", c])] for c in cfg.factors}
        ctx.claim(claims[2], [min(v) for v in zip(*diff.values())], regime_met=gate, regime_values=reg,
                  regime_reason=why, measured={**{f"difference_factor_{c}": v for c, v in diff.items()},
                                               **{f"median_F_{n}_factor_{c}": v for (n, c), v in med.items()}})


def _row(exp_id: str, config: type[FlatMinimaConfig], claims: tuple[ClaimSpec, ...], reproduces: str) -> None:
    """Register one row of Fig. 1: each seed trains the net with and without dropout, then :func:`flat_minima`."""

    def run(cfg: FlatMinimaConfig, ctx: RunContext) -> None:
        flat_minima(cfg, ctx, claims)

    experiment(exp_id, paper=PAPER, reproduces=reproduces, config=config, claims=claims)(run)


SPECS = load_claims(__package__)
_row("zzx-flat-minima", FlatMinimaConfig,
     (SPECS["zzx-fig1a-flatter"], SPECS["zzx-fig1a-generalizes"], SPECS["zzx-fig1a-factor-robust"]),
     "Fig. 1(a): dropout finds flatter minima that generalize better")
_row("zzx-flat-minima-vgg9", VGG9FlatMinimaConfig, (SPECS["zzx-fig1b-flatter"], SPECS["zzx-fig1b-generalizes"]),
     "Fig. 1(b): VGG-9 with dropout finds a flatter minimum that generalizes better")
_row("zzx-flat-minima-transformer", TransformerFlatMinimaConfig,
     (SPECS["zzx-fig1d-flatter"], SPECS["zzx-fig1d-generalizes"]),
     "Fig. 1(d): a transformer with dropout finds a flatter minimum that generalizes better")
_row("zzx-flat-minima-resnet20", ResNetFlatMinimaConfig, (SPECS["zzx-fig1c-flatter"], SPECS["zzx-fig1c-generalizes"]),
     "Fig. 1(c): ResNet-20 with dropout finds a flatter minimum that generalizes better")
