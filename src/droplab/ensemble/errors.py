"""Errors of an ensemble's combined output against the mean error of its members (Baldi & Sadowski 2014, §4.3, §6).

An ensemble of ``m`` members with probabilities ``P_1..P_m`` produces outputs ``O_1..O_m``; it can
be combined by the expectation E, the weighted geometric mean WGM = Π O_i^{P_i} or the normalized
one, NWGM. For one output (logistic, §4.1) NWGM = G/(G + G′) (eq. 37); for a set of normalized
exponential (softmax) outputs the normalization runs over the classes (eq. 44), and the NWGM is
the softmax of the expected linear sums, ``NWGM(O_i) = e^{E S_i} / Σ_l e^{E S_l}`` (eq. 47) — for any
distribution over sub-networks, since the normalizer of each member cancels.

§6 compares ``Error(E)``, ``Error(WGM)``, ``Error(NWGM)`` with the expected error ``E(Error)`` for
the two error functions of eq. 55. What holds exactly:

* eq. 56, ``Error(E) ≤ E(Error)``: Jensen, for both errors (each is convex in O);
* eqs. 57–58 for the relative entropy: ``−t log G − (1−t) log(1−G)`` and ``t·softplus(−x) +
  (1−t)·softplus(x)`` are convex in ``x = log O`` and in the logit, so Jensen applies (multi-class:
  ``−log G_c = E(−log O_c)`` exactly, and the normalized mean only divides by ``Σ_l G_l ≤ 1``).

The paper proves eqs. 57–58 for *any* convex error through "if f is convex and g is increasing,
then f(g) is convex", which is false (f must also be non-decreasing, or g affine): for the squared
error ``½(t − e^x)²`` has second derivative ``e^x(2e^x − t) < 0`` when ``O < t/2``. With ``t = 1``,
``O = (0.01, 0.49)`` and equal weights, ``Error(WGM) = 0.432`` and ``Error(NWGM) = 0.414`` exceed
``E(Error) = 0.310``. Whether such cases occur on real nets is an empirical question.

>>> o = torch.tensor([0.01, 0.49], dtype=torch.float64)
>>> e = ensemble_errors(o, torch.tensor(1.0, dtype=torch.float64), loss="squared")
>>> [round(float(v), 3) for v in (e.of_expectation, e.of_wgm, e.of_nwgm, e.expected)]
[0.281, 0.432, 0.414, 0.31]
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from droplab._checks import check_choice, check_unit_interval_values
from droplab.ensemble.means import _weights, expectation, log_geometric_mean

LOSSES = ("relative-entropy", "squared")


def normalized_exponential_nwgm(values: Tensor, weights: Tensor | None = None) -> Tensor:
    """NWGM of a set of normalized exponential (softmax) outputs, normalized over the classes (eq. 44).

    ``values`` is ``(..., k, m)``: k class probabilities of each of m members (members last, as in
    :mod:`droplab.ensemble.means`); ``weights`` the members' probabilities, ``(m,)`` or ``(..., m)``.
    Returns ``(..., k)``: ``G_i / Σ_l G_l`` with ``G_i = Π_m O_im^{P_m}``, equal to
    ``softmax(E(S))`` when ``O = softmax(S)`` (eq. 47).
    """
    check_unit_interval_values("values", values)
    if values.dim() < 2:
        raise ValueError(f"values must be (..., k, m): k classes of m members, got shape {tuple(values.shape)}")
    w = _weights(values, None if weights is None else torch.as_tensor(weights, dtype=values.dtype,
                                                                        device=values.device).unsqueeze(-2))
    return torch.softmax(log_geometric_mean(values, w), dim=-1)


@dataclass(frozen=True)
class EnsembleErrors:
    """``Error(E)``, ``Error(WGM)``, ``Error(NWGM)`` and ``E(Error)`` (eqs. 56–58), each of the batch shape."""

    of_expectation: Tensor
    of_wgm: Tensor
    of_nwgm: Tensor
    expected: Tensor


def _error(o: Tensor, t: Tensor, loss: str) -> Tensor:
    """Eq. 55 for one output: ``½(t − O)²`` or ``−t log O − (1 − t) log(1 − O)``."""
    if loss == "squared":
        return 0.5 * (t - o) ** 2
    return -torch.xlogy(t, o) - torch.xlogy(1 - t, 1 - o)


def ensemble_errors(values: Tensor, target: Tensor, weights: Tensor | None = None,
                    loss: str = "relative-entropy") -> EnsembleErrors:
    """Eqs. 56–58 for one output: ``values`` ``(..., m)`` in [0, 1], ``target`` ``t`` in [0, 1] of shape ``(...)``.

    WGM is ``G`` (eq. 35) and NWGM ``G/(G + G′)`` (eq. 37).
    """
    check_choice("loss", loss, LOSSES)
    check_unit_interval_values("values", values)
    target = torch.as_tensor(target, dtype=values.dtype, device=values.device)
    check_unit_interval_values("target", target)
    w = _weights(values, weights)
    log_g, log_gc = log_geometric_mean(values, w), log_geometric_mean(1 - values, w)
    t = target.expand(values.shape[:-1])
    return EnsembleErrors(of_expectation=_error(expectation(values, w), t, loss), of_wgm=_error(log_g.exp(), t, loss),
                          of_nwgm=_error(torch.sigmoid(log_g - log_gc), t, loss),
                          expected=(w * _error(values, t.unsqueeze(-1), loss)).sum(-1))


def _class_error(o: Tensor, target: Tensor, loss: str) -> Tensor:
    """Multi-class eq. 55 over the class dim -1 of ``o``: ``−log O_c`` or ``½ Σ_k (t_k − O_k)²`` (one-hot t)."""
    if loss == "relative-entropy":
        return -torch.log(o.gather(-1, target.unsqueeze(-1)).squeeze(-1))
    onehot = torch.nn.functional.one_hot(target, o.shape[-1]).to(o.dtype)
    return 0.5 * ((onehot - o) ** 2).sum(-1)


def softmax_ensemble_errors(values: Tensor, target: Tensor, weights: Tensor | None = None,
                            loss: str = "relative-entropy") -> EnsembleErrors:
    """Eqs. 56–58 for normalized exponential outputs: ``values`` ``(..., k, m)``, ``target`` class indices ``(...)``.

    WGM is the per-class geometric mean ``G_i`` (unnormalized, ``Σ_i G_i ≤ 1``); NWGM is eq. 44.
    """
    check_choice("loss", loss, LOSSES)
    check_unit_interval_values("values", values)
    if values.dim() < 2:
        raise ValueError(f"values must be (..., k, m): k classes of m members, got shape {tuple(values.shape)}")
    target = torch.as_tensor(target, device=values.device)
    k = values.shape[-2]
    if target.shape != values.shape[:-2] or target.dtype != torch.long or (target < 0).any() or (target >= k).any():
        raise ValueError(f"target must be a long tensor of class indices in [0, {k}) of shape "
                         f"{tuple(values.shape[:-2])}, got {target.dtype} {tuple(target.shape)}")
    wm = None if weights is None else torch.as_tensor(weights, dtype=values.dtype, device=values.device)
    w = _weights(values, None if wm is None else wm.unsqueeze(-2))
    log_g = log_geometric_mean(values, w)
    members = values.movedim(-1, 0)  # (m, ..., k)
    per_member = _class_error(members, target.expand(members.shape[:-1]), loss).movedim(0, -1)  # (..., m)
    return EnsembleErrors(of_expectation=_class_error(expectation(values, w), target, loss),
                          of_wgm=_class_error(log_g.exp(), target, loss),
                          of_nwgm=_class_error(torch.softmax(log_g, -1), target, loss),
                          expected=(w[..., 0, :] * per_member).sum(-1))
