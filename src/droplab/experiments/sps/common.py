"""The teacher–student problem the sps-* experiments share: data, student, GD onto Γ and the flow (shared stages)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from droplab import __version__
from droplab import data as _data
from droplab._checks import check_int, check_positive
from droplab.dynamics import Trajectory, dropout_gd_chains, reach_zero_loss, regularizer_flow
from droplab.experiments.common import tensor_digest
from droplab.experiments.config import ExperimentConfig
from droplab.experiments.run import RunContext
from droplab.models import FNN
from droplab.nn import GaussianDropout

PAPER = "Shalova, Peletier & Schlichting"
MSE = nn.functional.mse_loss


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


@dataclass
class FlowConfig(TeacherStudentConfig):
    """A teacher–student experiment that follows dropout GD beside the limiting flow of Theorem 1: horizon
    ``t_end`` in rescaled time t = kασ², ``n_records`` records, the flow's Euler step ``flow_dt``; a seed
    is in the theorem's regime while dropout GD's training MSE stays ≤ ``max_loss`` (near Γ)."""

    t_end: float = 1.0
    n_records: int = 11
    flow_dt: float = 0.02
    max_loss: float = 0.05

    def validate(self) -> None:
        super().validate()
        for name in ("t_end", "flow_dt", "max_loss"):
            check_positive(name, getattr(self, name))
        check_int("n_records", self.n_records, minimum=2)


def student(cfg: TeacherStudentConfig, hidden: tuple[int, ...] | None = None,
            sigma: float = 0.5, seed: int | None = None) -> nn.Module:
    """The float64 ReLU student with a Gaussian-dropout filter ``y ⊙ (1 + η)``, η ~ N(0, σ²), after every
    hidden layer (SPS "Example"), initialized from ``seed`` (default ``cfg.seed``); the dynamics replays
    its own η there, with the σ it is given."""
    hidden = cfg.hidden if hidden is None else hidden
    torch.manual_seed(cfg.seed if seed is None else seed)
    widths = [cfg.dim, *hidden, 1]
    return FNN(widths, "relu", dropout={k: 0.5 for k in range(1, len(hidden) + 1)},
               noise=lambda _: GaussianDropout(sigma=sigma)).double()


def teacher_data(cfg: TeacherStudentConfig, split: str = "train", n_test: int = 500,
                 seed: int | None = None) -> tuple[Tensor, Tensor]:
    """The teacher's ``split`` (float64), teacher and inputs drawn from ``seed`` (default ``cfg.seed``)."""
    ds = _data.load("teacher", split, n_train=cfg.n_train, dim=cfg.dim, hidden=cfg.teacher_hidden,
                    n_test=n_test, seed=cfg.seed if seed is None else seed)
    return ds.x.double(), ds.y.double()


def on_manifold(ctx: RunContext, name: str, cfg: TeacherStudentConfig, model: nn.Module,
                x: Tensor, y: Tensor) -> Tensor:
    """GD onto Γ as a stage shared by every sps-* experiment of one ``reproduce`` that starts from the same
    student and data; a ``ValueError`` with the reached loss if GD does not get there."""
    key = {"what": "sps-gd-to-gamma", "droplab": __version__, "model": repr(model),
           "init": tensor_digest(*model.state_dict().values()), "data": tensor_digest(x, y),
           "lr": cfg.gd_lr, "max_steps": cfg.gd_max_steps, "tol": cfg.gd_tol}
    result = ctx.shared_stage(name, key, lambda: dict(zip(("w", "steps"), reach_zero_loss(
        model, x, y, lr=cfg.gd_lr, max_steps=cfg.gd_max_steps, tol=cfg.gd_tol))))
    return result["w"]


def flow_stage(ctx: RunContext, name: str, model: nn.Module, x: Tensor, y: Tensor, w0: Tensor, *, t_end: float,
               dt: float, n_records: int) -> Trajectory:
    """The projected flow from ``w0`` (:func:`droplab.dynamics.regularizer_flow`), shared by every sps-*
    experiment of one ``reproduce`` that integrates it from the same point with the same steps."""
    key = {"what": "sps-flow", "droplab": __version__, "model": repr(model), "data": tensor_digest(x, y),
           "w0": tensor_digest(w0), "t_end": t_end, "dt": dt, "n_records": n_records}

    def run() -> dict[str, Any]:
        t = regularizer_flow(model, x, y, w0, t_end=t_end, dt=dt, n_records=n_records)
        return {"times": t.times, "params": t.params, "laplacian": t.laplacian, "loss": t.loss}

    return Trajectory(**ctx.shared_stage(name, key, run))


def seed_flows(ctx: RunContext, cfg: FlowConfig,
               problems: dict[int, tuple[Tensor, Tensor, nn.Module, Tensor]]) -> dict[int, Trajectory]:
    """Each seed's flow from its point of Γ (:func:`flow_stage`) over ``cfg``'s horizon and records."""
    return {s: flow_stage(ctx, f"flow_s{s}", model, x, y, w0, t_end=cfg.t_end, dt=cfg.flow_dt,
                          n_records=cfg.n_records) for s, (x, y, model, w0) in problems.items()}


def seed_problem(ctx: RunContext, cfg: TeacherStudentConfig, seed: int) -> tuple[Tensor, Tensor, nn.Module, Tensor]:
    """One seed's teacher data, student (n = 2) and its point of Γ: ``(x, y, model, w0)``."""
    x, y = teacher_data(cfg, seed=seed)
    model = student(cfg, seed=seed)
    return x, y, model, on_manifold(ctx, f"gd_to_gamma_s{seed}", cfg, model, x, y)


def seed_chains(problems: dict[int, tuple[Tensor, Tensor, nn.Module, Tensor]], owners: list[int],
                **kwargs: Any) -> Tensor:
    """:func:`droplab.dynamics.dropout_gd_chains` for chains whose data and start on Γ are those of the seeds in
    ``owners`` (one chain per entry; the students share one architecture); ``kwargs`` go through."""
    x, y, w0 = (torch.stack([problems[s][i] for s in owners]) for i in (0, 1, 3))
    return dropout_gd_chains(problems[owners[0]][2], x, y, w0, **kwargs)
