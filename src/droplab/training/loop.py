"""Training loops: full-batch GD (the papers' choice, no SGD noise), mini-batch SGD and Adam.

Deterministic on CPU: the same seed (and the same torch thread count: float reductions are
split by thread) gives bit-identical parameters. A checkpoint holds the model, optimizer,
schedule, RNG states, step, loss history, callback states and whether training has stopped, and
is only ever written between two steps, so a run interrupted at any point resumes to exactly the
parameters of an uninterrupted run: Ctrl-C (SIGINT) during a step is held until that step ends,
the checkpoint is written there, then ``KeyboardInterrupt`` is raised; a second Ctrl-C interrupts
at once and leaves the last periodic checkpoint.
"""

from __future__ import annotations

import math
import signal
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from droplab import _io
from droplab._checks import check_choice, check_int, check_positive
from droplab.nn import noise_layers
from droplab.nn.modes import evaluation

OPTIMIZERS = ("gd", "sgd", "adam")
Callback = Callable[[int, nn.Module, dict[str, Any]], Any]


@dataclass
class TrainConfig:
    """How to train. ``batch_size=None`` means full batch (GD); ``optimizer="gd"`` forces it.

    ``milestones``/``gamma``: the learning rate is multiplied by ``gamma`` at each milestone step.
    ``warmup > 0`` selects instead the schedule of Vaswani et al. 2017 (eq. 3):
    lr · min(t^{-1/2}, t · warmup^{-3/2}) · sqrt(warmup), which peaks at ``lr`` at step ``warmup``.
    ``stop_loss``: stop once the evaluation-mode loss on the whole training set (checked every
    ``eval_every`` steps) is at or below it. ``chunk``: compute each (full-)batch gradient in
    chunks of this many examples to bound memory (the loss must be a mean; batch normalization
    then sees per-chunk statistics). ``amp``: bfloat16 autocast for the training forward passes
    only (analyses evaluate in the model's own dtype).
    """

    optimizer: str = "gd"
    lr: float = 0.1
    steps: int = 1000
    batch_size: int | None = None
    momentum: float = 0.0
    nesterov: bool = False
    weight_decay: float = 0.0
    milestones: tuple[int, ...] = ()
    gamma: float = 0.1
    warmup: int = 0
    stop_loss: float | None = None
    eval_every: int = 50
    checkpoint_every: int = 200
    seed: int = 0
    chunk: int | None = None
    amp: bool = False

    def validate(self) -> None:
        check_choice("optimizer", self.optimizer, OPTIMIZERS)
        check_positive("lr", self.lr)
        check_int("steps", self.steps, minimum=0)
        if self.batch_size is not None:
            check_int("batch_size", self.batch_size, minimum=1)
        check_int("eval_every", self.eval_every, minimum=1)
        check_int("checkpoint_every", self.checkpoint_every, minimum=1)
        check_int("warmup", self.warmup, minimum=0)
        if self.chunk is not None:
            check_int("chunk", self.chunk, minimum=1)
        if self.optimizer == "gd" and self.batch_size is not None:
            raise ValueError("batch_size must be None for optimizer 'gd' (full batch); use 'sgd' for mini-batches")


@dataclass
class FitResult:
    """What :func:`fit` returns: steps done, per-step training loss, why it stopped."""

    steps: int
    losses: list[float] = field(default_factory=list)
    stopped: str = "steps"  # "steps" | "stop_loss" | "callback"
    final_eval_loss: float = math.nan


def _make_optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    params = [p for p in model.parameters() if p.requires_grad]
    if cfg.optimizer == "adam":
        return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, nesterov=cfg.nesterov,
                           weight_decay=cfg.weight_decay)


def _make_schedule(opt: torch.optim.Optimizer, cfg: TrainConfig) -> torch.optim.lr_scheduler.LRScheduler:
    if cfg.warmup > 0:
        w = cfg.warmup
        return torch.optim.lr_scheduler.LambdaLR(opt, lambda t: min((t + 1) ** -0.5, (t + 1) * w ** -1.5) * w ** 0.5)
    return torch.optim.lr_scheduler.MultiStepLR(opt, milestones=list(cfg.milestones), gamma=cfg.gamma)


