"""Achille & Soatto 2017, Fig. 3: test error against network size for several dropout kinds.

Reproduce: ``droplab run as-size-sweep --profile quick`` (``mnist-5k``: 2,000 training digits, a
3-hidden-layer FNN of each width, 3 paired seeds; ``--profile paper`` is Fig. 3(a) on the MNIST files).
Fig. 3(b) (All-CNN-32 on CIFAR-10 with a fraction of the filters, Softplus) is ``droplab run
as-size-sweep-allcnn --profile paper`` (its quick profile: 8×8 ``digits``, filter fractions 0.05 and 0.1).

Training follows §6 (:class:`droplab.information.InformationDropoutRecipe`): Adam, learning rate
0.01 divided by 10 at 3/8 and 6/8 of the epochs, α(x) < ``max_alpha``, the KL scaled by β and divided
by the paper's training-set size ``paper_n`` (effective weight β/N, see
:mod:`droplab.experiments.achille_soatto.common`). Every kind of one seed and size starts from the
same seed (paired comparisons). Constant log-normal noise ("the same variance", Fig. 3(a)'s caption)
is trained twice: at α = the cap (the largest noise Information Dropout may choose) and at the mean
α(x) the Information Dropout net of the same seed and width learned. Test error is measured with the
noise off, after recomputing batch-norm statistics without noise (the authors' code) for the CNN.
"""

from __future__ import annotations

from dataclasses import dataclass
from statistics import mean

import torch
from torch import nn

from droplab import data as _data
from droplab._checks import check_choice, check_positive
from droplab.experiments.achille_soatto import PAPER
from droplab.experiments.achille_soatto.common import (
    CIFAR10_N,
    RecipeConfig,
    alpha_figure,
    kl_weight,
    kl_weight_text,
)
from droplab.experiments.claims import ClaimSpec, load_claims
from droplab.experiments.common import train_stage
from droplab.experiments.plotting import subplots
from droplab.experiments.registry import experiment
from droplab.experiments.run import RunContext
from droplab.information import alpha_values, ib_loss_fn, recompute_batchnorm
from droplab.models import AllCNN, size_sweep_fnn
from droplab.nn import check_noise
from droplab.training import accuracy

MODELS = ("fnn", "allcnn32")
MEAN_ALPHA = "lognormal-mean"  # constant log-normal noise at the mean α(x) of the same seed's information net


@dataclass
class SizeSweepConfig(RecipeConfig):
    """``sizes``: hidden units per layer (``fnn``) or the fraction of the filters (``allcnn32``).
    ``paper_n``: the N the KL is divided by (the paper's training-set size, MNIST's 60,000)."""

    model: str = "fnn"
    dataset: str = "mnist-5k"
    n_train: int | None = 2000
    sizes: tuple[float, ...] = (16, 32, 64, 128)
    kinds: tuple[str, ...] = ("bernoulli", "lognormal", "information", "variational")
    activation: str = "relu"
    p: float = 0.5
    beta: float = 1.0
    epochs: int = 8
    milestone_epochs: tuple[int, ...] = (3, 6)
    comparable: float = 0.01
    similar: float = 0.01
    regime_error: float = 0.10

    PROFILES = {
        "smoke": {"sizes": (8, 16), "epochs": 1, "milestone_epochs": (), "n_train": 200},
        "paper": {"dataset": "mnist", "n_train": None, "sizes": (64, 128, 256, 512, 1024), "epochs": 80,
                  "milestone_epochs": (30, 60), "kinds": ("none", "bernoulli", "lognormal", "information",
                                                          "variational")},
    }

    def validate(self) -> None:
        check_choice("model", self.model, MODELS)
        super().validate()
        check_positive("beta", self.beta, allow_zero=True)
        for kind in self.kinds:
            check_noise(kind, self.p, self.max_alpha)
        for s in self.sizes:
            check_positive("sizes entry", s)
        if "bernoulli" not in self.kinds or "information" not in self.kinds:
            raise ValueError(f"kinds must include 'bernoulli' and 'information' (the claims compare them), "
                             f"got {self.kinds}")


@dataclass
class AllCNNSizeSweepConfig(SizeSweepConfig):
    """Fig. 3(b): All-CNN-32 with a fraction of its filters, Softplus activations (log-normal prior);
    the KL divided by CIFAR-10's 50,000."""

    model: str = "allcnn32"
    dataset: str = "digits"
    sizes: tuple[float, ...] = (0.05, 0.1)
    kinds: tuple[str, ...] = ("none", "bernoulli", "information")
    activation: str = "softplus"
    paper_n: int = CIFAR10_N
    n_train: int | None = 600
    epochs: int = 6
    milestone_epochs: tuple[int, ...] = (3, 5)
    regime_error: float = 0.20

    PROFILES = {
        "smoke": {"sizes": (0.04,), "kinds": ("bernoulli", "information"), "epochs": 1, "milestone_epochs": (),
                  "n_train": 100},
        "paper": {"dataset": "cifar10", "n_train": None, "sizes": (0.1, 0.25, 0.5, 0.75, 1.0), "epochs": 80,
                  "milestone_epochs": (30, 60)},
    }


