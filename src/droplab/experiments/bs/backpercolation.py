"""Baldi & Sadowski 2014, §10.2: backpropagation vs backpercolation (dropout in the backward pass).

Reproduce: ``droplab run bs-backpercolation --profile quick``.

Backpropagation multiplies the error signal by σ'(S) ∈ (0, 1/4] at every logistic node: it is the
dropout ensemble average of the reverse linear network with keep probability σ'(S). Backpercolation
samples it: the backward pass multiplies by δ ~ Bernoulli(σ'(S)) ("adaptive p": unbiased, full
signal through a narrow channel) or by δ ~ Bernoulli(p) with a fixed p ("fixed p", B&S's variation,
which passes the unattenuated signal of the kept nodes). The forward pass is the usual deterministic
logistic net in every case.

1. The paper's example: six fully connected layers of 1000 units with derivatives 0.1 everywhere
   (random orthogonal weights): the backpropagated signal reaching the first layer carries a factor
   10⁻⁶; one backpercolation pass does not carry that factor.
2. A logistic net trained by minibatch SGD from the same initialization and on the same batches by
   backprop, adaptive backpercolation and fixed-p backpercolation, at a learning rate ``lr`` and at
   ``lr / lr_ratio`` for ``lr_ratio`` times more steps (the same η·t): §10.2 says that "with a very
   small learning rate backpercolation is essentially identical to backpropagation", so the gap
   between the two training-loss curves must shrink with the learning rate.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from droplab._checks import check_int, check_positive, check_probability
from droplab.experiments.claims import load_claims
from droplab.experiments.common import load_task
from droplab.experiments.config import ExperimentConfig
from droplab.experiments.plotting import subplots
from droplab.experiments.registry import experiment
from droplab.experiments.run import RunContext
from droplab.nn import BackpercolationSigmoid
from droplab.nn.laws import backpercolation_factor
from droplab.training import TrainConfig, accuracy, fit

PAPER = "Baldi & Sadowski 2014"
RULES = ("backprop", "adaptive", "fixed")


@dataclass
class BackpercolationConfig(ExperimentConfig):
    dataset: str = "digits"
    n_train: int | None = None
    hidden: tuple[int, ...] = (64, 64)
    fixed_p: float = 0.5
    lr: float = 1.0
    lr_ratio: int = 4
    steps: int = 300
    batch_size: int = 64
    demo_layers: int = 6
    demo_width: int = 1000
    demo_derivative: float = 0.1
    demo_passes: int = 20

    PROFILES = {
        "smoke": {"hidden": (16, 16), "steps": 20, "lr_ratio": 2, "n_train": 300, "demo_width": 200,
                  "demo_passes": 3},
        "paper": {"dataset": "mnist", "hidden": (1000,) * 6, "steps": 30000, "batch_size": 100, "lr_ratio": 10},
    }

    def validate(self) -> None:
        check_probability("fixed_p", self.fixed_p, low_open=True, high_open=False)
        check_probability("demo_derivative", self.demo_derivative, low_open=True, high_open=False)
        check_positive("lr", self.lr)
        check_int("lr_ratio", self.lr_ratio, minimum=2)
        for name in ("steps", "batch_size", "demo_layers", "demo_width", "demo_passes"):
            check_int(name, getattr(self, name), minimum=1)
        if not self.hidden:
            raise ValueError("hidden must list at least one hidden width")


def orthogonal_layers(n_layers: int, width: int, generator: torch.Generator) -> list[torch.Tensor]:
    """``n_layers`` random orthogonal ``width × width`` matrices (float64), drawn from ``generator``."""
    return [torch.linalg.qr(torch.randn(width, width, generator=generator, dtype=torch.float64))[0]
            for _ in range(n_layers)]


def attenuation(
    n_layers: int,
    width: int,
    derivative: float,
    rule: str,
    p: float,
    n_passes: int,
    generator: torch.Generator,
    weights: list[torch.Tensor] | None = None,
) -> list[float]:
    """‖signal at layer 1‖ / ‖signal at the output‖ in the reverse net, one value per backward pass.

    Random orthogonal weights (norm-preserving; ``weights`` if given, else drawn first from ``generator``),
    every node derivative equal to ``derivative``: backprop
    multiplies by it, backpercolation by the layer's own factor (:func:`droplab.nn.laws.backpercolation_factor`:
    δ ~ Bernoulli(derivative), adaptive, or Bernoulli(p), fixed).
    """
    weights = orthogonal_layers(n_layers, width, generator) if weights is None else weights
    g = torch.randn(n_passes, width, generator=generator, dtype=torch.float64)
    start = g.norm(dim=1)
    for w in weights:
        if rule == "backprop":
            g = derivative * g
        else:
            g = g * backpercolation_factor(torch.full_like(g, derivative), None if rule == "adaptive" else p,
                                           generator=generator)
        g = g @ w  # multiply by Wᵀ (rows are passes)
    return (g.norm(dim=1) / start).tolist()


def _activation(rule: str, p: float, generator: torch.Generator) -> nn.Module:
    """The logistic unit of each rule: plain backprop, or droplab's backpercolation (adaptive / fixed p)."""
    if rule == "backprop":
        return nn.Sigmoid()
    return BackpercolationSigmoid(None if rule == "adaptive" else p, generator=generator)


