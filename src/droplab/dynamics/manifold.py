"""Gaussian-dropout GD near the zero-loss manifold Γ and the limiting flow (Shalova–Peletier–Schlichting).

SPS Theorem 1: Gaussian-dropout gradient descent ``w_{k+1} = w_k − α ∇_w L̂(w_k, η_k)``,
η_{k,i} ~ N(0, σ²), read in rescaled time ``t = k α σ²``, converges as α, σ, α/σ² → 0 to

.. math:: \\dot w = -\\tfrac12 P_\\Gamma(w) \\nabla_w \\Delta_\\eta \\hat L(w, 0), \\qquad w(t) \\in \\Gamma,

P_Γ the orthogonal projector onto the tangent space of Γ = {L = 0}. For regression with residuals
``r(w) = f(X; w) − Y`` the tangent space is the null space of the residual Jacobian J, so
``P_Γ = I − J^T (J J^T)^+ J``; the flow is integrated by explicit Euler steps each followed by a
retraction (Gauss–Newton steps ``w ← w − J^T (J J^T)^+ r``) that keeps the path on Γ.

The model's droplab noise layers mark where the filters ``1 + η`` act (``z^{k+1} = W^{k+1}(y^k ⊙
(1 + η^k)) + b``); the dynamics draws η itself (independent per example and unit, variance σ²) and
replays it, so any droplab noise layer can stand in the model. The loss is ``mse_loss`` (mean).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch.func import functional_call, jacrev

from droplab._checks import check_int, check_positive
from droplab._params import flatten_block, parameter_block, unflatten_block
from droplab.nn import mc_mode, replay_masks
from droplab.nn.laws import ou_update
from droplab.nn.noise_space import noise_space
from droplab.regularization import noise_laplacian, noise_laplacian_grad

MSE = nn.functional.mse_loss


class FlatModel:
    """A model's parameters as one flat vector ``w``, with the ensemble residuals ``r(w)`` on data ``(x, y)``.

    Works on a private copy of the model, so the caller's model is never changed.
    """

    def __init__(self, model: nn.Module, x: Tensor, y: Tensor) -> None:
        self.model = copy.deepcopy(model)
        self.x, self.y = x, y
        self.names = parameter_block(self.model)
        self.space = noise_space(self.model, x)

    def flat(self) -> Tensor:
        return flatten_block(self.model, self.names)

    def unflatten(self, w: Tensor) -> dict[str, Tensor]:
        return unflatten_block(self.model, self.names, w)

    def output(self, w: Tensor, noise: dict[str, Tensor] | None = None) -> Tensor:
        """``f(X; w)`` with noise ``1 + η`` replayed (``noise``) or at its mean (η = 0)."""
        masks = noise if noise is not None else dict(zip(self.space.names, self.space.means))
        with mc_mode(self.model), replay_masks(self.model, masks):
            return functional_call(self.model, self.unflatten(w), (self.x,))

    def residuals(self, w: Tensor) -> Tensor:
        return (self.output(w) - self.y).reshape(-1)

    def loss(self, w: Tensor) -> float:
        return float(MSE(self.output(w).detach(), self.y))

    def load(self, w: Tensor) -> nn.Module:
        """The private model with parameters ``w`` (for :func:`droplab.regularization.noise_laplacian`)."""
        torch.nn.utils.vector_to_parameters(w.detach(), self.model.parameters())
        return self.model

    def laplacian(self, w: Tensor) -> float:
        """Δ_η L̂(w, 0) under ``mse_loss`` (the regularizer without ½σ²)."""
        return float(noise_laplacian(self.load(w), MSE, self.x, self.y))

    def laplacian_grad(self, w: Tensor) -> Tensor:
        g = noise_laplacian_grad(self.load(w), MSE, self.x, self.y)
        return torch.cat([g[k].reshape(-1) for k in self.names])

    def jacobian(self, w: Tensor) -> Tensor:
        """∂r/∂w, shape (N·outputs, P)."""
        return jacrev(self.residuals)(w).detach()


def retract(flat: FlatModel, w: Tensor, *, steps: int = 10, tol: float = 1e-24) -> Tensor:
    """Gauss–Newton steps ``w ← w − J^T (J J^T)^+ r`` onto Γ (minimum-norm correction), until ‖r‖² ≤ tol."""
    for _ in range(steps):
        r = flat.residuals(w).detach()
        if float(r @ r) <= tol:
            break
        j = flat.jacobian(w)
        w = w - j.T @ torch.linalg.lstsq(j @ j.T, r.unsqueeze(1), driver="gelsd").solution.squeeze(1)
    return w


def tangent_projector(flat: FlatModel, w: Tensor) -> Tensor:
    """P_Γ(w) = I − J^T (J J^T)^+ J: orthogonal projector onto the null space of the residual Jacobian."""
    j = flat.jacobian(w)
    return torch.eye(j.shape[1], dtype=j.dtype, device=j.device) - j.T @ torch.linalg.pinv(j @ j.T) @ j


def reach_zero_loss(model: nn.Module, x: Tensor, y: Tensor, *, lr: float = 0.05, max_steps: int = 20000,
                    tol: float = 1e-6, check_every: int = 100) -> tuple[Tensor, int]:
    """Full-batch GD (no noise, ensemble net) on ``mse_loss`` until the loss ≤ ``tol``; returns (w, steps).

    Then a Gauss–Newton retraction puts ``w`` on Γ to machine precision. Raises a ``ValueError`` with
    the reached loss when GD does not get below ``tol`` within ``max_steps`` (the model is then not
    near a zero-loss manifold: make it wider or use fewer points).
    """
    check_positive("lr", lr)
    check_positive("tol", tol)
    check_int("max_steps", max_steps, minimum=1)
    flat = FlatModel(model, x, y)
    w = flat.flat().requires_grad_(True)
    steps, loss = 0, float("inf")
    while steps < max_steps:
        for _ in range(min(check_every, max_steps - steps)):
            (g,) = torch.autograd.grad(MSE(flat.output(w), y), w)
            with torch.no_grad():
                w -= lr * g
            steps += 1
        loss = flat.loss(w.detach())
        if loss <= tol:
            w_gamma = retract(flat, w.detach())
            if flat.loss(w_gamma) > min(tol, 1e-16):
                raise ValueError(f"the Gauss–Newton retraction from GD's loss {loss:.3g} reached loss "
                                 f"{flat.loss(w_gamma):.3g}, not Γ; lower tol")
            return w_gamma, steps
    raise ValueError(f"GD did not reach the zero-loss manifold: loss {loss:.3g} > tol {tol:g} after {steps} "
                     "steps; widen the student, use fewer points, or raise max_steps/lr")


@dataclass(frozen=True)
class Trajectory:
    """A path in rescaled time: ``times`` (T,), flat ``params`` (T, P), Δ_η L̂ ``laplacian``, ``loss`` (T,)."""

    times: Tensor
    params: Tensor
    laplacian: Tensor
    loss: Tensor


def record_times(t_end: float, n_records: int) -> list[float]:
    """The rescaled times at which trajectories are recorded: ``n_records`` points evenly in [0, t_end]."""
    return [t_end * j / (n_records - 1) for j in range(n_records)]


def _record(flat: FlatModel, times: list[float], ws: list[Tensor]) -> Trajectory:
    params = torch.stack(ws)
    lap = torch.tensor([flat.laplacian(w) for w in ws], dtype=params.dtype, device=params.device)
    loss = torch.tensor([flat.loss(w) for w in ws], dtype=params.dtype, device=params.device)
    return Trajectory(torch.tensor(times, dtype=params.dtype, device=params.device), params, lap, loss)


def gaussian_dropout_gd(model: nn.Module, x: Tensor, y: Tensor, w0: Tensor, *, alpha: float, sigma: float,
                        t_end: float, n_records: int = 21, correlation_steps: float = 0.0,
                        generator: torch.Generator | None = None) -> Trajectory:
    """Gaussian-dropout GD from ``w0``: ``w ← w − α ∇_w L̂(w, η)``, η ~ N(0, σ²) per example and unit.

    ``correlation_steps`` τ > 0 makes η an Ornstein–Uhlenbeck process in the step index with
    per-step correlation e^{−1/τ} and the same stationary N(0, σ²) marginal, advanced by
    :func:`droplab.nn.laws.ou_update` as ``OUDropout`` does (:mod:`droplab.dynamics.ou`).

    Runs ``⌈t_end/(α σ²)⌉`` steps and records ``n_records`` points evenly spaced in rescaled time
    ``t = k α σ²`` (SPS Theorem 1's ``w_n(t) = w_{⌊t/(α_n σ_n²)⌋}``).
    """
    check_positive("alpha", alpha)
    check_positive("sigma", sigma)
    check_positive("t_end", t_end)
    check_int("n_records", n_records, minimum=2)
    check_positive("correlation_steps", correlation_steps, allow_zero=True)
    flat = FlatModel(model, x, y)
    rate = alpha * sigma**2
    times = record_times(t_end, n_records)
    marks = {round(t / rate) for t in times}  # the step nearest each record time (within ασ²/2)
    n_steps = max(marks)
    shapes = {n: (len(x), *s[1:]) for n, s in zip(flat.space.names, flat.space.shapes)}
    w = w0.detach().clone().requires_grad_(True)
    ws = []
    eta: dict[str, Tensor | None] = dict.fromkeys(shapes)
    for k in range(n_steps + 1):
        if k in marks:
            ws.append(w.detach().clone())
        if k == n_steps:
            break
        eta = {n: ou_update(eta[n], s, sigma, correlation_steps, dtype=x.dtype, device=x.device,
                            generator=generator) for n, s in shapes.items()}
        noise = {n: 1 + e for n, e in eta.items()}
        (g,) = torch.autograd.grad(MSE(flat.output(w, noise), y), w)
        with torch.no_grad():
            w -= alpha * g
    return _record(flat, times, ws)


def regularizer_flow(model: nn.Module, x: Tensor, y: Tensor, w0: Tensor, *, t_end: float, dt: float,
                     n_records: int = 21, retraction_steps: int = 5) -> Trajectory:
    """The limiting flow ``dw/dt = −½ P_Γ(w) ∇_w Δ_η L̂(w, 0)`` on Γ (SPS Theorem 1), Euler + retraction.

    ``w0`` should lie on Γ (see :func:`reach_zero_loss`); each Euler step of size ``dt`` is followed
    by ``retraction_steps`` Gauss–Newton steps back onto Γ; ``dt`` is rounded so that records fall on steps.
    """
    check_positive("t_end", t_end)
    check_positive("dt", dt)
    check_int("n_records", n_records, minimum=2)
    flat = FlatModel(model, x, y)
    per_record = max(int(round(t_end / (n_records - 1) / dt)), 1)  # Euler steps between records
    n_steps = per_record * (n_records - 1)
    times = record_times(t_end, n_records)
    w = w0.detach().clone()
    ws = []
    for k in range(n_steps + 1):
        if k % per_record == 0:
            ws.append(w.clone())
        if k == n_steps:
            break
        drift = -0.5 * tangent_projector(flat, w) @ flat.laplacian_grad(w)
        w = retract(flat, w + (t_end / n_steps) * drift, steps=retraction_steps)
    return _record(flat, times, ws)


def path_distance(a: Trajectory, b: Trajectory) -> Tensor:
    """‖w_a(t) − w_b(t)‖ at the common record times (the two trajectories must share ``times``)."""
    if a.times.shape != b.times.shape or not torch.allclose(a.times, b.times, rtol=1e-6, atol=1e-9):
        raise ValueError("trajectories must be recorded at the same rescaled times (same t_end, n_records)")
    return (a.params - b.params).norm(dim=1)
