"""Zhang, Zhou & Xu 2024, Figs. 2–3 (b, c, e, f): the noise structure of ResNet-20 and of the transformer.

Reproduce: ``droplab run zzx-noise-resnet20 --profile quick`` (and ``zzx-noise-transformer``). App. A:
ResNet-20 with dropout (keep 0.8) after the convolutions, GD at lr 0.01 on CIFAR-100, the block = the
weight of the first convolution of the first block; the transformer (d_model 50, d_k = d_v = 20,
d_ff 256, 4 heads, 3 layers) with dropout (keep 0.9) on the sub-layer outputs and embedding sums,
full-batch Adam on 2,048 Multi30k pairs, the block = the weight of the query layer of the first
decoder block's self-attention. One (keep, lr) per net, as App. A ("for the ResNet experiment, we
only perform it at a specific dropout rate and learning rate").

Offline substitutes at a CPU's size (named in the claims and captions): ResNet-20 at width 0.25,
trained by full-batch Adam (GD at lr 0.1 for 200 steps stayed below the regime), on 128 ``mnist-5k``
images average-pooled 2×2 to 14×14 (block D = 4·4·3·3 = 144; one forward-backward
on 512 images at 32×32 costs 1.4 CPU-s, beyond the budget), the transformer on the generated
``reversal`` task with ``zzx-flat-minima-transformer``'s dropout net (block D = 80·50 = 4,000). Fig. 3
uses the top ``n_eigen`` Hessian eigenpairs by Lanczos (the paper: all D). The measurements are those of the FNN rows
(:mod:`~droplab.experiments.zzx.noise_measures`), one code path for every net.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch
from torch import nn

from droplab._checks import check_choice, check_int, check_probability
from droplab._params import block_size, layer_block
from droplab.data import Dataset
from droplab.experiments.claims import ClaimSpec, load_claims
from droplab.experiments.common import load_task, train_stage
from droplab.experiments.plotting import subplots
from droplab.experiments.registry import experiment
from droplab.experiments.run import RunContext
from droplab.experiments.zzx.noise_measures import (
    KINDS,
    PAPER,
    TITLES,
    SamplingConfig,
    accuracy_gate,
    relations,
    scheduled_lr,
)
from droplab.models import ResNet20, Transformer
from droplab.models.transformer import sequence_loss
from droplab.training import TrainConfig

NETS = ("resnet20", "transformer")


@dataclass
class NetNoiseConfig(SamplingConfig):
    """ResNet-20 (``net="resnet20"``) or the transformer, dropout (keep) as App. A, one net per seed.

    ``pool``: average-pool the images by this factor (a CPU-sized input); ``n_eigen``: the top
    ``n_eigen`` Hessian eigenpairs of the block by Lanczos (None: its whole spectrum, dense)."""

    net: str = "resnet20"
    dataset: str = "mnist-5k"
    n_train: int | None = 128
    pool: int = 2
    width: float = 0.25
    keep: float = 0.8
    optimizer: str = "adam"
    lr: float = 0.01
    warmup: int = 0
    steps: int = 200
    stop_loss: float | None = 1e-3
    n_samples: int = 64
    n_trajectory: int = 32
    n_directions: int = 6
    n_eigen: int | None = 20
    chunk: int = 8

    PROFILES = {
        "smoke": {"n_train": 16, "pool": 4, "steps": 5, "n_samples": 8, "n_trajectory": 6, "n_directions": 3,
                  "n_eigen": 4, "n_boot": 20, "flat_tol": 0.1, "radius": 2.0, "max_radius": 32.0, "min_train_acc": 0.0},
        "paper": {"dataset": "cifar100", "n_train": None, "pool": 1, "width": 1.0, "optimizer": "gd", "lr": 0.01,
                  "steps": 1200,
                  "stop_loss": None, "n_samples": 3000, "n_trajectory": 1000, "n_directions": 400, "n_eigen": 400,
                  "flat_tol": 1e-3},
    }

    def validate(self) -> None:
        super().validate()
        check_choice("net", self.net, NETS)
        check_probability("keep", self.keep, low_open=True, high_open=False)
        check_int("pool", self.pool, minimum=1)
        if self.lr <= 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")


@dataclass
class TransformerNoiseConfig(NetNoiseConfig):
    """The App. A transformer on ``reversal`` (quick), full-batch Adam with the warm-up schedule: the very
    training of ``zzx-flat-minima-transformer``'s dropout net (same data, initialization and
    :class:`~droplab.training.TrainConfig`), so one ``reproduce`` trains it once for both."""

    net: str = "transformer"
    dataset: str = "reversal"
    n_train: int | None = 128
    pool: int = 1
    keep: float = 0.9
    optimizer: str = "adam"
    lr: float = 3e-3
    warmup: int = 100
    steps: int = 300

    PROFILES = {
        "smoke": {"n_train": 16, "steps": 5, "warmup": 2, "n_samples": 8, "n_trajectory": 6, "n_directions": 3,
                  "n_eigen": 4, "n_boot": 20, "flat_tol": 0.1, "radius": 2.0, "max_radius": 32.0, "min_train_acc": 0.0},
        "paper": {"dataset": "multi30k", "n_train": 2048, "lr": 50 ** -0.5 * 4000 ** -0.5, "warmup": 4000,
                  "steps": 10000, "stop_loss": None, "n_samples": 3000, "n_trajectory": 1000, "n_directions": 400,
                  "n_eigen": 400, "flat_tol": 1e-3},
    }


def _net(cfg: NetNoiseConfig, train: Dataset) -> tuple[nn.Module, list[str]]:
    """The net and App. A's block: ResNet-20's first convolution of its first block, or the transformer's
    query weight of the first decoder block's self-attention."""
    if cfg.net == "transformer":
        model = Transformer(train.meta["src_vocab"], train.meta["tgt_vocab"], max_len=train.x.shape[-1],
                            dropout=1 - cfg.keep, pad=train.meta["pad"])
        return model.to(cfg.device), ["decoder.0.self_attn.q.weight"]
    model = ResNet20(train.n_classes, in_channels=train.x.shape[1], width=cfg.width, dropout=1 - cfg.keep)
    return model.to(cfg.device), layer_block(model, nn.Conv2d, 1, bias=False)  # index 0 is the stem


