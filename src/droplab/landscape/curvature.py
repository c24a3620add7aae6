"""Curvature of the loss with respect to a parameter block: exact Hessian, HVP operator, Lanczos, GGN.

Zhang, Zhou & Xu 2024 (§3.5.2, Definition 4; §7; Theorem 1) need the Hessian H of the loss with
respect to one layer's parameters (the 50×50 weight and bias of the paper's FNN, D = 2,550) and its
eigenpairs. Which loss is differentiated is an explicit argument, recorded in every result:

* ``"eval"``: the evaluation-mode loss (every noise layer replaced by its mean);
* ``"expected"``: the expected dropout loss E_η R^drop(θ, η), as the average over ``n_masks``
  per-example masks drawn from the layers' own laws (Monte Carlo, with the standard error of each
  entry across masks); E_η ∇²R^drop is Theorem 1's left-hand side;
* ``"fixed-mask"``: the loss at one given mask (``{layer name: noise}``, e.g. recorded with
  :func:`droplab.nn.record_masks`), a deterministic function of θ.

For a linear layer's weight (and bias) block the exact Hessian has Kronecker structure: with a_i the
layer's input and H_i = ∂²L/∂z_i² the Hessian of the loss in the layer's output z_i = W a_i + b,
``∂²L/∂W∂W = Σ_i (a_i a_iᵀ) ⊗ H_i`` (exact: z is affine in W, every downstream second-order effect
is inside H_i). The H_i come from m batched Hessian-vector products in z, and the sum is one
(m², n) × (n, (k+1)²) matrix product. This path assumes each example's loss depends only on its
own z_i (no batch-norm statistics in training mode, no mask shared across the batch).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from scipy.sparse.linalg import LinearOperator, eigsh
from torch import Tensor, nn
from torch.func import functional_call, grad, jacrev, vjp, vmap

from droplab._checks import check_choice, check_int
from droplab.nn import mc_mode, replay_masks
from droplab.regularization import sample_noise
from droplab.training.modes import evaluation

LossFn = Callable[[Tensor, Tensor], Tensor]
Masks = Mapping[str, Tensor]
LOSSES = ("eval", "expected", "fixed-mask")
METHODS = ("auto", "kron", "jacrev")
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


def flatten_block(model: nn.Module, names: Sequence[str]) -> Tensor:
    """The block's current values as one flat vector (detached)."""
    named = dict(model.named_parameters())
    return torch.cat([named[k].detach().reshape(-1) for k in names])


def _unflatten(model: nn.Module, names: Sequence[str], flat: Tensor) -> dict[str, Tensor]:
    named = dict(model.named_parameters())
    out, o = {}, 0
    for k in names:
        n = named[k].numel()
        out[k] = flat[o:o + n].reshape(named[k].shape)
        o += n
    return out


def loss_masks(model: nn.Module, inputs: Tensor, loss: str, masks: Masks | None = None, n_masks: int = 16,
               generator: torch.Generator | None = None) -> list[Masks | None]:
    """The masks a ``loss`` semantics averages over: ``[None]`` (eval), ``[masks]`` (fixed), or draws.

    ``"expected"`` draws ``n_masks`` per-example noises of every layer with
    :func:`droplab.regularization.sample_noise` (the layers' own laws, ``generator`` for the draw).
    """
    check_choice("loss", loss, LOSSES)
    if loss == "eval":
        return [None]
    if loss == "fixed-mask":
        if masks is None:
            raise ValueError("masks must be given for loss 'fixed-mask' ({layer name: noise tensor}, e.g. from "
                             "droplab.nn.record_masks)")
        return [dict(masks)]
    check_int("n_masks", n_masks, minimum=2)
    drawn = sample_noise(model, inputs, n_masks, generator)
    return [{k: v[s] for k, v in drawn.items()} for s in range(n_masks)]


def _slice_masks(masks: Masks | None, lo: int, hi: int) -> Masks | None:
    """Rows ``lo:hi`` of per-example masks (a mask with batch dim 1 is shared and kept whole)."""
    if masks is None:
        return None
    return {k: (v if v.shape[0] == 1 else v[lo:hi]) for k, v in masks.items()}