def full_loss(model: nn.Module, loss_fn: Callable[[Tensor, Tensor], Tensor], x: Tensor, y: Tensor,
              chunk: int = 4096) -> float:
    """The evaluation-mode (deterministic, ensemble) loss on all of ``x``, in chunks."""
    total = 0.0
    with evaluation(model), torch.no_grad():
        for i in range(0, len(x), chunk):
            xb, yb = x[i:i + chunk], y[i:i + chunk]
            total += float(loss_fn(model(xb), yb)) * len(xb)
    return total / max(len(x), 1)


def fit(model: nn.Module, loss_fn: Callable[[Tensor, Tensor], Tensor], x: Tensor, y: Tensor,
        cfg: TrainConfig, *, callbacks: Sequence[Callback] = (), checkpoint: Path | None = None,
        progress: Callable[[range], Iterable[int]] | None = None) -> FitResult:
    """Train ``model`` in place on ``(x, y)`` and return the loss history.

    The model is put in training mode for the updates (dropout on) and restored to its
    previous mode at the end. With ``checkpoint`` the state is saved every
    ``cfg.checkpoint_every`` steps, at the end and at the step where Ctrl-C arrived, and an
    existing checkpoint is resumed (one that records an early stop trains no further).
    ``progress`` wraps the range of steps (e.g. in a tqdm bar); if what it returns has a
    ``total`` (tqdm), that total is set to the steps done when training stops early.

    Randomness: ``fit`` **reseeds torch's global RNG** with ``cfg.seed`` (``torch.manual_seed``), so
    the noise of layers without their own generator is a function of the config; layers with a
    ``generator`` keep drawing from it (checkpointed too); the epoch orders come from generators of
    their own (:func:`epoch_order`). To leave the caller's global stream untouched, call it inside
    ``torch.random.fork_rng()``; to give the noise its own stream, :func:`droplab.nn.lend_generator`.
    """
    cfg.validate()
    opt = _make_optimizer(model, cfg)
    sched = _make_schedule(opt, cfg)
    result = FitResult(steps=0)
    torch.manual_seed(cfg.seed)
    if checkpoint is not None and Path(checkpoint).is_file():
        _restore(_io.torch_load(checkpoint), model, opt, sched, result, callbacks)
    was_training = model.training
    model.train()
    todo = range(result.steps, cfg.steps if result.stopped == "steps" else result.steps)  # a saved stop is final
    steps = progress(todo) if progress else todo

    def save() -> None:
        if checkpoint is not None:
            _io.torch_save(checkpoint, _snapshot(model, opt, sched, result, callbacks))

    try:
        with _interrupt_between_steps() as interrupted:
            for step in steps:
                if cfg.batch_size is None:
                    xb, yb = x, y
                else:
                    epoch, b = divmod(step, math.ceil(len(x) / cfg.batch_size))
                    idx = epoch_order(len(x), epoch, cfg.seed)[b * cfg.batch_size:(b + 1) * cfg.batch_size]
                    xb, yb = x[idx], y[idx]
                opt.zero_grad(set_to_none=True)
                loss = _backward(model, loss_fn, xb, yb, cfg)
                opt.step()
                sched.step()
                result.steps = step + 1
                result.losses.append(float(loss.detach()))
                info = {"loss": result.losses[-1], "lr": opt.param_groups[0]["lr"]}
                stop = any(bool(cb(result.steps, model, info)) for cb in callbacks)
                if cfg.stop_loss is not None and result.steps % cfg.eval_every == 0:
                    if full_loss(model, loss_fn, x, y) <= cfg.stop_loss:
                        result.stopped = "stop_loss"
                        break
                if stop:
                    result.stopped = "callback"
                    break
                held = interrupted()
                if held or result.steps % cfg.checkpoint_every == 0:
                    save()
                if held:
                    raise KeyboardInterrupt
            save()  # the end, or the early stop with its reason: a resume trains no further
            if result.stopped != "steps" and hasattr(steps, "total"):
                steps.total = result.steps  # the bar ends full at the early stop
    finally:
        model.train(was_training)
    result.final_eval_loss = full_loss(model, loss_fn, x, y)
    return result