def _net(
    cfg: BackpercolationConfig, n_in: int, n_out: int, rule: str, generator: torch.Generator, seed: int
) -> nn.Module:
    torch.manual_seed(seed)  # the same initialization for every rule
    layers: list[nn.Module] = []
    widths = [n_in, *cfg.hidden]
    for a, b in zip(widths, widths[1:]):
        layers += [nn.Linear(a, b), _activation(rule, cfg.fixed_p, generator)]
    return nn.Sequential(*layers, nn.Linear(widths[-1], n_out))


SPECS = load_claims(__package__)
ATTENUATION = SPECS["bs-backperc-attenuation"]
SMALL_LR, TRAINS = SPECS["bs-backperc-small-lr"], SPECS["bs-backperc-trains"]


def _train(cfg: BackpercolationConfig, train, test, rule: str, lr: float, steps: int, seed: int) -> dict[str, Any]:
    model = _net(cfg, train.in_features, train.n_classes, rule, torch.Generator().manual_seed(seed + 7), seed)
    res = fit(model, nn.functional.cross_entropy, train.x, train.y,
              TrainConfig(optimizer="sgd", lr=lr, steps=steps, batch_size=cfg.batch_size, seed=seed))
    return {"losses": torch.tensor(res.losses), "train_acc": accuracy(model, train.x, train.y),
            "test_acc": accuracy(model, test.x, test.y)}


def _one_seed(cfg: BackpercolationConfig, ctx: RunContext, seed: int) -> dict[str, dict[str, Any]]:
    """Every rule at lr, and backprop / adaptive at lr / lr_ratio for lr_ratio × the steps."""
    train, test = load_task(cfg.dataset, cfg.n_train, device=cfg.device)
    out = {}
    for rule in RULES:
        out[f"{rule}_lr"] = ctx.stage(f"train_{rule}_lr_s{seed}", lambda r=rule: _train(
            cfg, train, test, r, cfg.lr, cfg.steps, seed))
    for rule in ("backprop", "adaptive"):
        out[f"{rule}_small"] = ctx.stage(f"train_{rule}_small_s{seed}", lambda r=rule: _train(
            cfg, train, test, r, cfg.lr / cfg.lr_ratio, cfg.steps * cfg.lr_ratio, seed))
    out["chance"] = {"test_acc": 1 / train.n_classes}
    return out