SPECS = load_claims(__package__)
FIG3A_SMALL, FIG3A_LARGE = SPECS["as-fig3a-size"], SPECS["as-fig3a-size-large"]
FIG3B_SMALL, FIG3B_LARGE = SPECS["as-fig3b-size"], SPECS["as-fig3b-size-large"]
FIG3A_ADAPTIVE, FIG3A_ADAPTIVE_MEAN, FIG3A_VARIATIONAL = (SPECS["as-fig3a-adaptive"], SPECS["as-fig3a-adaptive-mean"],
                                                          SPECS["as-fig3a-variational"])
FNN_CLAIMS = (FIG3A_SMALL, FIG3A_LARGE, FIG3A_ADAPTIVE, FIG3A_ADAPTIVE_MEAN, FIG3A_VARIATIONAL)


def _data_for(cfg: SizeSweepConfig) -> tuple[_data.Dataset, _data.Dataset]:
    """Flat inputs for the FNN, images (N, C, H, W) for the CNN."""
    flat = cfg.model == "fnn"
    train = _data.load(cfg.dataset, "train", n=cfg.n_train, flat=flat)
    test = _data.load(cfg.dataset, "test", flat=flat)
    return train.to(cfg.device), test.to(cfg.device)


def _build(cfg: SizeSweepConfig, kind: str, size: float, train: _data.Dataset, alpha: float) -> nn.Module:
    if cfg.model == "fnn":
        return size_sweep_fnn(train.in_features, int(size), train.n_classes, noise=kind, activation=cfg.activation,
                              dropout=cfg.p, max_alpha=alpha)
    return AllCNN("allcnn32", train.n_classes, in_channels=train.x.shape[1], width=size, activation=cfg.activation,
                  noise=kind, dropout=cfg.p, max_alpha=alpha)


def _train(cfg: SizeSweepConfig, ctx: RunContext, kind: str, size: float, seed: int, train: _data.Dataset,
           test: _data.Dataset, alpha: float) -> tuple[nn.Module, dict]:
    """One net from seed ``seed`` (the same initialization stream for every kind), trained and tested."""
    recipe = cfg.recipe(cfg.beta)
    torch.manual_seed(seed)
    model = _build(cfg, "lognormal" if kind == MEAN_ALPHA else kind, size, train, alpha).to(cfg.device)
    loss_fn = ib_loss_fn(model, cfg.beta, cfg.paper_n) if kind in ("information", "variational") \
        else nn.functional.cross_entropy
    metrics = train_stage(ctx, f"train_{kind}_{size:g}_s{seed}", model, loss_fn, train, None,
                          recipe.train_config(len(train), seed=seed))
    if cfg.model != "fnn":
        recompute_batchnorm(model, train.x, batch_size=cfg.batch_size)
    err = ctx.stage(f"eval_{kind}_{size:g}_s{seed}", lambda: 1 - accuracy(model, test.x, test.y))
    return model, {"kind": kind, "size": size, "seed": seed, "test_error": err, "alpha": alpha,
                   "train_loss": metrics["train_loss"], "parameters": sum(p.numel() for p in model.parameters())}


