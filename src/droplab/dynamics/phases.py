"""Learning phases and sparse coding under dropout (Baldi & Sadowski 2014, §11.7, Figs. 11.1–11.3).

For fixed inputs, the dropout mean and standard deviation of every hidden unit's activity O_i^h
across subnetworks (Monte Carlo over masks) are recorded along training. B&S predict three phases:
consistency is high at the start (small weights), the dropout variance of units moving towards 1
grows while learning, and it settles once learning converges; inactive units stay near 0 with tiny
variance (eq. 189: Var S_i^h = Σ_j w_ij² O_j² p_j(1 − p_j) is small when activities are small), which
favours sparse representations.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from droplab._checks import check_int, check_positive
from droplab._hooks import record_outputs
from droplab.models import Logistic
from droplab.nn.modes import evaluation, lend_generator, mc_mode
from droplab.training import TrainConfig, fit

ACTIVATION_TYPES = (Logistic, nn.Sigmoid, nn.ReLU, nn.Tanh, nn.Softplus)


def hidden_activations(model: nn.Module) -> list[nn.Module]:
    """The activation modules of ``model`` in order: their outputs are the hidden units O^h."""
    acts = [m for m in model.modules() if isinstance(m, ACTIVATION_TYPES)]
    if not acts:
        raise ValueError(
            "model has no activation module (Logistic, Sigmoid, ReLU, Tanh, Softplus) to measure"
        )
    return acts


def _capture(model: nn.Module, x: Tensor) -> list[Tensor]:
    acts = hidden_activations(model)
    with record_outputs(acts) as out, torch.no_grad():
        model(x)
    return [out[k][-1] for k in range(len(acts))]


def unit_activity(
    model: nn.Module, x: Tensor, n_samples: int = 1000, generator: torch.Generator | None = None
) -> tuple[list[Tensor], list[Tensor], list[Tensor]]:
    """Per hidden layer: dropout mean and std of each unit on each input, and the ensemble activity.

    Returns three lists over layers of tensors shaped (N, units): Monte Carlo mean and standard
    deviation over ``n_samples`` masks (one batched forward pass of the inputs repeated), and the
    deterministic (evaluation-mode) activity W_i^h. The model's modes are restored.
    """
    check_int("n_samples", n_samples, minimum=2)
    with mc_mode(model), lend_generator(model, generator):
        reps = _capture(model, x.repeat(n_samples, *([1] * (x.dim() - 1))))
    with evaluation(model):
        ens = _capture(model, x)
    stats = [r.reshape(n_samples, len(x), -1) for r in reps]
    return [s.mean(0) for s in stats], [s.std(0) for s in stats], [e.reshape(len(x), -1) for e in ens]


@dataclass(frozen=True)
class PhaseRecord:
    """Unit statistics along training: per layer, tensors (checkpoints, probe inputs, units)."""

    steps: list[int]
    mean: list[Tensor]
    std: list[Tensor]
    ensemble: list[Tensor]


def record_phases(
    model: nn.Module,
    loss_fn: Callable[[Tensor, Tensor], Tensor],
    train: tuple[Tensor, Tensor],
    probe: Tensor,
    cfg: TrainConfig,
    *,
    record_every: int,
    n_samples: int = 1000,
    generator: torch.Generator | None = None,
) -> PhaseRecord:
    """Train ``model`` in place (``cfg``); :func:`unit_activity` on ``probe`` every ``record_every`` steps.

    The activity samples draw from ``generator`` (None: torch's global RNG, which ``fit`` reseeds).
    """
    check_int("record_every", record_every, minimum=1)
    gen = generator
    steps: list[int] = []
    rows: list[tuple[list[Tensor], list[Tensor], list[Tensor]]] = []

    def snap(step: int) -> None:
        steps.append(step)
        rows.append(unit_activity(model, probe, n_samples, gen))

    def callback(step: int, m: nn.Module, info: dict) -> None:
        if step % record_every == 0:
            snap(step)

    snap(0)
    fit(model, loss_fn, *train, cfg, callbacks=[callback])
    n_layers = len(rows[0][0])
    stack = lambda i: [torch.stack([r[i][k] for r in rows]) for k in range(n_layers)]  # noqa: E731
    return PhaseRecord(steps, stack(0), stack(1), stack(2))


def active_units(final_mean: Tensor, threshold: float = 0.1) -> Tensor:
    """Boolean mask of active (input, unit) pairs: final dropout-mean activity > ``threshold`` (Fig. 11.3)."""
    check_positive("threshold", threshold)
    return final_mean > threshold


def sparsity(activity: Tensor, threshold: float = 0.1) -> float:
    """Fraction of activities ≤ ``threshold`` (Fig. 11.1's mass near 0): larger is sparser."""
    check_positive("threshold", threshold)
    return float((activity <= threshold).to(torch.float64).mean())
