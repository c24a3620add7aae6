"""Pieces several experiments share: loading a classification task, training a model into a stage."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import asdict
from typing import Any

import torch
from torch import Tensor, nn

from droplab import __version__
from droplab import data as _data
from droplab.experiments.run import RunContext
from droplab.training import RecordParameters, TrainConfig, accuracy, fit

IMAGE_DATASETS = ("digits", "mnist-5k", "mnist", "fashion-mnist", "cifar10", "cifar100")


def load_task(name: str, n_train: int | None = None, n_test: int | None = None, device: str = "cpu",
              flat: bool = True, pool: int = 1) -> tuple[_data.Dataset, _data.Dataset]:
    """Train and test splits of a dataset: flattened for fully connected nets, else as images, average-pooled
    ``pool`` × ``pool`` (:meth:`~droplab.data.Dataset.pooled`; images only)."""
    options = {"flat": flat and pool == 1} if name in IMAGE_DATASETS else {}
    train = _data.load(name, "train", n=n_train, **options).to(device)
    test = _data.load(name, "test", n=n_test, **options).to(device)
    if pool != 1:
        train, test = train.pooled(pool), test.pooled(pool)
    return (train.flat(), test.flat()) if flat and name in IMAGE_DATASETS else (train, test)


def tensor_digest(*tensors: Tensor) -> str:
    """SHA-256 of tensors' dtypes, shapes and bytes (what a cached stage's key uses for data and weights)."""
    h = hashlib.sha256()
    for t in tensors:
        h.update(f"{t.dtype}{tuple(t.shape)}".encode())
        h.update(t.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def describe_callable(fn: Callable[..., Any]) -> str:
    """What a function computes, for a cache key: its qualified name and the values it closes over
    (two closures of one factory with different parameters get different keys)."""
    cells = [c.cell_contents for c in (getattr(fn, "__closure__", None) or ())]
    parts = [f"{getattr(fn, '__module__', '')}.{getattr(fn, '__qualname__', repr(fn))}"]
    for v in (*cells, *(getattr(fn, "__defaults__", None) or ())):
        parts.append(tensor_digest(v) if isinstance(v, Tensor) else describe_callable(v) if callable(v) else repr(v))
    return "|".join(parts)


def train_stage(ctx: RunContext, name: str, model: nn.Module, loss_fn: Callable[[Tensor, Tensor], Tensor],
                train: _data.Dataset, test: _data.Dataset | None, cfg: TrainConfig,
                ignore_index: int | None = None, snapshots: Sequence[int] = ()) -> dict[str, Any]:
    """Train ``model`` as a resumable stage named ``name``; load its weights and return its metrics.

    ``snapshots`` lists steps (≥ 1) after which the flat parameters are kept (one optimizer through
    the whole run): the metrics then hold ``snapshot_steps`` and ``snapshot_params`` ``(n, n_params)``
    in ``model.parameters()`` order (``torch.nn.utils.vector_to_parameters`` loads one).

    The result (final ``state_dict`` and metrics) is cached under the hash of everything that
    determines it — architecture, initial weights, data, optimizer and schedule, loss, droplab
    version — so two experiments that train the same net share one training (``ctx.shared_stage``),
    and ``--resume`` skips finished training; an interrupted training resumes from its checkpoint.
    """
    key = {"what": "train", "droplab": __version__, "model": repr(model), "init": tensor_digest(
        *model.state_dict().values()), "train": tensor_digest(train.x, train.y),
        "test": tensor_digest(test.x, test.y) if test is not None else None, "config": asdict(cfg),
        "loss": describe_callable(loss_fn), "ignore_index": ignore_index,
        "device": str(train.x.device)}
    if snapshots:
        key["snapshots"] = sorted(set(snapshots))

    def run() -> dict[str, Any]:
        record = RecordParameters(at=sorted(set(snapshots))) if snapshots else None
        res = fit(model, loss_fn, train.x, train.y, cfg, checkpoint=ctx.checkpoint_path(name),
                  progress=lambda r: ctx.progress(r, f"train {name}"), callbacks=[record] if record else [])
        out: dict[str, Any] = {"state": {k: v.detach().clone() for k, v in model.state_dict().items()},
                               "losses": torch.tensor(res.losses), "steps": res.steps,
                               "stopped": res.stopped, "train_loss": res.final_eval_loss}
        if record is not None:
            out["snapshot_steps"], out["snapshot_params"] = torch.tensor(record.steps), record.trajectory()
        if test is not None and train.n_classes is not None:
            out["train_acc"] = accuracy(model, train.x, train.y, ignore_index=ignore_index)
            out["test_acc"] = accuracy(model, test.x, test.y, ignore_index=ignore_index)
        return out

    result = ctx.shared_stage(name, key, run)
    model.load_state_dict(result["state"])
    return {k: v for k, v in result.items() if k != "state"}
