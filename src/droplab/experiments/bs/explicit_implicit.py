"""The explicit and implicit parts of dropout's effect, measured separately (issue: Wei, Kakade & Ma 2020's
decomposition), with Baldi & Sadowski 2014's reading of the explicit part as an adaptive weight decay.

Reproduce: ``droplab run bs-explicit-implicit --profile quick``.

One initialization of an FNN with dropout is trained by full-batch GD four ways
(:func:`droplab.regularization.explicit_implicit`): ``none`` (the ensemble network's gradient),
``explicit`` (the expected dropout gradient: ensemble + B&S's decay term, eqs. 147–148 and 155),
``implicit`` (the ensemble gradient plus the zero-mean update noise of one mask) and ``both`` (plain
dropout GD). Reported: ensemble training loss, test accuracy and the weight norm of each run over
training. The claim tested is B&S's: the explicit part shrinks the weights relative to ensemble GD.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from droplab._checks import check_int, check_positive, check_probability
from droplab.experiments.claims import ClaimSpec, Criterion
from droplab.experiments.common import load_task
from droplab.experiments.config import ExperimentConfig
from droplab.experiments.plotting import subplots
from droplab.experiments.registry import experiment
from droplab.experiments.run import RunContext
from droplab.models import FNN
from droplab.regularization import MODES, explicit_implicit
from droplab.training import accuracy

PAPER = "Baldi & Sadowski 2014; Wei, Kakade & Ma 2020"


@dataclass
class ExplicitImplicitConfig(ExperimentConfig):
    dataset: str = "digits"
    n_train: int | None = 500
    hidden: tuple[int, ...] = (64,)
    drop: float = 0.5
    lr: float = 0.5
    steps: int = 300
    n_mean_samples: int = 16
    eval_every: int = 20

    PROFILES = {
        "smoke": {"hidden": (8,), "n_train": 100, "steps": 10, "n_mean_samples": 4, "eval_every": 5},
        "paper": {"dataset": "mnist", "n_train": 10_000, "hidden": (1024, 1024), "steps": 3000,
                  "n_mean_samples": 32, "eval_every": 100},
    }

    def validate(self) -> None:
        check_probability("drop", self.drop)
        check_positive("lr", self.lr)
        check_int("steps", self.steps, minimum=1)


DECAY = ClaimSpec(
    id="bs-explicit-decay", kind="claim", where="§11.2–11.4, eqs. 147–148, 155",
    statement="The expected dropout gradient is the ensemble gradient plus an adaptive weight decay: following it "
              "keeps the weights smaller than following the ensemble gradient alone.",
    quote="'Thus again the expectation of the dropout gradient is the gradient of the ensemble plus an adaptive "
          "regularization term … The component w Var(α) corresponds to a weight decay' (after eq. 155)",
    paper_value="a weight decay: smaller weights than ensemble GD",
    criterion=Criterion(quantity="paired difference (ensemble GD − explicit GD) of the final weight norm, same "
                                 "initialization and steps", op=">", threshold=0.0,
                        reading="'weight decay' read as a smaller final weight norm than ensemble GD from the same "
                                "initialization. The net is ReLU + softmax: an extension of §11.2–11.5, which derive "
                                "the term for linear and logistic units."),
    method="paired-t", regime="full-batch GD for the configured steps from one initialization per seed")


@experiment("bs-explicit-implicit", paper=PAPER,
            reproduces="§11, eqs. 147–148, 155: the explicit part of dropout is an adaptive weight decay; "
                       "explicit vs implicit effects measured separately",
            config=ExplicitImplicitConfig, claims=[DECAY])
def run(cfg: ExplicitImplicitConfig, ctx: RunContext) -> None:
    train, test = load_task(cfg.dataset, cfg.n_train, device=cfg.device)

    def metrics(m: nn.Module) -> dict[str, float]:
        norm = torch.sqrt(sum((p.detach() ** 2).sum() for n, p in m.named_parameters() if "weight" in n))
        return {"test_acc": accuracy(m, test.x, test.y), "weight_norm": float(norm)}

    def one_seed(seed: int) -> dict:
        torch.manual_seed(seed)
        model = FNN([train.in_features, *cfg.hidden, train.n_classes], dropout={1: cfg.drop}).to(cfg.device)
        return explicit_implicit(model, nn.functional.cross_entropy, (train.x, train.y), lr=cfg.lr, steps=cfg.steps,
                                 n_mean_samples=cfg.n_mean_samples, eval_every=cfg.eval_every, metrics=metrics,
                                 generator=torch.Generator().manual_seed(seed))

    per = {s: ctx.stage(f"runs_s{s}", lambda s=s: one_seed(s)) for s in ctx.seeds()}
    runs = per[ctx.seeds()[0]]
    rows = [{"seed": s, "mode": m, "train_loss": r[m]["train_loss"][-1], "test_acc": r[m]["test_acc"][-1],
             "weight_norm": r[m]["weight_norm"][-1]} for s, r in per.items() for m in MODES]
    ctx.table("final", rows)

    fig, ax = subplots(1, 3, figsize=(13, 3.6))
    for m in MODES:
        h = runs[m]
        for a, key in zip(ax, ("train_loss", "test_acc", "weight_norm")):
            a.plot(h["step"], h[key], marker=".", label=m)
    ax[0].set(xlabel="GD step", ylabel="ensemble training loss (nats)", yscale="log")
    ax[1].set(xlabel="GD step", ylabel="test accuracy (ensemble network)")
    ax[2].set(xlabel="GD step", ylabel="‖W‖ (all weight matrices, Frobenius)")
    ax[0].legend(fontsize=8)
    ctx.figure(fig, "explicit_implicit", "Baldi & Sadowski 2014 §11 / Wei, Kakade & Ma 2020: ensemble GD (none), "
               "the expected dropout gradient (explicit), ensemble gradient + dropout update noise (implicit) and "
               f"dropout GD (both) from one initialization on {cfg.dataset} (seed {ctx.seeds()[0]}).",
               claims=[DECAY.id])

    norms = {m: [r[m]["weight_norm"][-1] for r in per.values()] for m in MODES}
    ctx.claim(DECAY, [a - b for a, b in zip(norms["none"], norms["explicit"])],
              measured={**{f"weight_norm_{m}": v for m, v in norms.items()},
                        **{f"test_acc_{m}": [r[m]["test_acc"][-1] for r in per.values()] for m in MODES}})
