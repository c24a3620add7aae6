"""The block Hessian as a matrix-free operator: v ↦ Hv by autograd, a ``scipy.sparse.linalg.LinearOperator``.

Being a scipy operator, it goes straight into ``eigsh``, ``cg``, :func:`droplab.landscape.hessian_eigenpairs`
and :func:`droplab.landscape.hutchinson_trace` (the analysed loss as in :mod:`droplab.landscape.blocks`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from scipy.sparse.linalg import LinearOperator
from torch import Tensor, nn
from torch.func import grad, vjp, vmap

from droplab._checks import check_data, check_int
from droplab._params import LossFn, block_size, flatten_block, parameter_block
from droplab.landscape.blocks import chunks, slice_masks
from droplab.nn.modes import Masks, block_loss
from droplab.nn.noise_space import loss_masks


class HessianOperator(LinearOperator):
    """H of the block's loss as a ``scipy`` linear operator (float64 interface): v ↦ Hv by autograd.

    ``"expected"`` averages the HVPs of a fixed set of ``n_masks`` drawn masks (common random
    numbers: the operator is deterministic and symmetric). ``n_matvec`` counts products (vectors),
    ``n_calls`` batched calls: ``matmat`` of b columns is one batched HVP (b products) per
    ``max_batch`` columns, which bounds the memory of the vmapped backward pass (∝ max_batch × batch).
    """

    def __init__(self, model: nn.Module, loss_fn: LossFn, data: tuple[Tensor, Tensor],
                 params: Sequence[str | Tensor] | None = None, *, loss: str = "eval", masks: Masks | None = None,
                 n_masks: int = 16, generator: torch.Generator | None = None, chunk: int | None = None,
                 max_batch: int = 16) -> None:
        check_int("max_batch", max_batch, minimum=1)
        self.max_batch = max_batch
        self.names = tuple(parameter_block(model, params))
        dim = block_size(model, self.names)
        super().__init__(np.float64, (dim, dim))
        x, y = check_data("data", data)
        pieces = chunks(len(x), chunk)
        self.loss = loss
        self.theta = flatten_block(model, self.names)
        self.fns = [block_loss(model, loss_fn, x[lo:hi], y[lo:hi], self.names, slice_masks(mask, lo, hi),
                               (hi - lo) / len(x))
                    for mask in loss_masks(model, x, loss, masks, n_masks, generator)
                    for lo, hi in pieces]
        self.n_masks = len(self.fns) // len(pieces)
        self.n_matvec = 0
        self.n_calls = 0

    def hvp(self, v: Tensor) -> Tensor:
        """H v for a torch vector ``v`` of the block's dtype."""
        return self.hvp_batch(v.unsqueeze(0))[0]

    def hvp_batch(self, vs: Tensor) -> Tensor:
        """H vᵢ for the b rows of ``vs`` (b, D) in one batched product (``vmap`` over one linearization).

        Counts b products in ``n_matvec`` and one call in ``n_calls``.
        """
        out = torch.zeros_like(vs)
        for f in self.fns:
            _, pullback = vjp(grad(f), self.theta)
            out += vmap(pullback)(vs)[0] if len(vs) > 1 else pullback(vs[0])[0].unsqueeze(0)
        self.n_matvec += len(vs)
        self.n_calls += 1
        return out / self.n_masks

    def _matvec(self, v: np.ndarray) -> np.ndarray:
        return self._matmat(np.asarray(v).reshape(-1, 1)).reshape(-1)

    def _matmat(self, v: np.ndarray) -> np.ndarray:
        t = torch.as_tensor(np.asarray(v).T, dtype=self.theta.dtype, device=self.theta.device)
        out = torch.cat([self.hvp_batch(part) for part in t.split(self.max_batch)])
        return out.T.double().cpu().numpy()

    def _rmatvec(self, v: np.ndarray) -> np.ndarray:
        return self._matvec(v)


def hessian_operator(model: nn.Module, loss_fn: LossFn, data: tuple[Tensor, Tensor],
                     params: Sequence[str | Tensor] | None = None, **kwargs) -> HessianOperator:
    """The block Hessian as a :class:`HessianOperator` (keywords as :func:`block_hessian`'s loss options)."""
    return HessianOperator(model, loss_fn, data, params, **kwargs)