def _sweep(cfg: SizeSweepConfig, ctx: RunContext, claims: tuple[ClaimSpec, ...]) -> None:
    train, test = _data_for(cfg)
    weight = kl_weight(cfg.beta, cfg.paper_n, len(train))
    ctx.log(**weight)
    kinds = list(cfg.kinds) + ([MEAN_ALPHA] if cfg.model == "fnn" and "lognormal" in cfg.kinds else [])
    rows, alphas = [], {}
    for seed in ctx.seeds():
        for size in cfg.sizes:
            mean_alpha = None
            for kind in kinds:
                alpha = mean_alpha if kind == MEAN_ALPHA else cfg.max_alpha
                model, row = _train(cfg, ctx, kind, size, seed, train, test, alpha)
                rows.append(row)
                if kind == "information":
                    a = alpha_values(model, train.x)
                    mean_alpha = float(torch.cat([v.flatten() for v in a.values()]).mean())
                    if seed == ctx.seeds()[0] and size == min(cfg.sizes):
                        alphas = alpha_values(model, test.x)
    ctx.table("runs", rows)
    err = {(r["kind"], r["size"], r["seed"]): r["test_error"] for r in rows}
    seeds = ctx.seeds()

    def mean_err(kind: str, size: float) -> float:
        return mean(err[(kind, size, s)] for s in seeds)

    fig, ax = subplots(figsize=(6.5, 4))
    for kind in kinds:
        for s in seeds:
            ax.plot(cfg.sizes, [100 * err[(kind, z, s)] for z in cfg.sizes], color=f"C{kinds.index(kind)}",
                    alpha=0.25, lw=0.8)
        ax.plot(cfg.sizes, [100 * mean_err(kind, z) for z in cfg.sizes], "o-", color=f"C{kinds.index(kind)}",
                label=kind if kind != "lognormal" else f"lognormal (α = cap {cfg.max_alpha:g})")
    unit = "hidden units per layer" if cfg.model == "fnn" else "fraction of All-CNN-32 filters"
    ax.set(xscale="log", xlabel=unit, ylabel="test error (%)",
           title=f"Error vs size ({cfg.dataset}, mean and each of {len(seeds)} seeds)")
    ax.legend(fontsize=7)
    fig_id = "3(a)" if cfg.model == "fnn" else "3(b)"
    weight_text = kl_weight_text(cfg.beta, cfg.paper_n, len(train))
    ctx.figure(fig, "error_vs_size", f"{ctx.paper}, Fig. {fig_id}: test error against network size per dropout kind "
               f"({cfg.model}, {cfg.activation}, on {cfg.dataset}; {weight_text}; "
               f"α cap {cfg.max_alpha}); thin lines are single seeds, paired across kinds.",
               claims=[c.id for c in claims])
    ctx.log(alpha_summary=alpha_figure(ctx, alphas, cfg.max_alpha, "alpha_hist",
                                       f"{cfg.model} of width {min(cfg.sizes):g}, seed {seeds[0]}, test inputs"))

    small, large = min(cfg.sizes), max(cfg.sizes)
    gate = [err[("information", large, s)] < cfg.regime_error for s in seeds]
    reg = {"information_error_largest": [err[("information", large, s)] for s in seeds]}
    why = f"the largest net's Information Dropout test error stayed ≥ {cfg.regime_error}"
    means = {f"{k}_{z:g}": mean_err(k, z) for k in kinds for z in cfg.sizes}
    ctx.log(mean_test_error=means)

    def paired(a: str, b: str, sizes: tuple[float, ...]) -> list[float]:
        return [mean(err[(a, z, s)] - err[(b, z, s)] for z in sizes) for s in seeds]

    by_id = {c.id: c for c in claims}
    common = {"regime_met": gate, "regime_values": reg, "regime_reason": why}
    ctx.claim(by_id[f"as-fig{fig_id[0]}{fig_id[2]}-size"], paired("bernoulli", "information", (small,)),
              measured={"mean_test_error": means}, **common)
    ctx.claim(by_id[f"as-fig{fig_id[0]}{fig_id[2]}-size-large"], paired("information", "bernoulli", (large,)),
              measured={"mean_test_error": means}, **common)
    if cfg.model != "fnn":
        return
    if "lognormal" in cfg.kinds:
        ctx.claim(FIG3A_ADAPTIVE, paired("lognormal", "information", cfg.sizes), **common,
                  measured={f"lognormal_{z:g}": mean_err("lognormal", z) for z in cfg.sizes})
        ctx.claim(FIG3A_ADAPTIVE_MEAN, paired(MEAN_ALPHA, "information", cfg.sizes), **common,
                  measured={"mean_alpha_learned": {f"{r['size']:g}_s{r['seed']}": r["alpha"] for r in rows
                                                   if r["kind"] == MEAN_ALPHA}})
    if "variational" in cfg.kinds:
        ctx.claim(FIG3A_VARIATIONAL, paired("variational", "information", cfg.sizes), **common,
                  measured={f"variational_{z:g}": mean_err("variational", z) for z in cfg.sizes})


@experiment("as-size-sweep", paper=PAPER, reproduces="Fig. 3(a): test error vs hidden width of a 3-hidden-layer "
            "FNN for binary, log-normal, information and variational dropout", config=SizeSweepConfig,
            claims=FNN_CLAIMS)
def run(cfg: SizeSweepConfig, ctx: RunContext) -> None:
    _sweep(cfg, ctx, FNN_CLAIMS)


@experiment("as-size-sweep-allcnn", paper=PAPER, reproduces="Fig. 3(b): test error vs fraction of All-CNN-32's "
            "filters (Softplus) for no, binary and information dropout", config=AllCNNSizeSweepConfig,
            claims=(FIG3B_SMALL, FIG3B_LARGE))
def run_allcnn(cfg: AllCNNSizeSweepConfig, ctx: RunContext) -> None:
    _sweep(cfg, ctx, (FIG3B_SMALL, FIG3B_LARGE))
