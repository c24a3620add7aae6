"""Achille & Soatto 2017, Fig. 3: test error against network size for several dropout kinds.

Reproduce: ``droplab run as-size-sweep --profile quick`` (digits, a 3-hidden-layer FNN of each
width, 3 seeds per point; ``--profile paper`` is Fig. 3(a) on MNIST files). Fig. 3(b) (All-CNN-32
on CIFAR-10 with a fraction of the filters, Softplus) is ``droplab run as-size-sweep-allcnn
--profile paper`` (its quick profile: 8×8 digits, filter fractions 0.05 and 0.1, one seed).

Training follows §6 (:class:`droplab.information.InformationDropoutRecipe`): Adam, learning rate
0.01 divided by 10 at 3/8 and 6/8 of the epochs, α(x) < ``max_alpha``, the KL divided by the number
of training examples and scaled by β (eq. 2; :func:`droplab.losses.information_bottleneck`).
Test error is measured with the noise off (evaluation mode), after recomputing batch-norm
statistics without noise (the authors' code) for the CNN.
"""

from __future__ import annotations

from dataclasses import dataclass
from statistics import mean, pstdev

import torch
from torch import nn

from droplab import data as _data
from droplab._checks import check_choice, check_positive
from droplab.experiments.achille_soatto import PAPER
from droplab.experiments.common import train_stage
from droplab.experiments.config import ExperimentConfig
from droplab.experiments.plotting import subplots
from droplab.experiments.registry import experiment
from droplab.experiments.run import RunContext
from droplab.information import InformationDropoutRecipe, ib_loss_fn, recompute_batchnorm
from droplab.models import AllCNN, size_sweep_fnn
from droplab.nn import check_noise
from droplab.training import accuracy

MODELS = ("fnn", "allcnn32")


@dataclass
class SizeSweepConfig(ExperimentConfig):
    """``sizes``: hidden units per layer (``fnn``) or the fraction of the filters (``allcnn32``)."""

    model: str = "fnn"
    dataset: str = "digits"
    n_train: int | None = None
    sizes: tuple[float, ...] = (8, 16, 32, 64, 128)
    kinds: tuple[str, ...] = ("none", "bernoulli", "lognormal", "information", "variational")
    seeds: tuple[int, ...] = (0, 1, 2)
    activation: str = "relu"
    p: float = 0.5
    max_alpha: float = 0.5
    beta: float = 1.0
    lr: float = 0.01
    epochs: int = 30
    milestone_epochs: tuple[int, ...] = (12, 23)
    batch_size: int = 100

    PROFILES = {
        "smoke": {"sizes": (8, 16), "seeds": (0,), "epochs": 2, "milestone_epochs": (1,), "n_train": 100},
        "paper": {"dataset": "mnist", "sizes": (64, 128, 256, 512, 1024), "epochs": 80,
                  "milestone_epochs": (30, 60)},
    }

    def validate(self) -> None:
        check_choice("model", self.model, MODELS)
        check_positive("beta", self.beta, allow_zero=True)
        for kind in self.kinds:
            check_noise(kind, self.p, self.max_alpha)
        for s in self.sizes:
            check_positive("sizes entry", s)
        if "bernoulli" not in self.kinds or "information" not in self.kinds:
            raise ValueError(f"kinds must include 'bernoulli' and 'information' (the claim compares them), "
                             f"got {self.kinds}")


@dataclass
class AllCNNSizeSweepConfig(SizeSweepConfig):
    """Fig. 3(b): All-CNN-32 with a fraction of its filters, Softplus activations (log-normal prior)."""

    model: str = "allcnn32"
    dataset: str = "digits"
    sizes: tuple[float, ...] = (0.05, 0.1)
    kinds: tuple[str, ...] = ("none", "bernoulli", "information")
    seeds: tuple[int, ...] = (0,)
    activation: str = "softplus"
    n_train: int | None = 600
    epochs: int = 6
    milestone_epochs: tuple[int, ...] = (3, 5)

    PROFILES = {
        "smoke": {"sizes": (0.04,), "kinds": ("bernoulli", "information"), "epochs": 1, "milestone_epochs": (),
                  "n_train": 100},
        "paper": {"dataset": "cifar10", "n_train": None, "sizes": (0.1, 0.25, 0.5, 0.75, 1.0),
                  "kinds": ("none", "bernoulli", "information"), "seeds": (0, 1, 2), "epochs": 80,
                  "milestone_epochs": (30, 60)},
    }


def _data_for(cfg: SizeSweepConfig) -> tuple[_data.Dataset, _data.Dataset]:
    """Flat inputs for the FNN, images (N, C, H, W) for the CNN (digits stay 8×8)."""
    flat = cfg.model == "fnn"
    train = _data.load(cfg.dataset, "train", n=cfg.n_train, flat=flat)
    test = _data.load(cfg.dataset, "test", flat=flat)
    return train.to(cfg.device), test.to(cfg.device)


def _build(cfg: SizeSweepConfig, kind: str, size: float, train: _data.Dataset) -> nn.Module:
    if cfg.model == "fnn":
        return size_sweep_fnn(train.in_features, int(size), train.n_classes, noise=kind,
                              activation=cfg.activation, dropout=cfg.p, max_alpha=cfg.max_alpha)
    return AllCNN("allcnn32", train.n_classes, in_channels=train.x.shape[1], width=size, activation=cfg.activation,
                  noise=kind, dropout=cfg.p, max_alpha=cfg.max_alpha)


