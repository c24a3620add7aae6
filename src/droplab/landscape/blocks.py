"""What every curvature object of a parameter block shares: the analysed loss and its masks, chunks, results.

Zhang, Zhou & Xu 2024 (§3.5.2, Definition 4; §7; Theorem 1) need the Hessian H of the loss with
respect to one layer's parameters (the 50×50 weight and bias of the paper's FNN, D = 2,550). Which
loss is differentiated is an explicit argument, recorded in every result:

* ``"eval"``: the evaluation-mode loss (every noise layer replaced by its mean);
* ``"expected"``: the expected dropout loss E_η R^drop(θ, η), as the average over ``n_masks``
  per-example masks drawn from the layers' own laws (Monte Carlo, with the standard error of each
  entry across masks); E_η ∇²R^drop is Theorem 1's left-hand side;
* ``"fixed-mask"``: the loss at one given mask (``{layer name: noise}``, e.g. recorded with
  :func:`droplab.nn.record_masks`), a deterministic function of θ.

The parameter-block utilities themselves (naming, flattening, ``forward_with``) live in
:mod:`droplab._params`.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor

from droplab._checks import check_int
from droplab.nn.modes import Masks


def slice_masks(masks: Masks | None, lo: int, hi: int) -> Masks | None:
    """Rows ``lo:hi`` of per-example masks (a mask with batch dim 1 is shared and kept whole)."""
    if masks is None:
        return None
    return {k: (v if v.shape[0] == 1 else v[lo:hi]) for k, v in masks.items()}


def chunks(n: int, chunk: int | None) -> list[tuple[int, int]]:
    """``(lo, hi)`` bounds splitting ``n`` examples into pieces of ``chunk`` (one piece for None)."""
    if chunk is not None:
        check_int("chunk", chunk, minimum=1)
    step = n if chunk is None else chunk
    return [(i, min(i + step, n)) for i in range(0, n, step)]


def mean_and_stderr(mats: list[Tensor]) -> tuple[Tensor, Tensor | None]:
    """Entrywise mean of per-mask matrices and its standard error (None for a single matrix)."""
    stack_mean = sum(mats) / len(mats)
    if len(mats) < 2:
        return stack_mean, None
    var = sum((m - stack_mean) ** 2 for m in mats) / (len(mats) - 1)
    return stack_mean, (var / len(mats)).sqrt()


@dataclass(frozen=True)
class BlockHessian:
    """A dense block Hessian, the loss it belongs to and, for ``"expected"``, each entry's standard error."""

    matrix: Tensor
    names: tuple[str, ...]
    loss: str
    n_masks: int
    stderr: Tensor | None
    method: str
