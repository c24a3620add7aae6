"""Parameter blocks: one home for naming, flattening and unflattening a block of a model's parameters.

A *block* is an ordered list of parameter names of a model (ZZX §3.5.2 analyse one layer's weight
and bias). The analyses work on a block as one flat vector θ_B: :func:`flatten_block` reads it,
:func:`unflatten_block` splits a flat vector (or a batch of them) back into named tensors
(:func:`droplab.nn.modes.forward_with` / :func:`~droplab.nn.modes.block_loss` run the model with a
block replaced, in the noise modes, which live with the noise layers).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor, nn

LossFn = Callable[[Tensor, Tensor], Tensor]
"""``loss_fn(outputs, targets)`` returning a scalar mean (or sum) over examples."""

MAX_DENSE_ENTRIES = 50_000_000  # a D×D float32 matrix of 200 MB: D ≈ 7,000


def parameter_block(model: nn.Module, params: Sequence[str | Tensor] | None = None) -> list[str]:
    """Names of the block's parameters in the given order (default: every parameter of ``model``).

    ``params`` holds parameter names or the parameter tensors themselves; anything else raises.
    """
    named = dict(model.named_parameters())
    if params is None:
        return list(named)
    by_id = {id(p): k for k, p in named.items()}
    names = []
    for p in params:
        name = p if isinstance(p, str) else by_id.get(id(p))
        if name not in named:
            shown = p if isinstance(p, str) else f"a tensor of shape {tuple(p.shape)}"
            raise ValueError(f"params must be parameters of model (names from model.named_parameters() "
                             f"{list(named)[:6]}...), got {shown}")
        names.append(name)
    if not names or len(set(names)) != len(names):
        raise ValueError(f"params must list distinct parameters of model, got {names}")
    return names


def layer_block(model: nn.Module, kind: type[nn.Module], index: int = 0, *, bias: bool = True) -> list[str]:
    """Parameter names of the ``index``-th submodule of type ``kind`` in ``model.named_modules()`` order.

    ZZX App. A's blocks by name rather than by position in a Sequential: the FNN's hidden-to-hidden
    layer is ``layer_block(net, nn.Linear, 1)``, ResNet-20's first convolution of its first block
    ``layer_block(net, nn.Conv2d, 1, bias=False)``. ``bias=False`` leaves the bias out.
    """
    found = [(name, m) for name, m in model.named_modules() if isinstance(m, kind)]
    if not -len(found) <= index < len(found):
        raise ValueError(f"index must address one of the model's {len(found)} {kind.__name__} modules, got {index}")
    prefix, module = found[index]
    names = [f"{prefix}.{k}" if prefix else k for k, _ in module.named_parameters(recurse=False)
             if bias or k != "bias"]
    if not names:
        raise ValueError(f"the {kind.__name__} module {prefix!r} has no parameters")
    return names


def block_size(model: nn.Module, names: Sequence[str]) -> int:
    """Number of scalar parameters in the block."""
    named = dict(model.named_parameters())
    return sum(named[k].numel() for k in names)


def check_dense_size(dim: int, max_entries: int = MAX_DENSE_ENTRIES) -> None:
    """Refuse a dense D×D matrix beyond ``max_entries`` entries, suggesting the Lanczos path."""
    if dim * dim > max_entries:
        raise ValueError(f"a dense Hessian of a block of D = {dim} parameters needs D² = {dim * dim:,} entries "
                         f"({dim * dim * 4 / 1e9:.1f} GB in float32), above max_entries = {max_entries:,}; use "
                         "hessian_operator with hessian_eigenpairs / hutchinson_trace, or a smaller block")


def dense_block(model: nn.Module, params: Sequence[str | Tensor] | None = None,
                max_entries: int = MAX_DENSE_ENTRIES) -> tuple[list[str], int]:
    """The block's names and its size D, for a dense D×D result (refused beyond ``max_entries``)."""
    names = parameter_block(model, params)
    dim = block_size(model, names)
    check_dense_size(dim, max_entries)
    return names, dim


def flatten_block(model: nn.Module, names: Sequence[str]) -> Tensor:
    """The block's current values as one flat vector (detached)."""
    named = dict(model.named_parameters())
    return torch.cat([named[k].detach().reshape(-1) for k in names])


def unflatten_block(model: nn.Module, names: Sequence[str], flat: Tensor) -> dict[str, Tensor]:
    """Split ``flat`` (..., D) into the block's named tensors (..., *shape): the inverse of :func:`flatten_block`.

    Leading dimensions are kept, so a batch of flat vectors (points, samples) unflattens at once.
    """
    named = dict(model.named_parameters())
    sizes = [named[k].numel() for k in names]
    if flat.shape[-1] != sum(sizes):
        raise ValueError(f"flat must have last dimension {sum(sizes)} (the block's size), got shape "
                         f"{tuple(flat.shape)}")
    lead = flat.shape[:-1]
    return {k: v.reshape(*lead, *named[k].shape) for k, v in zip(names, torch.split(flat, sizes, dim=-1))}


def linear_block_module(model: nn.Module, names: Sequence[str]) -> tuple[nn.Linear, bool] | None:
    """The linear layer whose weight (and bias) the block is, in a supported order, else None."""
    for prefix, module in model.named_modules():
        if isinstance(module, nn.Linear):
            w = f"{prefix}.weight" if prefix else "weight"
            b = f"{prefix}.bias" if prefix else "bias"
            if list(names) == [w]:
                return module, False
            if list(names) == [w, b] and module.bias is not None:
                return module, True
    return None