def _sweep(cfg: SizeSweepConfig, ctx: RunContext) -> None:
    train, test = _data_for(cfg)
    recipe = InformationDropoutRecipe(beta=cfg.beta, max_alpha=cfg.max_alpha, lr=cfg.lr, epochs=cfg.epochs,
                                      milestone_epochs=cfg.milestone_epochs, batch_size=cfg.batch_size)
    rows = []
    for kind in cfg.kinds:
        for size in cfg.sizes:
            for seed in cfg.seeds:
                torch.manual_seed(seed)
                model = _build(cfg, kind, size, train).to(cfg.device)
                loss_fn = ib_loss_fn(model, cfg.beta, len(train)) if kind in ("information", "variational") \
                    else nn.functional.cross_entropy
                tc = recipe.train_config(len(train), seed=seed)
                name = f"train_{kind}_{size:g}_{seed}"
                metrics = train_stage(ctx, name, model, loss_fn, train, None, tc)
                if cfg.model != "fnn":
                    recompute_batchnorm(model, train.x, batch_size=cfg.batch_size)
                err = ctx.stage(f"eval_{kind}_{size:g}_{seed}", lambda m=model: 1 - accuracy(m, test.x, test.y))
                rows.append({"kind": kind, "size": size, "seed": seed, "test_error": err,
                             "train_loss": metrics["train_loss"],
                             "parameters": sum(p.numel() for p in model.parameters())})
    ctx.table("runs", rows)
    summary = []
    for kind in cfg.kinds:
        for size in cfg.sizes:
            errs = [r["test_error"] for r in rows if r["kind"] == kind and r["size"] == size]
            summary.append({"kind": kind, "size": size, "mean_error": mean(errs), "std_error": pstdev(errs),
                            "n_seeds": len(errs)})
    ctx.table("summary", summary)

    fig, ax = subplots(figsize=(6, 4))
    for kind in cfg.kinds:
        pts = [s for s in summary if s["kind"] == kind]
        ax.errorbar([s["size"] for s in pts], [100 * s["mean_error"] for s in pts],
                    yerr=[100 * s["std_error"] for s in pts], marker="o", capsize=3, label=kind)
    unit = "hidden units per layer" if cfg.model == "fnn" else "fraction of All-CNN-32 filters"
    ax.set(xscale="log", xlabel=unit, ylabel="test error (%)",
           title=f"Error vs size ({cfg.dataset}, mean ± std over {len(cfg.seeds)} seeds)")
    ax.legend(fontsize=8)
    fig_id = "3(a)" if cfg.model == "fnn" else "3(b)"
    ctx.figure(fig, "error_vs_size", f"{PAPER}, Fig. {fig_id}: test error against network size for each dropout "
               f"kind ({cfg.model} on {cfg.dataset}, β = {cfg.beta}, α cap {cfg.max_alpha}).")

    err = {(s["kind"], s["size"]): s["mean_error"] for s in summary}
    gaps = [err[("bernoulli", s)] - err[("information", s)] for s in cfg.sizes]
    smallest, largest = min(cfg.sizes), max(cfg.sizes)
    gap_small = err[("bernoulli", smallest)] - err[("information", smallest)]
    gap_large = err[("bernoulli", largest)] - err[("information", largest)]
    measured = {"gap_bernoulli_minus_information": dict(zip([f"{s:g}" for s in cfg.sizes], gaps)),
                "gap_smallest": gap_small, "gap_largest": gap_large,
                **{f"error_{k}_{s:g}": v for (k, s), v in err.items()}}
    outcome = all(g > 0 for g in gaps) and gap_small > gap_large
    ctx.legacy_claim(id=f"as-fig{fig_id}-size", paper=PAPER, where=f"Fig. {fig_id}, §6",
              statement="Information Dropout beats binary dropout, most on small networks.",
              criterion=f"Mean test error over {len(cfg.seeds)} seeds: information < bernoulli at every size AND the "
                        "gap (bernoulli − information) at the smallest size exceeds the gap at the largest.",
              measured=measured, outcome=outcome)
    lognormal = None
    if "lognormal" in cfg.kinds:
        lognormal = all(err[("information", s)] < err[("lognormal", s)] for s in cfg.sizes)
    ctx.legacy_claim(id=f"as-fig{fig_id}-adaptive", paper=PAPER, where=f"Fig. {fig_id} caption",
              statement="Information Dropout also outperforms constant log-normal noise, confirming the benefit of "
                        "adaptive noise.",
              criterion=f"Mean test error over {len(cfg.seeds)} seeds: information < lognormal (α = max_alpha = "
                        f"{cfg.max_alpha}) at every size; inconclusive if 'lognormal' is not among the kinds.",
              measured={f"error_{k}_{s:g}": v for (k, s), v in err.items() if k in ("information", "lognormal")},
              outcome=lognormal)


@experiment("as-size-sweep", paper=PAPER, reproduces="Fig. 3(a): test error vs hidden width of a 3-hidden-layer "
            "FNN for no, binary, log-normal, information and variational dropout", config=SizeSweepConfig)
def run(cfg: SizeSweepConfig, ctx: RunContext) -> None:
    _sweep(cfg, ctx)


@experiment("as-size-sweep-allcnn", paper=PAPER, reproduces="Fig. 3(b): test error vs fraction of All-CNN-32's "
            "filters (Softplus) for no, binary and information dropout", config=AllCNNSizeSweepConfig)
def run_allcnn(cfg: AllCNNSizeSweepConfig, ctx: RunContext) -> None:
    _sweep(cfg, ctx)