def forward_with(model: nn.Module, params: dict[str, Tensor], x: Tensor, mask: Masks | None) -> Tensor:
    """``model(x)`` with ``params`` in evaluation mode; with ``mask`` the noise layers replay it.

    Other layers (batch norm) stay in evaluation mode either way; the caller's modes are restored.
    """
    with evaluation(model), mc_mode(model, mask is not None), replay_masks(model, mask or {}):
        return functional_call(model, params, (x,))


def block_loss(model: nn.Module, loss_fn: LossFn, x: Tensor, y: Tensor, names: Sequence[str],
               mask: Masks | None, weight: float = 1.0) -> Callable[[Tensor], Tensor]:
    """``flat ↦ weight · loss_fn(model(x), y)`` with the block set to ``flat``, the rest of θ frozen."""
    base = {k: v.detach() for k, v in model.named_parameters()}

    def f(flat: Tensor) -> Tensor:
        value = loss_fn(forward_with(model, {**base, **_unflatten(model, names, flat)}, x, mask), y)
        if value.dim() != 0:
            raise ValueError(f"loss_fn must return a scalar mean over examples, got shape {tuple(value.shape)}")
        return value * weight

    return f


def _chunks(n: int, chunk: int | None) -> list[tuple[int, int]]:
    step = n if chunk is None else chunk
    return [(i, min(i + step, n)) for i in range(0, n, step)]


@dataclass(frozen=True)
class BlockHessian:
    """A dense block Hessian, the loss it belongs to and, for ``"expected"``, each entry's standard error."""

    matrix: Tensor
    names: tuple[str, ...]
    loss: str
    n_masks: int
    stderr: Tensor | None
    method: str


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


def _per_example_hessians(f: Callable[[Tensor], Tensor], z: Tensor) -> Tensor:
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
    seen: list[tuple[Tensor, Tensor]] = []
    hook = module.register_forward_hook(lambda mod, args, out: seen.append((args[0].detach(), out.detach())))
    params = {k: v.detach() for k, v in model.named_parameters()}
    try:
        with torch.no_grad():
            forward_with(model, params, x, mask)
    finally:
        hook.remove()
    if len(seen) != 1 or seen[0][0].dim() != 2:
        raise ValueError("the Kronecker path needs the linear layer called once per forward on (batch, features) "
                         "inputs; use method='jacrev'")
    a, z = seen[0]
    state: dict[str, Tensor] = {}
    hook = module.register_forward_hook(lambda mod, args, out: out + state["delta"])
    try:
        def f_of_delta(delta: Tensor) -> Tensor:
            state["delta"] = delta
            return loss_fn(forward_with(model, params, x, mask), y) * weight

        h = _per_example_hessians(f_of_delta, torch.zeros_like(z))
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


def _mean_and_stderr(mats: list[Tensor]) -> tuple[Tensor, Tensor | None]:
    stack_mean = sum(mats) / len(mats)
    if len(mats) < 2:
        return stack_mean, None
    var = sum((m - stack_mean) ** 2 for m in mats) / (len(mats) - 1)
    return stack_mean, (var / len(mats)).sqrt()


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
    names = parameter_block(model, params)
    dim = block_size(model, names)
    check_dense_size(dim, max_entries)
    x, y = data
    n = len(x)
    linear = linear_block_module(model, names)
    if method == "kron" and linear is None:
        raise ValueError(f"method 'kron' needs the block to be one nn.Linear's [weight] or [weight, bias], got {names}")
    use_kron = linear is not None and method != "jacrev"
    mats = []
    for mask in loss_masks(model, x, loss, masks, n_masks, generator):
        total = torch.zeros(dim, dim, dtype=x.dtype, device=x.device)
        for lo, hi in _chunks(n, chunk):
            w = (hi - lo) / n
            sub = _slice_masks(mask, lo, hi)
            if use_kron:
                total += _kron_hessian(model, loss_fn, x[lo:hi], y[lo:hi], linear[0], linear[1], sub, w)
            else:
                f = block_loss(model, loss_fn, x[lo:hi], y[lo:hi], names, sub, w)
                total += jacrev(grad(f), chunk_size=jacrev_chunk)(flatten_block(model, names))
        mats.append(0.5 * (total + total.T))
    mean, stderr = _mean_and_stderr(mats)
    return BlockHessian(mean, tuple(names), loss, len(mats), stderr, "kron" if use_kron else "jacrev")


