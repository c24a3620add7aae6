"""Variance and covariance estimates from the ensemble network alone (Baldi & Sadowski 2014, §9.6).

W is a unit's activity in the deterministic ensemble network (evaluation mode, eq. 98). The
paper estimates ``Var(O) ≈ W(1 − W)`` or ``≈ 0`` (eqs. 117–118, rough upper and lower bounds),
``E(O_i O_j) ≈ W_i W_j`` for pairs that are not directly connected (eq. 119), and for a unit j
feeding unit i, ``E(O_i O_j) ≈ W_ij W_j`` where ``W_ij`` is unit i's ensemble activity with unit j
removed from its inputs (eqs. 121, 124). §9.5's induction splits W's error ε = E − W of a layer into
the layer's own NWGM error α = E − NWGM and the error β = NWGM − W propagated from the layer below
(eqs. 109–114); :func:`propagated_error` is eq. 112's first-order prediction of β, and
:func:`logistic_derivative_mean` gives E(σ′(S)) from the moments of O, to compare with σ′(E(S))
(eq. 220, Fig. 9.15).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from droplab._hooks import record_inputs, record_outputs
from droplab.nn.modes import evaluation


def variance_estimate_upper(w: Tensor) -> Tensor:
    """``Var(O) ≈ W(1 − W)``, i.e. ``E(O²) ≈ W`` (eq. 117): a rough upper bound."""
    return w * (1 - w)


def variance_estimate_zero(w: Tensor) -> Tensor:
    """``Var(O) ≈ 0``, i.e. ``E(O²) ≈ W²`` (eq. 118): a rough lower bound."""
    return torch.zeros_like(w)


def product_estimate(w_i: Tensor, w_j: Tensor) -> Tensor:
    """``E(O_i O_j) ≈ W_i W_j`` (eq. 119): the independence approximation."""
    return w_i * w_j


def connected_product_estimate(model: nn.Module, x: Tensor, source: str, linear: str, target: str,
                               pairs: Tensor) -> dict[str, Tensor]:
    """``E(O_i O_j) ≈ W_ij W_j`` for unit j of ``source`` feeding unit i of ``target`` (eqs. 121, 124).

    ``linear`` is the ``nn.Linear`` between them and ``target`` the elementwise activation applied
    to its output (so ``O_i = target(U_i)``); ``source``'s output reaches ``linear`` through
    noise layers only (so its ensemble input is ``a_j ∝ W_j``). ``pairs`` is ``(P, 2)`` of
    ``(j, i)`` unit indices. ``W_ij = target(U_i − w_ij a_j)`` removes unit j's contribution from
    unit i's ensemble pre-activation exactly (eq. 121; eq. 122 is its first-order expansion).
    Returns ``{"corrected": W_ij W_j, "independent": W_i W_j}``, each ``(N, P)``.
    """
    modules = dict(model.named_modules())
    for arg, name in (("source", source), ("linear", linear), ("target", target)):
        if name not in modules:
            raise ValueError(f"{arg} {name!r} is not a module of the model")
    lin = modules[linear]
    if not isinstance(lin, nn.Linear):
        raise ValueError(f"linear {linear!r} must name an nn.Linear, got a {type(lin).__name__}")
    pairs = torch.as_tensor(pairs, dtype=torch.long)
    if pairs.dim() != 2 or pairs.shape[1] != 2:
        raise ValueError(f"pairs must be a (P, 2) tensor of (j, i) unit indices, got shape {tuple(pairs.shape)}")
    with record_outputs({"w_j": modules[source], "u": lin, "w_i": modules[target]}) as outs, \
            record_inputs({"a": lin}) as ins, evaluation(model), torch.no_grad():
        model(x)
    rec = {name: calls[-1] for name, calls in {**outs, **ins}.items()}
    j, i = pairs[:, 0], pairs[:, 1]
    with evaluation(model), torch.no_grad():
        w_ij = modules[target](rec["u"][:, i] - lin.weight[i, j] * rec["a"][:, j])
    w_j = rec["w_j"][:, j]
    return {"corrected": w_ij * w_j, "independent": rec["w_i"][:, i] * w_j}


def propagated_error(weight: Tensor, keep: float, eps_below: Tensor, nwgm: Tensor) -> Tensor:
    """Eq. 112: ``β_i ≈ σ′(E(S_i)) Σ_j w_ij p_j ε_j``, the part of unit i's error ``NWGM_i − W_i`` that
    the errors ``ε_j = E(O_j) − W_j`` of the layer below propagate through ``weight`` ``(d_out, d_in)``
    kept with probability ``keep``; for a standard logistic unit ``NWGM = σ(E(S))`` (eq. 104), so
    ``σ′(E(S)) = NWGM(1 − NWGM)``. ``eps_below`` is ``(N, d_in)``, ``nwgm`` ``(N, d_out)``. ``keep`` is the
    paper's p (unscaled dropout); under inverted dropout (kept units × 1/p, droplab's default) the
    trained weight already is the paper's p·w: pass ``keep=1``.
    """
    return nwgm * (1 - nwgm) * ((keep * eps_below) @ weight.to(eps_below.dtype).T)


def logistic_derivative_mean(mean: Tensor, variance: Tensor) -> Tensor:
    """``E(σ′(S)) = E(O(1 − O)) = E(O) − E(O)² − Var(O)`` for a standard logistic unit ``O = σ(S)``
    (``variance`` the population variance of O); eq. 220 approximates it by ``σ′(E(S))``.
    """
    return mean - mean ** 2 - variance