def _learned(losses: torch.Tensor) -> bool:
    tail = losses[-max(len(losses) // 10, 1):].mean()
    return bool(tail < 0.5 * losses[0])


@experiment(
    "bs-backpercolation",
    paper=PAPER,
    reproduces="§10.2: backprop vs backpercolation (adaptive and fixed p); the six-layer attenuation example",
    config=BackpercolationConfig,
    claims=[ATTENUATION, SMALL_LR, TRAINS],
)
def run(cfg: BackpercolationConfig, ctx: RunContext) -> None:
    def demo_ratios() -> dict[str, list[float]]:
        # one draw of the orthogonal weights for every rule; each rule then continues the same random stream
        g = torch.Generator().manual_seed(cfg.seed)
        weights, state = orthogonal_layers(cfg.demo_layers, cfg.demo_width, g), g.get_state()
        return {rule: attenuation(cfg.demo_layers, cfg.demo_width, cfg.demo_derivative, rule, cfg.fixed_p,
                                  cfg.demo_passes, torch.Generator().set_state(state), weights=weights)
                for rule in RULES}

    demo = ctx.stage("attenuation", demo_ratios)
    mean_ratio = {rule: sum(v) / len(v) for rule, v in demo.items()}
    ctx.log(**{f"attenuation_{rule}": mean_ratio[rule] for rule in RULES})

    per = {s: _one_seed(cfg, ctx, s) for s in ctx.seeds()}
    gap = {k: [float((r[f"adaptive_{k}"]["losses"] - r[f"backprop_{k}"]["losses"]).abs().mean()) for r in per.values()]
           for k in ("lr", "small")}
    ctx.table("training", [{"seed": s, "run": k, "steps": len(v["losses"]), "final_loss": float(v["losses"][-1]),
                            "train_acc": v["train_acc"], "test_acc": v["test_acc"]}
                           for s, r in per.items() for k, v in r.items() if k != "chance"])
    results = {rule: per[ctx.seeds()[0]][f"{rule}_lr"] for rule in RULES}
    small = {rule: per[ctx.seeds()[0]][f"{rule}_small"] for rule in ("backprop", "adaptive")}

    fig, ax = subplots(1, 2, figsize=(11, 4))
    ax[0].boxplot([demo[r] for r in RULES],
                  tick_labels=["backprop", "backperc.\nadaptive", f"backperc.\np = {cfg.fixed_p}"])
    ax[0].set(
        yscale="log",
        ylabel="‖error signal at layer 1‖ / ‖at output‖",
        title=f"{cfg.demo_layers} layers × {cfg.demo_width} units, σ' = {cfg.demo_derivative}",
    )
    for runs, lr, ls in ((results, cfg.lr, "-"), (small, cfg.lr / cfg.lr_ratio, ":")):
        for r, res in runs.items():
            losses = res["losses"]
            k = max(len(losses) // 100, 1)
            smooth = losses[: len(losses) // k * k].reshape(-1, k).mean(1)
            ax[1].plot(torch.arange(len(smooth)) * k * lr, smooth, ls=ls,
                       label=f"{r}, lr {lr:g} (test acc {100 * res['test_acc']:.1f}%)")
    ax[1].set(xlabel="η · SGD step (equal 'time' for both learning rates)",
              ylabel="minibatch training loss (cross-entropy, nats)", title=f"logistic {cfg.hidden} net, {cfg.dataset}")
    ax[1].legend(fontsize=7)
    ctx.figure(
        fig,
        "backpercolation",
        f"{ctx.paper}, §10.2: left, the attenuation of the error signal over "
        f"{cfg.demo_layers} layers with derivatives {cfg.demo_derivative} ({cfg.demo_passes} passes); right, "
        "training the same logistic net by SGD with backprop and backpercolation (adaptive p = σ', fixed p) at two "
        f"learning rates over equal η·t (seed {ctx.seeds()[0]}).",
        claims=[SMALL_LR.id, TRAINS.id],
    )

    expected = cfg.demo_derivative**cfg.demo_layers
    ctx.check(ATTENUATION, abs(mean_ratio["backprop"] / expected - 1) <= 0.01
              and mean_ratio["adaptive"] >= 100 * mean_ratio["backprop"],
              {"ratio_backprop": mean_ratio["backprop"], "ratio_adaptive": mean_ratio["adaptive"],
               "ratio_fixed": mean_ratio["fixed"], "expected_backprop": expected})
    learned = [_learned(r["backprop_lr"]["losses"]) and _learned(r["backprop_small"]["losses"]) for r in per.values()]
    ctx.claim(SMALL_LR, [a - b for a, b in zip(gap["lr"], gap["small"])], regime_met=learned,
              regime_values={"final_loss_backprop_lr": [float(r["backprop_lr"]["losses"][-1]) for r in per.values()],
                             "final_loss_backprop_small": [float(r["backprop_small"]["losses"][-1])
                                                           for r in per.values()]},
              regime_reason="backprop did not halve its training loss at one of the learning rates",
              measured={"gap_lr": gap["lr"], "gap_small_lr": gap["small"]})
    acc = {rule: [r[f"{rule}_small"]["test_acc"] for r in per.values()] for rule in ("backprop", "adaptive")}
    ctx.claim(TRAINS, [a / b for a, b in zip(acc["adaptive"], acc["backprop"])],
              regime_met=[r["backprop_small"]["test_acc"] >= 2 * r["chance"]["test_acc"] for r in per.values()],
              regime_values={"test_acc_backprop_small_lr": acc["backprop"]},
              regime_reason="backprop did not reach twice chance test accuracy at the small learning rate",
              measured={**{f"test_acc_{rule}_small_lr": v for rule, v in acc.items()},
                        **{f"test_acc_{rule}_lr": [r[f"{rule}_lr"]["test_acc"] for r in per.values()]
                           for rule in RULES}})
