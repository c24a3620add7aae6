"""Many Gaussian-dropout GD chains at once on a ReLU MLP, by hand-written backpropagation (SPS Theorem 1).

:func:`gaussian_dropout_gd` runs one chain through ``functional_call`` and autograd; a test of Theorem 1
needs chains of 10⁵–10⁶ steps for several (α, σ) and seeds, where per-step overhead dominates. This
module runs C chains in lockstep with a few batched matrix products per step:

.. math::

    u^k = y^k \\odot (1 + \\eta^k),\\quad z^{k+1} = W^{k+1} u^k + b^{k+1},\\quad
    \\nabla_{W^{k+1}} L = \\delta^{k+1} (u^k)^T,\\quad
    \\delta^{k} = \\big((W^{k+1})^T \\delta^{k+1}\\big) \\odot (1 + \\eta^k) \\odot \\mathbb 1[z^k > 0],

with ``δ^n = 2(f − t)/(N m)`` (``mse_loss``, mean over N examples and m outputs). Each chain has its own
step α_c, noise σ_c, data and start; the draws are η ~ N(0, σ_c²) per example and unit (or the OU
recurrence of :func:`droplab.nn.functional.ou_advance`), in the order :func:`gaussian_dropout_gd` draws
them, so one chain reproduces it exactly (tested).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from droplab._checks import check_int, check_positive
from droplab.dynamics.manifold import record_times
from droplab.nn import NoiseLayer
from droplab.nn.laws import ou_advance, ou_rho

__all__ = ["dropout_gd_chains"]


def _mlp_plan(model: nn.Module) -> list[str]:
    """The model as a list of ``"linear" | "relu" | "noise"``; a one-line error for anything else."""
    seq = model.net if isinstance(getattr(model, "net", None), nn.Sequential) else model
    if not isinstance(seq, nn.Sequential):
        raise ValueError(f"model must be an nn.Sequential (or droplab FNN) of Linear, ReLU and droplab noise "
                         f"layers, got {type(model).__name__}")
    plan = []
    for i, m in enumerate(seq):
        if isinstance(m, nn.Linear) and m.bias is not None:
            plan.append("linear")
        elif isinstance(m, nn.ReLU):
            plan.append("relu")
        elif isinstance(m, NoiseLayer):
            plan.append("noise")
        elif not isinstance(m, (nn.Identity, nn.Flatten)):
            raise ValueError(f"model layer {i} is {type(m).__name__}; dropout_gd_chains allows Linear (with "
                             "bias), ReLU, Identity, Flatten and droplab noise layers")
    if "noise" not in plan:
        raise ValueError("model has no droplab noise layer; the filters 1 + η sit at the noise layers")
    return plan


def _per_chain(name: str, value: float | Sequence[float], n_chains: int, dtype: torch.dtype) -> Tensor:
    v = torch.as_tensor(value, dtype=dtype).reshape(-1)
    if v.numel() == 1:
        v = v.expand(n_chains)
    if v.numel() != n_chains:
        raise ValueError(f"{name} must be one number or one per chain ({n_chains}), got {v.numel()}")
    for i, a in enumerate(v.tolist()):
        check_positive(f"{name}[{i}]", a)
    return v


def dropout_gd_chains(model: nn.Module, x: Tensor, y: Tensor, w0: Tensor, *, alpha: float | Sequence[float],
                      sigma: float | Sequence[float], t_end: float, n_records: int = 21,
                      correlation_steps: float = 0.0, generator: torch.Generator | None = None) -> Tensor:
    """C Gaussian-dropout GD chains ``w ← w − α_c ∇_w L̂(w, η)`` from ``w0`` (C, P), recorded in rescaled time.

    ``x`` is (N, d) or per chain (C, N, d), ``y`` (N, m) or (C, N, m); ``w0`` holds flat parameter vectors in
    the model's parameter order (as :class:`droplab.dynamics.FlatModel`). Chain c runs
    ``round(t_end/(α_c σ_c²))`` steps and is recorded at the ``n_records`` times of :func:`record_times`
    (the nearest step, as :func:`gaussian_dropout_gd`); the chains advance together and a finished chain
    stays put. ``correlation_steps`` τ > 0 makes η an OU process in the step index (ρ = e^{−1/τ}).
    Returns the recorded parameters, shape (C, n_records, P).
    """
    plan = _mlp_plan(model)
    if w0.dim() != 2:
        raise ValueError(f"w0 must be (chains, parameters), got shape {tuple(w0.shape)}")
    n_chains, dtype = w0.shape[0], w0.dtype
    alphas = _per_chain("alpha", alpha, n_chains, dtype)
    sigmas = _per_chain("sigma", sigma, n_chains, dtype)
    check_positive("t_end", t_end)
    check_int("n_records", n_records, minimum=2)
    rho = ou_rho(correlation_steps)
    x = (x if x.dim() == 3 else x.unsqueeze(0)).to(dtype).flatten(2)
    y = (y if y.dim() == 3 else y.unsqueeze(0)).to(dtype)
    linears = [m for m in (model.net if isinstance(getattr(model, "net", None), nn.Sequential) else model)
               if isinstance(m, nn.Linear)]
    shapes = [s for m in linears for s in ((m.out_features, m.in_features), (1, m.out_features))]
    sizes = [a * b for a, b in shapes]
    if sum(sizes) != w0.shape[1] or sum(p.numel() for p in model.parameters()) != w0.shape[1]:
        raise ValueError(f"w0 must hold the model's {sum(sizes)} Linear weights and biases per chain, "
                         f"got {w0.shape[1]}")
    if x.shape[-1] != linears[0].in_features or y.shape[-1] != linears[-1].out_features:
        raise ValueError(f"x must have {linears[0].in_features} features and y {linears[-1].out_features} "
                         f"outputs, got {x.shape[-1]} and {y.shape[-1]}")
    n, m_out = x.shape[1], y.shape[-1]
    times = record_times(t_end, n_records)
    steps = [[round(t / float(a * s * s)) for t in times] for a, s in zip(alphas, sigmas)]
    at: dict[int, list[tuple[int, int]]] = {}  # step -> the (chain, record) pairs recorded there
    for c, row in enumerate(steps):
        for r, k in enumerate(row):
            at.setdefault(k, []).append((c, r))
    last = max(row[-1] for row in steps)
    params = [p.reshape(n_chains, *s).clone() for p, s in zip(w0.split(sizes, dim=1), shapes)]
    lr = alphas.clone().view(-1, 1, 1)  # a finished chain's step becomes 0
    scale = sigmas.view(-1, 1, 1)
    out = w0.new_empty(n_chains, n_records, w0.shape[1])
    eta: list[Tensor | None] = [None] * plan.count("noise")
    for k in range(last + 1):
        for c, r in at.get(k, ()):
            out[c, r] = torch.cat([p[c].reshape(-1) for p in params])
            if r == n_records - 1:
                lr[c] = 0.0
        if k == last:
            break
        # forward, caching what the backward pass needs
        h, cache, j, li = x, [], 0, 0
        for kind in plan:
            if kind == "linear":
                cache.append(("linear", h))
                h = torch.matmul(h, params[2 * li].transpose(1, 2)) + params[2 * li + 1]
                li += 1
            elif kind == "relu":
                cache.append(("relu", h > 0))
                h = h.clamp_min(0)
            else:
                z = torch.randn((n_chains, n, h.shape[-1]), dtype=dtype, generator=generator)
                eta[j] = ou_advance(eta[j], z, scale, rho)
                cache.append(("noise", 1 + eta[j]))
                h = h * cache[-1][1]
                j += 1
        delta = (h - y) * (2.0 / (n * m_out))
        grads: list[Tensor] = []
        for kind, saved in reversed(cache):
            if kind == "linear":
                li -= 1
                grads = [torch.matmul(delta.transpose(1, 2), saved), delta.sum(1, keepdim=True), *grads]
                if li == 0:
                    break  # no gradient with respect to the inputs
                delta = torch.matmul(delta, params[2 * li])
            else:  # relu mask or noise filter: both multiply elementwise
                delta = delta * saved
        params = [p - lr * g for p, g in zip(params, grads)]
    return out