class HessianOperator(LinearOperator):
    """H of the block's loss as a ``scipy`` linear operator (float64 interface): v ↦ Hv by autograd.

    ``"expected"`` averages the HVPs of a fixed set of ``n_masks`` drawn masks (common random
    numbers: the operator is deterministic and symmetric). ``n_matvec`` counts products.
    """

    def __init__(self, model: nn.Module, loss_fn: LossFn, data: tuple[Tensor, Tensor],
                 params: Sequence[str | Tensor] | None = None, *, loss: str = "eval", masks: Masks | None = None,
                 n_masks: int = 16, generator: torch.Generator | None = None, chunk: int | None = None) -> None:
        self.names = tuple(parameter_block(model, params))
        dim = block_size(model, self.names)
        super().__init__(np.float64, (dim, dim))
        x, y = data
        self.loss = loss
        self.theta = flatten_block(model, self.names)
        self.fns = [block_loss(model, loss_fn, x[lo:hi], y[lo:hi], self.names, _slice_masks(mask, lo, hi),
                               (hi - lo) / len(x))
                    for mask in loss_masks(model, x, loss, masks, n_masks, generator)
                    for lo, hi in _chunks(len(x), chunk)]
        self.n_masks = len(self.fns) // len(_chunks(len(x), chunk))
        self.n_matvec = 0

    def hvp(self, v: Tensor) -> Tensor:
        """H v for a torch vector ``v`` of the block's dtype."""
        out = torch.zeros_like(self.theta)
        for f in self.fns:
            _, pullback = vjp(grad(f), self.theta)
            out += pullback(v)[0]
        self.n_matvec += 1
        return out / self.n_masks

    def _matvec(self, v: np.ndarray) -> np.ndarray:
        t = torch.as_tensor(np.asarray(v).reshape(-1), dtype=self.theta.dtype, device=self.theta.device)
        return self.hvp(t).double().cpu().numpy()

    def _rmatvec(self, v: np.ndarray) -> np.ndarray:
        return self._matvec(v)


def hessian_operator(model: nn.Module, loss_fn: LossFn, data: tuple[Tensor, Tensor],
                     params: Sequence[str | Tensor] | None = None, **kwargs) -> HessianOperator:
    """The block Hessian as a :class:`HessianOperator` (keywords as :func:`block_hessian`'s loss options)."""
    return HessianOperator(model, loss_fn, data, params, **kwargs)


@dataclass(frozen=True)
class Eigenpairs:
    """Eigenvalues (descending), eigenvectors as columns (D, k), and the number of products used."""

    values: Tensor
    vectors: Tensor
    n_matvec: int


def hessian_eigenpairs(operator: LinearOperator, k: int = 20, *, which: str = "LA", tol: float = 1e-6,
                       generator: torch.Generator | None = None) -> Eigenpairs:
    """Top-``k`` eigenpairs of a symmetric operator by Lanczos (``scipy.sparse.linalg.eigsh``).

    ``which="LA"``: largest algebraic (sharpest directions); ``"LM"``: largest magnitude. The start
    vector is drawn from ``generator`` so the result is reproducible.
    """
    check_int("k", k, minimum=1)
    check_choice("which", which, ("LA", "LM", "SA"))
    dim = operator.shape[0]
    if k >= dim:
        raise ValueError(f"k must be < the operator's dimension {dim} for Lanczos, got {k}; use block_hessian")
    v0 = torch.randn(dim, generator=generator, dtype=torch.float64).numpy()
    before = getattr(operator, "n_matvec", 0)
    vals, vecs = eigsh(operator, k=k, which=which, tol=tol, v0=v0)
    order = np.argsort(vals)[::-1].copy()
    return Eigenpairs(torch.from_numpy(vals[order].copy()), torch.from_numpy(vecs[:, order].copy()),
                      getattr(operator, "n_matvec", 0) - before)