@contextmanager
def _interrupt_between_steps() -> Iterator[Callable[[], bool]]:
    """Hold a Ctrl-C (SIGINT) that arrives during a step until the step ends; yield "was one held?".

    The loop then checkpoints at that step boundary and raises ``KeyboardInterrupt``; a held
    Ctrl-C still pending when the block ends is raised there. A second Ctrl-C raises at once.
    Only in the main thread and while SIGINT has Python's default handler (elsewhere a
    ``KeyboardInterrupt`` propagates as usual and the last periodic checkpoint stands).
    """
    held: list[int] = []
    if threading.current_thread() is not threading.main_thread() or \
            signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
        yield lambda: False
        return

    def hold(signum: int, frame: Any) -> None:
        if held:
            raise KeyboardInterrupt
        held.append(signum)

    signal.signal(signal.SIGINT, hold)
    try:
        yield lambda: bool(held)
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    if held:
        raise KeyboardInterrupt


def _backward(model: nn.Module, loss_fn: Callable[[Tensor, Tensor], Tensor], x: Tensor, y: Tensor,
              cfg: TrainConfig) -> Tensor:
    """Accumulate the gradient of the mean loss on (x, y), in chunks if asked; return the loss."""
    chunk = cfg.chunk or len(x)
    total = torch.zeros((), device=x.device)
    for i in range(0, len(x), chunk):
        xb, yb = x[i:i + chunk], y[i:i + chunk]
        with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=cfg.amp):
            loss = loss_fn(model(xb), yb) * (len(xb) / len(x))
        loss.backward()
        total += loss.detach().float()
    return total


def epoch_order(n: int, epoch: int, seed: int) -> Tensor:
    """The example order of one epoch: a permutation fixed by (seed, epoch), so resume is exact."""
    return torch.randperm(n, generator=torch.Generator().manual_seed(seed * 1_000_003 + epoch))


def _layer_generators(model: nn.Module) -> list[torch.Generator | None]:
    """Explicit generators of the model's noise layers (their states are checkpointed too)."""
    return [getattr(layer, "generator", None) for layer in noise_layers(model)]


def _snapshot(model, opt, sched, result, callbacks) -> dict[str, Any]:
    return {
        "model": model.state_dict(), "optimizer": opt.state_dict(), "scheduler": sched.state_dict(),
        "torch_rng": torch.get_rng_state(),
        "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else [],
        "noise_rng": [g.get_state() if g is not None else None for g in _layer_generators(model)],
        "steps": result.steps, "losses": list(result.losses), "stopped": result.stopped,
        "callbacks": [cb.state_dict() if hasattr(cb, "state_dict") else None for cb in callbacks],
    }


def _restore(state, model, opt, sched, result, callbacks) -> None:
    model.load_state_dict(state["model"])
    opt.load_state_dict(state["optimizer"])
    sched.load_state_dict(state["scheduler"])
    torch.set_rng_state(state["torch_rng"])
    if state.get("cuda_rng"):
        torch.cuda.set_rng_state_all(state["cuda_rng"])
    for g, g_state in zip(_layer_generators(model), state["noise_rng"]):
        if g is not None and g_state is not None:
            g.set_state(g_state)
    result.steps, result.losses, result.stopped = state["steps"], list(state["losses"]), state["stopped"]
    for cb, cb_state in zip(callbacks, state["callbacks"]):
        if cb_state is not None and hasattr(cb, "load_state_dict"):
            cb.load_state_dict(cb_state)
