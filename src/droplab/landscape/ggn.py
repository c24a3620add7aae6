"""The generalized Gauss–Newton matrix of a parameter block (loss semantics: :mod:`droplab.landscape.blocks`)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn
from torch.func import jacrev

from droplab._checks import check_data
from droplab._params import MAX_DENSE_ENTRIES, LossFn, dense_block, flatten_block, unflatten_block
from droplab.landscape.blocks import BlockHessian, chunks, mean_and_stderr, slice_masks
from droplab.landscape.hessian import per_example_hessians
from droplab.nn.modes import Masks, forward_with
from droplab.nn.noise_space import loss_masks


def ggn(model: nn.Module, loss_fn: LossFn, data: tuple[Tensor, Tensor], params: Sequence[str | Tensor] | None = None,
        *, loss: str = "eval", masks: Masks | None = None, n_masks: int = 16, generator: torch.Generator | None = None,
        chunk: int | None = 256, max_entries: int = MAX_DENSE_ENTRIES) -> BlockHessian:
    """The generalized Gauss–Newton matrix G = Σ_i J_iᵀ (∂²ℓ_i/∂f²) J_i of the block (J_i = ∂f(x_i)/∂θ).

    G drops the Hessian's term in ∇²f; it equals H when the outputs are affine in the block (the
    last layer's weights) and is PSD for convex losses. Model outputs must be (batch, classes).
    """
    names, dim = dense_block(model, params, max_entries)
    x, y = check_data("data", data)
    n = len(x)
    pieces = chunks(n, chunk)
    base = {k: v.detach() for k, v in model.named_parameters()}
    theta = flatten_block(model, names)
    mats = []
    for mask in loss_masks(model, x, loss, masks, n_masks, generator):
        total = torch.zeros(dim, dim, dtype=x.dtype, device=x.device)
        for lo, hi in pieces:
            sub = slice_masks(mask, lo, hi)

            def outputs(flat: Tensor, lo=lo, hi=hi, sub=sub) -> Tensor:
                return forward_with(model, {**base, **unflatten_block(model, names, flat)}, x[lo:hi], sub)

            out = outputs(theta).detach()
            if out.dim() != 2:
                raise ValueError(f"ggn needs model outputs of shape (batch, classes), got {tuple(out.shape)}")
            jac = jacrev(outputs)(theta)  # (b, C, D)
            h = per_example_hessians(lambda o, yy=y[lo:hi], w=(hi - lo) / n: loss_fn(o, yy) * w, out)  # (b, C, C)
            hj = torch.einsum("ipq,iqd->ipd", h, jac)
            total += jac.reshape(-1, dim).T @ hj.reshape(-1, dim)
        mats.append(0.5 * (total + total.T))
    mean, stderr = mean_and_stderr(mats)
    return BlockHessian(mean, tuple(names), loss, len(mats), stderr, "ggn")