@dataclass(frozen=True)
class TraceEstimate:
    """Hutchinson estimate of Tr(H) with its standard error over ``n_probes`` Rademacher probes."""

    value: float
    stderr: float
    n_probes: int


def hutchinson_trace(operator: LinearOperator, n_probes: int = 100,
                     generator: torch.Generator | None = None) -> TraceEstimate:
    """Tr(A) ≈ (1/S) Σ_s z_sᵀ A z_s with Rademacher z (E[z zᵀ] = I, so the estimator is unbiased)."""
    check_int("n_probes", n_probes, minimum=2)
    dim = operator.shape[0]
    z = torch.randint(0, 2, (n_probes, dim), generator=generator).double() * 2 - 1
    forms = torch.tensor([float(np.dot(zi, operator.matvec(zi))) for zi in z.numpy()])
    return TraceEstimate(float(forms.mean()), float(forms.std() / n_probes ** 0.5), n_probes)


def expected_hessian(model: nn.Module, loss_fn: LossFn, data: tuple[Tensor, Tensor],
                     params: Sequence[str | Tensor] | None = None, *, n_masks: int = 64,
                     generator: torch.Generator | None = None, **kwargs) -> BlockHessian:
    """E_η ∇²R^drop(θ, η) (ZZX Theorem 1's left-hand side) by Monte Carlo over masks, with standard errors."""
    return block_hessian(model, loss_fn, data, params, loss="expected", n_masks=n_masks, generator=generator,
                         **kwargs)


def ggn(model: nn.Module, loss_fn: LossFn, data: tuple[Tensor, Tensor], params: Sequence[str | Tensor] | None = None,
        *, loss: str = "eval", masks: Masks | None = None, n_masks: int = 16, generator: torch.Generator | None = None,
        chunk: int | None = 256, max_entries: int = MAX_DENSE_ENTRIES) -> BlockHessian:
    """The generalized Gauss–Newton matrix G = Σ_i J_iᵀ (∂²ℓ_i/∂f²) J_i of the block (J_i = ∂f(x_i)/∂θ).

    G drops the Hessian's term in ∇²f; it equals H when the outputs are affine in the block (the
    last layer's weights) and is PSD for convex losses. Model outputs must be (batch, classes).
    """
    names = parameter_block(model, params)
    dim = block_size(model, names)
    check_dense_size(dim, max_entries)
    x, y = data
    n = len(x)
    base = {k: v.detach() for k, v in model.named_parameters()}
    theta = flatten_block(model, names)
    mats = []
    for mask in loss_masks(model, x, loss, masks, n_masks, generator):
        total = torch.zeros(dim, dim, dtype=x.dtype, device=x.device)
        for lo, hi in _chunks(n, chunk):
            sub = _slice_masks(mask, lo, hi)

            def outputs(flat: Tensor, lo=lo, hi=hi, sub=sub) -> Tensor:
                return forward_with(model, {**base, **_unflatten(model, names, flat)}, x[lo:hi], sub)

            out = outputs(theta).detach()
            if out.dim() != 2:
                raise ValueError(f"ggn needs model outputs of shape (batch, classes), got {tuple(out.shape)}")
            jac = jacrev(outputs)(theta)  # (b, C, D)
            h = _per_example_hessians(lambda o, yy=y[lo:hi], w=(hi - lo) / n: loss_fn(o, yy) * w, out)  # (b, C, C)
            hj = torch.einsum("ipq,iqd->ipd", h, jac)
            total += jac.reshape(-1, dim).T @ hj.reshape(-1, dim)
        mats.append(0.5 * (total + total.T))
    mean, stderr = _mean_and_stderr(mats)
    return BlockHessian(mean, tuple(names), loss, len(mats), stderr, "ggn")
