"""The teacher–student problem the sps-* experiments share: data, student, GD onto Γ (resumable)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from droplab import data as _data
from droplab._checks import check_int, check_positive
from droplab.dynamics import Trajectory, reach_zero_loss
from droplab.experiments.config import ExperimentConfig
from droplab.experiments.run import RunContext
from droplab.models import FNN
from droplab.nn import GaussianDropout

PAPER = "Shalova, Peletier & Schlichting"


@dataclass
class TeacherStudentConfig(ExperimentConfig):
    """Teacher ``dim → teacher_hidden → 1`` on ``n_train`` Gaussian inputs; ReLU student ``dim → hidden → 1``.

    GD runs until the MSE ≤ ``gd_tol``, then Gauss–Newton steps land on Γ.
    """

    n_train: int = 8
    dim: int = 4
    teacher_hidden: int = 4
    hidden: tuple[int, ...] = (16,)
    gd_lr: float = 0.05
    gd_max_steps: int = 20000
    gd_tol: float = 1e-5

    def validate(self) -> None:
        for name in ("n_train", "dim", "teacher_hidden", "gd_max_steps"):
            check_int(name, getattr(self, name), minimum=1)
        if not self.hidden:
            raise ValueError("hidden must list at least one hidden width (the dropout filters sit there)")
        for i, h in enumerate(self.hidden):
            check_int(f"hidden[{i}]", h, minimum=1)
        check_positive("gd_lr", self.gd_lr)
        check_positive("gd_tol", self.gd_tol)


def student(cfg: TeacherStudentConfig, hidden: tuple[int, ...] | None = None,
            sigma: float = 0.5) -> nn.Module:
    """The float64 ReLU student with a Gaussian-dropout filter ``y ⊙ (1 + η)``, η ~ N(0, σ²), after every
    hidden layer (SPS "Example"); the dynamics replays its own η there, with the σ it is given."""
    hidden = cfg.hidden if hidden is None else hidden
    torch.manual_seed(cfg.seed)
    widths = [cfg.dim, *hidden, 1]
    return FNN(widths, "relu", dropout={k: 0.5 for k in range(1, len(hidden) + 1)},
               noise=lambda _: GaussianDropout(sigma=sigma)).double()


def teacher_data(cfg: TeacherStudentConfig, split: str = "train", n_test: int = 500) -> tuple[Tensor, Tensor]:
    ds = _data.load("teacher", split, n_train=cfg.n_train, dim=cfg.dim, hidden=cfg.teacher_hidden,
                    n_test=n_test, seed=cfg.seed)
    return ds.x.double(), ds.y.double()


def on_manifold(ctx: RunContext, name: str, cfg: TeacherStudentConfig, model: nn.Module,
                x: Tensor, y: Tensor) -> Tensor:
    """GD onto Γ as a cached stage; a ``ValueError`` with the reached loss if GD does not get there."""
    result = ctx.stage(name, lambda: dict(zip(("w", "steps"), reach_zero_loss(
        model, x, y, lr=cfg.gd_lr, max_steps=cfg.gd_max_steps, tol=cfg.gd_tol))))
    return result["w"]


def trajectory_stage(ctx: RunContext, name: str, compute: Callable[[], Trajectory]) -> Trajectory:
    """A trajectory computed once and cached as a stage."""

    def run() -> dict[str, Any]:
        t = compute()
        return {"times": t.times, "params": t.params, "laplacian": t.laplacian, "loss": t.loss}

    return Trajectory(**ctx.stage(name, run))
