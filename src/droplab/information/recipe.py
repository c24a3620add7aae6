"""The training recipe of Achille & Soatto 2017, §6, as a config.

"Adam for 80 epochs, with initial learning rate 0.01, dropping the learning rate by a factor of 0.1
after 30 and 60 epochs"; α(x) < 0.5; the KL term divided by the number of training samples; β free.
Before testing with the noise off, the authors' code recomputes the batch-norm statistics over the
training set (:func:`recompute_batchnorm`). The batch size is not stated in the paper (the authors' code uses 100).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from droplab._checks import check_int, check_positive
from droplab.losses import information_bottleneck
from droplab.nn.modes import evaluation, noise_layers
from droplab.training import TrainConfig


@dataclass
class InformationDropoutRecipe:
    """§6's recipe. ``epochs``/``milestone_epochs`` scale together for CPU-sized runs.

    >>> InformationDropoutRecipe(epochs=8, milestone_epochs=(3, 6)).train_config(1000, seed=0).milestones
    (30, 60)
    """

    beta: float = 1.0
    max_alpha: float = 0.5
    lr: float = 0.01
    epochs: int = 80
    milestone_epochs: tuple[int, ...] = (30, 60)
    batch_size: int = 100

    def validate(self) -> None:
        check_positive("beta", self.beta, allow_zero=True)
        check_positive("max_alpha", self.max_alpha)
        check_positive("lr", self.lr)
        check_int("epochs", self.epochs, minimum=1)
        check_int("batch_size", self.batch_size, minimum=1)
        for m in self.milestone_epochs:
            check_int("milestone_epochs entry", m, minimum=1)

    def train_config(self, n_train: int, *, seed: int = 0) -> TrainConfig:
        """The :class:`droplab.training.TrainConfig` (steps, milestones in steps) for ``n_train`` examples."""
        self.validate()
        check_int("n_train", n_train, minimum=1)
        per_epoch = math.ceil(n_train / self.batch_size)
        return TrainConfig(optimizer="adam", lr=self.lr, steps=self.epochs * per_epoch,
                           batch_size=min(self.batch_size, n_train),
                           milestones=tuple(m * per_epoch for m in self.milestone_epochs), gamma=0.1,
                           eval_every=per_epoch, seed=seed)


def recompute_batchnorm(model: nn.Module, x: Tensor, *, batch_size: int = 256) -> None:
    """Replace every batch-norm layer's running statistics by their average over ``x`` with the noise off.

    The authors' code does this before testing: statistics gathered while training saw noisy
    activations, while testing runs with the noise at its mean. Each batch-norm layer's running mean
    and variance become the average of the per-batch statistics (``momentum=None``), computed in
    evaluation mode for every other module; the caller's train/eval flags and momenta are restored.
    """
    check_int("batch_size", batch_size, minimum=1)
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    momenta = [m.momentum for m in norms]
    with evaluation(model), torch.no_grad():
        for m in norms:
            m.reset_running_stats()
            m.momentum = None
            m.train()
        for i in range(0, len(x), batch_size):
            model(x[i:i + batch_size])
    for m, momentum in zip(norms, momenta):
        m.momentum = momentum


def ib_loss_fn(model: nn.Module, beta: float, n_train: int) -> Callable[[Tensor, Tensor], Tensor]:
    """The loss ``(logits, target) ↦ CE + β·ΣKL/n_train`` of ``model``'s noise layers (eq. 2, §6) for fit loops.

    One-line errors for β < 0 and for a model without Information or Variational Dropout layers.
    """
    check_positive("beta", beta, allow_zero=True)
    check_int("n_train", n_train, minimum=1)
    if not any(layer.has_kl for layer in noise_layers(model)):
        raise ValueError("model has no information or variational dropout layers, so the information bottleneck "
                         "loss has no KL term; use cross-entropy")

    def loss(logits: Tensor, target: Tensor) -> Tensor:
        return information_bottleneck(logits, target, model, beta, n_train)

    # the name carries β and N: a cached training keyed by the loss's name must tell two β apart
    loss.__qualname__ = f"ib_loss_fn(beta={float(beta)!r}, n_train={n_train})"
    return loss
