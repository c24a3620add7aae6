"""Pieces several experiments share: loading a classification task, training a model into a stage."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn

from droplab import data as _data
from droplab.experiments.run import RunContext
from droplab.training import TrainConfig, accuracy, fit

IMAGE_DATASETS = ("digits", "mnist-5k", "mnist", "fashion-mnist", "cifar10", "cifar100")


def load_task(name: str, n_train: int | None = None, n_test: int | None = None, device: str = "cpu",
              flat: bool = True) -> tuple[_data.Dataset, _data.Dataset]:
    """Train and test splits of a dataset: flattened for fully connected nets, else as images."""
    options = {"flat": flat} if name in IMAGE_DATASETS else {}
    train = _data.load(name, "train", n=n_train, **options).to(device)
    test = _data.load(name, "test", n=n_test, **options).to(device)
    return (train.flat(), test.flat()) if flat and name in IMAGE_DATASETS else (train, test)


def train_stage(ctx: RunContext, name: str, model: nn.Module, loss_fn: Callable[[Tensor, Tensor], Tensor],
                train: _data.Dataset, test: _data.Dataset | None, cfg: TrainConfig,
                ignore_index: int | None = None) -> dict[str, Any]:
    """Train ``model`` as a resumable stage named ``name``; load its weights and return its metrics.

    The stage caches the final ``state_dict`` and metrics, so ``--resume`` skips finished
    training; an interrupted training resumes from its checkpoint.
    """

    def run() -> dict[str, Any]:
        res = fit(model, loss_fn, train.x, train.y, cfg, checkpoint=ctx.checkpoint_path(name),
                  progress=lambda r: ctx.progress(r, f"train {name}"))
        out: dict[str, Any] = {"state": {k: v.detach().clone() for k, v in model.state_dict().items()},
                               "losses": torch.tensor(res.losses), "steps": res.steps,
                               "stopped": res.stopped, "train_loss": res.final_eval_loss}
        if test is not None and train.n_classes is not None:
            out["train_acc"] = accuracy(model, train.x, train.y, ignore_index=ignore_index)
            out["test_acc"] = accuracy(model, test.x, test.y, ignore_index=ignore_index)
        return out

    result = ctx.stage(name, run)
    model.load_state_dict(result["state"])
    return {k: v for k, v in result.items() if k != "state"}
