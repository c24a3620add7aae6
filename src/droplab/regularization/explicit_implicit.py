"""Explicit vs implicit regularization of dropout (Wei, Kakade & Ma 2020, "The implicit and explicit
regularization effects of dropout").

A dropout GD step ``w ← w − lr·∇L(w, mask)`` splits into its mean and its fluctuation:

.. math::

    \\nabla L(w, \\text{mask}) = \\underbrace{\\nabla L_{ENS}(w)}_{\\text{ensemble}}
    + \\underbrace{(\\mathbb{E}\\nabla L(w, \\cdot) - \\nabla L_{ENS}(w))}_{\\text{explicit: gradient of the
    expected-loss regularizer}}
    + \\underbrace{(\\nabla L(w, \\text{mask}) - \\mathbb{E}\\nabla L(w, \\cdot))}_{
    \\text{implicit: zero-mean update noise}}

(B&S 2014 eq. 147/155 identify the middle term as an adaptive weight decay.) The same initialization
is trained four ways: ``"none"`` (ensemble GD), ``"explicit"`` (the mean only: GD on the expected
dropout loss), ``"implicit"`` (ensemble gradient plus the zero-mean fluctuation, the mean effect
removed) and ``"both"`` (plain dropout GD). The mean E∇L(w, ·) is a Monte Carlo average of
``n_mean_samples`` independent masks per step (an unbiased estimate; the fluctuation uses a separate
mask, so its conditional mean is exactly zero).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn

from droplab._checks import check_choice, check_generator, check_int, check_positive
from droplab._params import LossFn
from droplab.nn.modes import evaluation
from droplab.nn.noise_space import draw_noise, noise_space
from droplab.regularization.expected_gradient import _per_mask_gradients, ensemble_gradient

MODES = ("none", "explicit", "implicit", "both")


def _ensemble_loss(model: nn.Module, loss_fn: LossFn, x: Tensor, y: Tensor) -> float:
    with torch.no_grad(), evaluation(model):
        return float(loss_fn(model(x), y))


def train_decomposed(
    model: nn.Module,
    loss_fn: LossFn,
    train: tuple[Tensor, Tensor],
    mode: str,
    *,
    lr: float,
    steps: int,
    n_mean_samples: int = 16,
    eval_every: int = 10,
    metrics: Callable[[nn.Module], dict[str, float]] | None = None,
    generator: torch.Generator | None = None,
) -> tuple[nn.Module, dict[str, list[Any]]]:
    """Train a copy of ``model`` by full-batch GD with one part of dropout's effect (see the module doc).

    Returns the trained copy and its history ``{"step": [...], "train_loss": [...], **metrics}``
    (ensemble-network training loss and ``metrics(model)`` every ``eval_every`` steps).
    """
    check_choice("mode", mode, MODES)
    check_positive("lr", lr)
    check_int("steps", steps, minimum=0)
    check_int("n_mean_samples", n_mean_samples, minimum=1)
    check_int("eval_every", eval_every, minimum=1)
    x, y = train
    model = copy.deepcopy(model)
    noise_space(model, x)  # one-line error when the model has no noise layer
    params = [p for p in model.parameters() if p.requires_grad]
    names = [k for k, p in model.named_parameters() if p.requires_grad]
    history: dict[str, list[Any]] = {"step": [], "train_loss": []}

    def record(step: int) -> None:
        history["step"].append(step)
        history["train_loss"].append(_ensemble_loss(model, loss_fn, x, y))
        for k, v in (metrics(model) if metrics else {}).items():
            history.setdefault(k, []).append(v)

    for step in range(steps):
        if step % eval_every == 0:
            record(step)
        n_draws = {"none": 0, "explicit": n_mean_samples, "implicit": n_mean_samples + 1, "both": 1}[mode]
        direction = ensemble_gradient(model, loss_fn, x, y) if mode in ("none", "implicit") else None
        if n_draws:
            draws = _per_mask_gradients(
                model, loss_fn, x, y, draw_noise(model, x, n_draws, generator), None
            )
            if mode == "explicit":
                direction = {k: g.mean(0) for k, g in draws.items()}
            elif mode == "both":
                direction = {k: g[0] for k, g in draws.items()}
            else:  # implicit: ensemble + (one mask − mean of the other masks)
                direction = {k: direction[k] + g[0] - g[1:].mean(0) for k, g in draws.items()}
        with torch.no_grad():
            for k, p in zip(names, params):
                p -= lr * direction[k]
    record(steps)
    return model, history


def explicit_implicit(model: nn.Module, loss_fn: LossFn, train: tuple[Tensor, Tensor], *,
                      generator: torch.Generator | None = None, **options: Any) -> dict[str, dict[str, list[Any]]]:
    """The four runs of :func:`train_decomposed` from the same initialization and the same noise stream.

    ``options`` are :func:`train_decomposed`'s keywords (``lr``, ``steps``, ``n_mean_samples``,
    ``eval_every``, ``metrics``). Each run draws from a copy of ``generator``'s state (None:
    torch's global RNG state), so the four modes see common random numbers; ``generator`` itself
    is not advanced.
    """
    check_generator("generator", generator)
    state = (generator if generator is not None else torch.default_generator).get_state()
    return {mode: train_decomposed(model, loss_fn, train, mode, generator=_copy_of(state), **options)[1]
            for mode in MODES}


def _copy_of(state: Tensor) -> torch.Generator:
    g = torch.Generator()
    g.set_state(state)
    return g
