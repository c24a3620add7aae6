"""The dense Hessian of the loss in a parameter block: exact, Kronecker-factored, or its mean over masks.

For a linear layer's weight (and bias) block the exact Hessian has Kronecker structure: with a_i the
layer's input and H_i = ∂²L/∂z_i² the Hessian of the loss in the layer's output z_i = W a_i + b,
``∂²L/∂W∂W = Σ_i (a_i a_iᵀ) ⊗ H_i`` (exact: z is affine in W, every downstream second-order effect
is inside H_i). The H_i come from m batched Hessian-vector products in z, and the sum is one
(m², n) × (n, (k+1)²) matrix product. This path assumes each example's loss depends only on its
own z_i (no batch-norm statistics in training mode, no mask shared across the batch). The analysed
loss (``"eval"``, ``"expected"``, ``"fixed-mask"``) is explained in :mod:`droplab.landscape.blocks`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor, nn
from torch.func import grad, jacrev, vjp, vmap

from droplab._checks import check_choice, check_data
from droplab._hooks import record_inputs, record_outputs
from droplab._params import MAX_DENSE_ENTRIES, LossFn, dense_block, flatten_block, linear_block_module
from droplab.landscape.blocks import BlockHessian, chunks, mean_and_stderr, slice_masks
from droplab.nn.modes import Masks, block_loss, forward_with
from droplab.nn.noise_space import loss_masks

METHODS = ("auto", "kron", "jacrev")


def per_example_hessians(f: Callable[[Tensor], Tensor], z: Tensor) -> Tensor:
    """Per-example Hessians ∂²f/∂z_i² (n, m, m) of a scalar f of z (n, m) that is a sum over rows.

    m batched Hessian-vector products with the probe e_k on every row: row i of H·(e_k, …, e_k) is
    Σ_j H_ij e_k = H_ii e_k, since H is block diagonal over examples.
    """
    _, pullback = vjp(grad(f), z)
    eye = torch.eye(z.shape[1], dtype=z.dtype, device=z.device)
    return vmap(lambda e: pullback(e.expand_as(z))[0])(eye).permute(1, 2, 0)


def _kron_hessian(model: nn.Module, loss_fn: LossFn, x: Tensor, y: Tensor, module: nn.Linear, with_bias: bool,
                  mask: Masks | None, weight: float) -> Tensor:
    """Σ_i (ã_i ã_iᵀ) ⊗ H_i for one chunk, ordered as [W.flatten(), b]."""
    params = {k: v.detach() for k, v in model.named_parameters()}
    with record_inputs([module]) as ins, record_outputs([module]) as outs, torch.no_grad():
        forward_with(model, params, x, mask)
    if len(ins[0]) != 1 or ins[0][0].dim() != 2:
        raise ValueError("the Kronecker path needs the linear layer called once per forward on (batch, features) "
                         "inputs; use method='jacrev'")
    a, z = ins[0][0], outs[0][0]
    state: dict[str, Tensor] = {}
    hook = module.register_forward_hook(lambda mod, args, out: out + state["delta"])
    try:
        def f_of_delta(delta: Tensor) -> Tensor:
            state["delta"] = delta
            return loss_fn(forward_with(model, params, x, mask), y) * weight

        h = per_example_hessians(f_of_delta, torch.zeros_like(z))
    finally:
        hook.remove()
    n, m = z.shape
    if with_bias:
        a = torch.cat([a, torch.ones(n, 1, dtype=a.dtype, device=a.device)], 1)
    k = a.shape[1]
    big = h.reshape(n, m * m).T @ (a.unsqueeze(2) * a.unsqueeze(1)).reshape(n, k * k)  # (m², k²)
    full = big.reshape(m, m, k, k).permute(0, 2, 1, 3).reshape(m * k, m * k)  # index p·k + c
    if not with_bias:
        return full
    kin = k - 1
    order = torch.cat([(torch.arange(m).unsqueeze(1) * k + torch.arange(kin)).reshape(-1), torch.arange(m) * k + kin])
    return full[order][:, order]


def block_hessian(model: nn.Module, loss_fn: LossFn, data: tuple[Tensor, Tensor],
                  params: Sequence[str | Tensor] | None = None, *, loss: str = "eval", masks: Masks | None = None,
                  n_masks: int = 16, generator: torch.Generator | None = None, method: str = "auto",
                  chunk: int | None = None, jacrev_chunk: int | None = 64,
                  max_entries: int = MAX_DENSE_ENTRIES) -> BlockHessian:
    """The exact Hessian of the loss with respect to a parameter block (ZZX Definition 4; Theorem 1's LHS).

    ``method="kron"`` uses the Kronecker structure of a linear layer's weight (+ bias) block (module
    docstring); ``"jacrev"`` is ``torch.func.jacrev(grad(L))`` for any block; ``"auto"`` takes the
    Kronecker path when the block is one linear layer's ``[weight]`` or ``[weight, bias]``. ``chunk``
    splits the examples (``loss_fn`` must then be a mean over examples). With ``loss="expected"`` the
    result is the mean of ``n_masks`` fixed-mask Hessians and ``stderr`` the entrywise standard error.
    """
    check_choice("method", method, METHODS)
    names, dim = dense_block(model, params, max_entries)
    x, y = check_data("data", data)
    n = len(x)
    pieces = chunks(n, chunk)
    linear = linear_block_module(model, names)
    if method == "kron" and linear is None:
        raise ValueError(f"method 'kron' needs the block to be one nn.Linear's [weight] or [weight, bias], got {names}")
    use_kron = linear is not None and method != "jacrev"
    mats = []
    for mask in loss_masks(model, x, loss, masks, n_masks, generator):
        total = torch.zeros(dim, dim, dtype=x.dtype, device=x.device)
        for lo, hi in pieces:
            w = (hi - lo) / n
            sub = slice_masks(mask, lo, hi)
            if use_kron:
                total += _kron_hessian(model, loss_fn, x[lo:hi], y[lo:hi], linear[0], linear[1], sub, w)
            else:
                f = block_loss(model, loss_fn, x[lo:hi], y[lo:hi], names, sub, w)
                total += jacrev(grad(f), chunk_size=jacrev_chunk)(flatten_block(model, names))
        mats.append(0.5 * (total + total.T))
    mean, stderr = mean_and_stderr(mats)
    return BlockHessian(mean, tuple(names), loss, len(mats), stderr, "kron" if use_kron else "jacrev")


def expected_hessian(model: nn.Module, loss_fn: LossFn, data: tuple[Tensor, Tensor],
                     params: Sequence[str | Tensor] | None = None, *, n_masks: int = 64,
                     generator: torch.Generator | None = None, **kwargs) -> BlockHessian:
    """E_η ∇²R^drop(θ, η) (ZZX Theorem 1's left-hand side) by Monte Carlo over masks, with standard errors."""
    return block_hessian(model, loss_fn, data, params, loss="expected", n_masks=n_masks, generator=generator,
                         **kwargs)
