"""The deep logistic dropout classifier of Baldi & Sadowski 2014, §9.5, shared by bs-deep-approx and bs-variance-cov.

The paper trains 784-1200-1200-1200-1200-10 logistic units on MNIST with keep 0.8 at the input and
0.5 at the hidden layers, then samples 10,000 dropout sub-networks for each of 10 inputs. ``quick``
runs the same kind of net on real MNIST digits (``mnist-5k``: 4,000 training images, 784 inputs):
784-256-256-256-256-10, the widest four hidden layers that fit the quick budget (both experiments
≤ 300 CPU-seconds single-threaded for 3 seeds, measured 203 s; 512 units cost twice as much per step), Adam for
2,000 steps, 2,000 sub-networks per input. One training per seed, with log-spaced parameter
snapshots (one optimizer through the run), serves both experiments (``train_stage``: identical
config ⇒ trained once); the Monte Carlo statistics of every hidden layer are one resumable stage.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from droplab._checks import check_int, check_probability
from droplab.ensemble import sample_ensemble
from droplab.experiments.common import load_task, train_stage
from droplab.experiments.config import ExperimentConfig
from droplab.experiments.run import RunContext
from droplab.models import FNN, Logistic
from droplab.training import TrainConfig

PAPER = "Baldi & Sadowski 2014"


@dataclass
class DropoutNetConfig(ExperimentConfig):
    """B&S's dropout FNN on ``dataset``: units kept with probability ``keep_input`` at the input and
    ``keep_hidden`` after each hidden layer (§9.5's 0.8 and 0.5)."""

    dataset: str = "mnist-5k"
    n_train: int | None = None
    hidden: tuple[int, ...] = (256, 256, 256, 256)
    keep_input: float = 0.8
    keep_hidden: float = 0.5

    def validate(self) -> None:
        check_probability("keep_input", self.keep_input, low_open=True, high_open=False)
        check_probability("keep_hidden", self.keep_hidden, low_open=True, high_open=False)
        if not self.hidden:
            raise ValueError("hidden must list at least one hidden layer width")

    def dropout_rates(self) -> dict[int, float]:
        """:class:`~droplab.models.FNN`'s ``dropout``: 1 − keep_input at the input, 1 − keep_hidden after
        each hidden layer."""
        return {0: 1 - self.keep_input, **{k + 1: 1 - self.keep_hidden for k in range(len(self.hidden))}}


@dataclass
class DeepNetConfig(DropoutNetConfig):
    """The net and its training; ``n_snapshots`` log-spaced steps (plus step 0) of the one run are kept."""

    lr: float = 1e-3
    steps: int = 2000
    batch_size: int | None = 128
    n_inputs: int = 10
    samples: int = 2000
    n_snapshots: int = 7

    def validate(self) -> None:
        super().validate()
        check_int("n_inputs", self.n_inputs, minimum=1)
        check_int("samples", self.samples, minimum=2)
        check_int("n_snapshots", self.n_snapshots, minimum=2)
        check_int("steps", self.steps, minimum=self.n_snapshots)


DEEP_PAPER_PROFILE = {"dataset": "mnist", "hidden": (1200, 1200, 1200, 1200), "steps": 20000, "batch_size": 128,
                      "samples": 10000, "n_snapshots": 10}
DEEP_SMOKE_PROFILE = {"hidden": (16, 16, 16), "steps": 10, "n_inputs": 3, "samples": 100, "n_train": 300,
                      "n_snapshots": 3}


def build(cfg: DeepNetConfig, n_in: int, n_out: int) -> nn.Module:
    """Logistic FNN with dropout keep ``keep_input`` at the input and ``keep_hidden`` after each hidden layer."""
    return FNN([n_in, *cfg.hidden, n_out], "logistic", dropout=cfg.dropout_rates()).to(cfg.device)


def hidden_modules(model: nn.Module) -> list[str]:
    """Qualified names of the hidden logistic activations, input side first."""
    return [name for name, m in model.named_modules() if isinstance(m, Logistic)]


def train_config(cfg: DeepNetConfig, steps: int, seed: int | None = None) -> TrainConfig:
    return TrainConfig(optimizer="adam", lr=cfg.lr, steps=steps, batch_size=cfg.batch_size,
                       seed=cfg.seed if seed is None else seed,
                       eval_every=max(1, steps // 5))


def snapshot_steps(cfg: DeepNetConfig) -> list[int]:
    """``n_snapshots`` log-spaced steps from ``steps / 200`` to ``steps`` (the last is the trained net)."""
    lo = max(1, cfg.steps // 200)
    return sorted({int(round(s)) for s in np.geomspace(lo, cfg.steps, cfg.n_snapshots)})


def layer_statistics(ctx: RunContext, name: str, model: nn.Module, x: torch.Tensor, cfg: DeepNetConfig,
                     offset: int) -> list[dict[str, Any]]:
    """Per hidden layer, ``(n_inputs, width)`` float64 tensors E, V (unbiased), NWGM (from the logits, so exact
    in float64), W from ``cfg.samples`` masks per input (a stage)."""

    def compute() -> list[dict[str, Any]]:
        mods = hidden_modules(model)
        res = sample_ensemble(model, x, mods, cfg.samples, generator=ctx.generator(offset))
        return [{"E": u.mean.to(torch.float64), "V": u.variance.to(torch.float64), "NWGM": u.nwgm,
                 "W": u.ensemble.to(torch.float64)} for u in (res.units[m] for m in mods)]

    return ctx.stage(name, compute)


def trained_pair(ctx: RunContext, cfg: DeepNetConfig,
                 seed: int) -> tuple[nn.Module, nn.Module, torch.Tensor, dict[str, Any]]:
    """The net of ``seed`` at initialization, the same net trained, ``n_inputs`` test inputs, training metrics
    (with ``snapshot_steps`` / ``snapshot_params`` of the run: :func:`snapshot`)."""
    train, test = load_task(cfg.dataset, cfg.n_train, device=cfg.device)
    torch.manual_seed(seed)
    initial = build(cfg, train.in_features, train.n_classes)
    model = build(cfg, train.in_features, train.n_classes)
    model.load_state_dict(initial.state_dict())
    metrics = train_stage(ctx, f"train_s{seed}", model, nn.functional.cross_entropy, train, test,
                          train_config(cfg, cfg.steps, seed), snapshots=snapshot_steps(cfg))
    idx = torch.randperm(len(test.x), generator=torch.Generator().manual_seed(seed + 7))[:cfg.n_inputs]
    return initial, model, test.x[idx], metrics


def snapshot(initial: nn.Module, metrics: dict[str, Any], k: int) -> nn.Module:
    """A copy of ``initial`` holding the parameters of the ``k``-th snapshot of its training run."""
    model = copy.deepcopy(initial)
    torch.nn.utils.vector_to_parameters(metrics["snapshot_params"][k], model.parameters())
    return model