SPECS = load_claims(__package__)
RESNET = {"fig2-trajectory": SPECS["zzx-fig2-resnet20-trajectory"],
          "fig3-trajectory": SPECS["zzx-fig3-resnet20-trajectory"],
          "fig2-gradient": SPECS["zzx-fig2-resnet20-gradient"], "fig3-gradient": SPECS["zzx-fig3-resnet20-gradient"],
          "clearer": SPECS["zzx-fig23-resnet20-gradient-clearer"]}
TRANSFORMER = {"fig2-trajectory": SPECS["zzx-fig2-transformer-trajectory"],
               "fig3-trajectory": SPECS["zzx-fig3-transformer-trajectory"],
               "fig2-gradient": SPECS["zzx-fig2-transformer-gradient"],
               "fig3-gradient": SPECS["zzx-fig3-transformer-gradient"],
               "clearer": SPECS["zzx-fig23-transformer-gradient-clearer"]}


def net_noise(cfg: NetNoiseConfig, ctx: RunContext, specs: dict[str, ClaimSpec], title: str, letters: str) -> None:
    """Train one dropout net per seed, sample its block's noise, then Fig. 2's and Fig. 3's relations."""
    train, test = load_task(cfg.dataset, cfg.n_train, device=cfg.device, flat=False, pool=cfg.pool)
    pad = train.meta.get("pad") if cfg.net == "transformer" else None
    loss_fn = sequence_loss(pad) if pad is not None else nn.functional.cross_entropy
    tcfg = TrainConfig(optimizer=cfg.optimizer, lr=cfg.lr, steps=cfg.steps, warmup=cfg.warmup,
                       stop_loss=cfg.stop_loss, eval_every=50)
    sample_lr = scheduled_lr(cfg.lr, cfg.steps, cfg.warmup)
    slopes = {f"fig{f}-{k}": [] for f in "23" for k in KINDS}
    r2, metrics, censored, rows = {k: [] for k in KINDS}, [], {k: [] for k in KINDS}, []
    fig, axes = subplots(2, 2, figsize=(11, 8))
    dim = 0
    for seed in ctx.seeds():
        torch.manual_seed(seed)
        model, block = _net(cfg, train)
        m = train_stage(ctx, f"train_s{seed}", model, loss_fn, train, test, replace(tcfg, seed=seed), ignore_index=pad)
        metrics.append(m)
        by_fig = relations(cfg, ctx, f"_s{seed}", model, loss_fn, train, block, sample_lr, seed,
                           optimizer=cfg.optimizer, n_eigen=cfg.n_eigen)
        dim = block_size(model, block)
        for col, kind in enumerate(KINDS):
            two, three = by_fig["2"][kind], by_fig["3"][kind]
            slopes[f"fig2-{kind}"].append(two.fit.slope)
            slopes[f"fig3-{kind}"].append(three.fit.slope)
            r2[kind].append(three.fit.r2)
            censored[kind].append(two.censored)
            for f, rel in (("2", two), ("3", three)):
                rows.append({"seed": seed, "figure": f, "kind": kind, "slope": rel.fit.slope, "r2": rel.fit.r2,
                             "ci_low": rel.fit.ci_low, "ci_high": rel.fit.ci_high, "n": rel.fit.n,
                             "censored": rel.censored})
                if seed == ctx.seeds()[0]:
                    axes[int(f) - 2, col].loglog(rel.x, rel.y, ".", label=f"slope {rel.fit.slope:.2f}, "
                                                                          f"R² {rel.fit.r2:.2f}")
    for col, kind in enumerate(KINDS):
        axes[0, col].set(xlabel="PCA variance λ_i(Σ)", ylabel="interval flatness F along v_i(Σ)",
                         title=f"Fig. 2: {TITLES[kind]}")
        axes[1, col].set(xlabel="Hessian eigenvalue λ_i(H)", ylabel="Var(Proj_{v_i(H)} S)",
                         title=f"Fig. 3: {TITLES[kind]}")
        for ax in axes[:, col]:
            ax.legend(fontsize=7)
    fig.subplots_adjust(wspace=0.35, hspace=0.4)
    ctx.table("noise_structure", rows)
    spectrum = "the whole spectrum" if cfg.n_eigen is None else f"the top {cfg.n_eigen} eigenpairs (Lanczos)"
    ctx.figure(fig, "noise_structure", f"{ctx.paper}, Figs. 2–3 ({letters}): {title}, "
               f"substitute data: {specs['clearer'].substitute}. Block D = {dim}; Fig. 2 along the top "
               f"{cfg.n_directions} PCA directions (censored widths left out), Fig. 3 on {spectrum} of the block's "
               f"Hessian; gradient samples N = {cfg.n_samples}, parameter samples N = {cfg.n_trajectory} "
               f"(detrended {cfg.optimizer} steps at lr {sample_lr:.3g}); keep {cfg.keep}, seed {ctx.seeds()[0]}.",
               claims=[s.id for s in specs.values()])
    _, why = accuracy_gate(cfg.min_train_acc, metrics)
    met = [m["train_acc"] >= cfg.min_train_acc for m in metrics]  # one net per seed: the failing seeds are named
    reg = {"train_acc": [m["train_acc"] for m in metrics], "test_acc": [m["test_acc"] for m in metrics]}
    for key, values in slopes.items():
        extra = {"censored_directions_per_seed": censored[key[5:]], "directions_per_seed": cfg.n_directions} \
            if key.startswith("fig2") else {}
        ctx.claim(specs[key], values, regime_met=met, regime_reason=why, regime_values=reg, measured=extra)
    ctx.claim(specs["clearer"], [a - b for a, b in zip(r2["gradient"], r2["trajectory"])], regime_met=met,
              regime_reason=why, regime_values=reg, measured={"r2_gradient": r2["gradient"],
                                                              "r2_trajectory": r2["trajectory"]})


@experiment("zzx-noise-resnet20", paper=PAPER,
            reproduces="Figs. 2–3 (b, e): variance–flatness and Hessian–variance relations of ResNet-20's first block",
            config=NetNoiseConfig, claims=list(RESNET.values()))
def run_resnet(cfg: NetNoiseConfig, ctx: RunContext) -> None:
    net_noise(cfg, ctx, RESNET, "ResNet-20", "b, e")


@experiment("zzx-noise-transformer", paper=PAPER,
            reproduces="Figs. 2–3 (c, f): variance–flatness and Hessian–variance relations of the transformer's "
                       "decoder queries", config=TransformerNoiseConfig, claims=list(TRANSFORMER.values()))
def run_transformer(cfg: TransformerNoiseConfig, ctx: RunContext) -> None:
    net_noise(cfg, ctx, TRANSFORMER, "Transformer", "c, f")
