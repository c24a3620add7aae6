"""The noise Laplacian Δ_η L̂(w, 0): the regularizer Gaussian dropout adds (Shalova–Peletier–Schlichting).

Every droplab noise layer multiplies its input by ``ξ = m + η`` with ``m = E ξ`` (1 for inverted
dropout and Gaussian dropout) and η zero-mean. Writing the loss as a function of the weights and
the noise, ``L̂(w, η) = loss_fn(model_{w,η}(inputs), targets)`` with ``L̂(w, 0) = L(w)`` the
ensemble (evaluation-mode) loss, the second-order expansion of the dropout loss is

.. math::

    \\mathbb{E}_\\eta \\hat L(w, \\eta) \\approx L(w) + \\tfrac12 \\sum_j \\operatorname{Var}(\\eta_j)\\,
    \\partial^2_{\\eta_j} \\hat L(w, 0),

and for Gaussian dropout with variance σ² the regularizer is ½σ²Δ_η L̂(w, 0); Shalova, Peletier
and Schlichting's Theorem 1 says rescaled Gaussian-dropout GD follows ``−½ P_Γ ∇_w Δ_η L̂`` on the
zero-loss manifold Γ.

Convention: η has one entry per unit of each noise layer's per-example input, **shared across the
batch** (shape ``(1, *unit_shape)``). Because the loss of a batch is a sum (or mean) of per-example
losses, the diagonal second derivatives — hence the Laplacian — are the same as with independent
per-example noise (the off-diagonal, cross-example terms are not part of a trace). A noise layer
called several times in one forward pass reuses the same η.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import numpy as np
import torch
from scipy.sparse.linalg import LinearOperator
from torch import Tensor, nn
from torch.func import functional_call, grad, jacrev, vmap

from droplab._params import LossFn
from droplab.nn import mc_mode, replay_masks
from droplab.nn.noise_space import NoiseSpace, noise_space


def masked_loss(model: nn.Module, loss_fn: LossFn, inputs: Tensor,
                targets: Tensor) -> Callable[[dict[str, Tensor], dict[str, Tensor]], Tensor]:
    """``(params, noise) ↦ loss_fn(model(inputs), targets)`` with every noise layer replaying ``noise[name]``.

    A pure function of the parameters and the multiplicative noise, for ``torch.func`` transforms
    (the noise layers sample-mode is switched on only inside the call; train/eval flags untouched).
    """

    def loss(params: dict[str, Tensor], noise: dict[str, Tensor]) -> Tensor:
        with mc_mode(model), replay_masks(model, noise):
            out = functional_call(model, params, (inputs,))
        with warnings.catch_warnings():  # torch's elementwise losses only warn when they broadcast
            warnings.filterwarnings("error", message=".*target size.*different to the input size", category=UserWarning)
            try:
                value = loss_fn(out, targets)
            except UserWarning:
                raise ValueError(f"targets of shape {tuple(targets.shape)} must match the model's outputs "
                                 f"{tuple(out.shape)} (the loss would broadcast them)") from None
        if value.dim() != 0:
            raise ValueError(f"loss_fn must return a scalar (use reduction 'mean' or 'sum'), got shape "
                             f"{tuple(value.shape)}")
        return value

    return loss


PIECEWISE_LINEAR_LOSSES = (nn.functional.l1_loss, nn.functional.multi_margin_loss,
                           nn.functional.hinge_embedding_loss, nn.functional.margin_ranking_loss)
PIECEWISE_LINEAR_MODULES = (nn.L1Loss, nn.MultiMarginLoss, nn.HingeEmbeddingLoss, nn.MarginRankingLoss)


def check_twice_differentiable(loss_fn: LossFn) -> None:
    """Refuse the known piecewise-linear losses: their second derivative is 0 almost everywhere.

    The Laplacian would come back as an exact, silent 0 (or a sum of δ-functions autograd cannot
    see); use a smooth loss (``mse_loss``, ``cross_entropy``, ``smooth_l1_loss``).
    """
    if loss_fn in PIECEWISE_LINEAR_LOSSES or isinstance(loss_fn, PIECEWISE_LINEAR_MODULES):
        name = getattr(loss_fn, "__name__", type(loss_fn).__name__)
        raise ValueError(f"loss_fn {name} is piecewise linear, not twice differentiable: its Laplacian is 0 "
                         "almost everywhere; use a smooth loss such as mse_loss or cross_entropy")


def _loss_of(model: nn.Module, loss_fn: LossFn, inputs: Tensor, targets: Tensor,
             space: NoiseSpace) -> Callable[[dict[str, Tensor], Tensor], Tensor]:
    """``(params, η) ↦ L̂(w, η)``: the model replaying noise ``m + η`` (η flat, see :class:`NoiseSpace`)."""
    check_twice_differentiable(loss_fn)
    loss = masked_loss(model, loss_fn, inputs, targets)
    return lambda params, eta: loss(params, space.masks(eta))


def _hessian_products(loss: Callable[[dict[str, Tensor], Tensor], Tensor], params: dict[str, Tensor],
                      eta0: Tensor, probes: Tensor, chunk_size: int | None) -> Tensor:
    """``∇²_η L̂(w, 0) v_k`` for each row ``v_k`` of ``probes`` (reverse-over-reverse, vmapped).

    Reverse-over-reverse rather than forward-over-reverse: torch's ``mse_loss`` double backward
    fails under forward-mode AD ("ZeroTensors are immutable", torch 2.13).
    """

    def product(v: Tensor) -> Tensor:
        return grad(lambda e: torch.dot(grad(loss, argnums=1)(params, e), v))(eta0)

    return vmap(product, chunk_size=chunk_size)(probes)


def _quadratic_forms(loss: Callable[[dict[str, Tensor], Tensor], Tensor], params: dict[str, Tensor],
                     eta0: Tensor, probes: Tensor, chunk_size: int | None) -> Tensor:
    """``v_k^T ∇²_η L̂(w, 0) v_k`` for each row ``v_k`` of ``probes``."""
    return (probes * _hessian_products(loss, params, eta0, probes, chunk_size)).sum(-1)


def model_params(model: nn.Module) -> dict[str, Tensor]:
    """Buffers and detached parameters of ``model`` by name (the ``params`` of :func:`masked_loss`)."""
    return {**dict(model.named_buffers()), **{k: v.detach() for k, v in model.named_parameters()}}


def noise_laplacian_diagonal(model: nn.Module, loss_fn: LossFn, inputs: Tensor, targets: Tensor, *,
                             chunk_size: int | None = 64) -> Tensor:
    """∂²L̂/∂η_j² at η = 0 for every noise unit j (flat, in module order), exact.

    One Hessian-vector product per unit, vmapped over the basis in chunks of ``chunk_size``.
    """
    space = noise_space(model, inputs)
    loss = _loss_of(model, loss_fn, inputs, targets, space)
    eta0 = torch.zeros(space.dim, dtype=inputs.dtype, device=inputs.device)
    basis = torch.eye(space.dim, dtype=inputs.dtype, device=inputs.device)
    return _quadratic_forms(loss, model_params(model), eta0, basis, chunk_size).detach()


def noise_laplacian(model: nn.Module, loss_fn: LossFn, inputs: Tensor, targets: Tensor, *,
                    chunk_size: int | None = 64) -> Tensor:
    """Δ_η L̂(w, 0): the sum over every unit of every droplab noise layer of ∂²L̂/∂η_j² at η = 0.

    Exact (torch.func second derivatives), a scalar tensor, **without** any σ² factor — the
    Gaussian-dropout regularizer of Shalova–Peletier–Schlichting (Theorem 1) is
    ``½σ²·noise_laplacian`` (see :func:`noise_regularizer`). Off the zero-loss manifold it includes
    the residual term (loss curvature times ∂²f/∂η²); on Γ it equals the Gauss–Newton form of
    :func:`droplab.regularization.relu_l2_laplacian`. The model's train/eval flags are untouched;
    its noise layers are replayed at ``m + η``.

    >>> from droplab.nn import BernoulliDropout
    >>> net = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), BernoulliDropout(0.5), nn.Linear(3, 1))
    >>> x, y = torch.randn(4, 2), torch.randn(4, 1)
    >>> float(noise_laplacian(net, nn.functional.mse_loss, x, y)) >= 0
    True
    """
    return noise_laplacian_diagonal(model, loss_fn, inputs, targets, chunk_size=chunk_size).sum()


def noise_regularizer(model: nn.Module, loss_fn: LossFn, inputs: Tensor, targets: Tensor, *,
                      chunk_size: int | None = 64) -> Tensor:
    """½ Σ_j Var(η_j) ∂²L̂/∂η_j² at η = 0: the second-order dropout regularizer, each layer's variance.

    For Gaussian dropout of variance σ² everywhere this is ½σ²Δ_η L̂(w, 0) (Shalova–Peletier–
    Schlichting); for a linear unit with Bernoulli dropout it is Baldi & Sadowski's eq. 148 term
    (exact there, since the loss is quadratic in η).
    """
    space = noise_space(model, inputs)
    diag = noise_laplacian_diagonal(model, loss_fn, inputs, targets, chunk_size=chunk_size)
    return 0.5 * (space.variance_vector() * diag).sum()


class NoiseHessianOperator(LinearOperator):
    """H = ∇²_η L̂(w, 0) as a ``scipy`` linear operator (float64 interface); its trace is Δ_η L̂(w, 0).

    Products are batched: ``matmat`` of a (D, S) block is one vmapped pass over its S columns, so
    :func:`droplab.landscape.hutchinson_trace` estimates the Laplacian of a large layer with S
    Hessian-vector products instead of one per unit (Hutchinson 1990).
    """

    def __init__(self, model: nn.Module, loss_fn: LossFn, inputs: Tensor, targets: Tensor, *,
                 chunk_size: int | None = 64) -> None:
        space = noise_space(model, inputs)
        super().__init__(np.float64, (space.dim, space.dim))
        self.loss = _loss_of(model, loss_fn, inputs, targets, space)
        self.params = model_params(model)
        self.eta0 = torch.zeros(space.dim, dtype=inputs.dtype, device=inputs.device)
        self.chunk_size = chunk_size

    def _matmat(self, block: np.ndarray) -> np.ndarray:
        probes = torch.as_tensor(np.asarray(block).T, dtype=self.eta0.dtype, device=self.eta0.device)
        out = _hessian_products(self.loss, self.params, self.eta0, probes, self.chunk_size).detach()
        return out.double().cpu().numpy().T

    def _matvec(self, v: np.ndarray) -> np.ndarray:
        return self._matmat(np.asarray(v).reshape(-1, 1)).reshape(-1)

    def _rmatvec(self, v: np.ndarray) -> np.ndarray:
        return self._matvec(v)


def noise_hessian_operator(model: nn.Module, loss_fn: LossFn, inputs: Tensor, targets: Tensor, *,
                           chunk_size: int | None = 64) -> NoiseHessianOperator:
    """∇²_η L̂(w, 0) as a :class:`NoiseHessianOperator`: ``hutchinson_trace(...)`` of it estimates Δ_η L̂.

    >>> from droplab.landscape import hutchinson_trace
    >>> from droplab.nn import GaussianDropout
    >>> net = nn.Sequential(nn.Linear(2, 3), nn.Tanh(), GaussianDropout(sigma=0.3), nn.Linear(3, 1))
    >>> x, y = torch.randn(4, 2), torch.randn(4, 1)
    >>> est = hutchinson_trace(noise_hessian_operator(net, nn.functional.mse_loss, x, y), 8)
    >>> est.n_probes
    8
    """
    return NoiseHessianOperator(model, loss_fn, inputs, targets, chunk_size=chunk_size)


def noise_laplacian_grad(model: nn.Module, loss_fn: LossFn, inputs: Tensor, targets: Tensor, *,
                         chunk_size: int | None = 64) -> dict[str, Tensor]:
    """∇_w Δ_η L̂(w, 0) for every named parameter of ``model`` (the drift of SPS Theorem 1 is −½ of it).

    Differentiates the exact trace (one Hessian-vector product per unit) with respect to the
    parameters by reverse mode through the forward-over-reverse product.
    """
    space = noise_space(model, inputs)
    loss = _loss_of(model, loss_fn, inputs, targets, space)
    eta0 = torch.zeros(space.dim, dtype=inputs.dtype, device=inputs.device)
    basis = torch.eye(space.dim, dtype=inputs.dtype, device=inputs.device)
    buffers = dict(model.named_buffers())
    params = {k: v.detach() for k, v in model.named_parameters()}

    def trace(p: dict[str, Tensor]) -> Tensor:
        return _quadratic_forms(loss, {**buffers, **p}, eta0, basis, chunk_size).sum()

    return {k: v.detach() for k, v in grad(trace)(params).items()}


def mse_gauss_newton_laplacian(model: nn.Module, inputs: Tensor) -> Tensor:
    """The Gauss–Newton part of Δ_η L̂ for ``mse_loss`` (mean): ``(2/(N m)) Σ_i Σ_j ‖∂f(x_i)/∂η_j‖²``.

    Equal to :func:`noise_laplacian` on the zero-loss manifold Γ (the residual term
    ``(f − t)·∂²f/∂η²`` vanishes there) for any model; off Γ the two differ by that residual term
    (which is 0 for ReLU nets). Computed from the Jacobian of the outputs with respect to η.
    """
    space = noise_space(model, inputs)
    params = model_params(model)
    eta0 = torch.zeros(space.dim, dtype=inputs.dtype, device=inputs.device)

    def outputs(eta: Tensor) -> Tensor:
        with mc_mode(model), replay_masks(model, space.masks(eta)):
            return functional_call(model, params, (inputs,))

    jac = jacrev(outputs)(eta0)  # (N, m..., d)
    out_size = jac[0].numel() // space.dim
    return (2.0 / (len(inputs) * out_size) * jac.pow(2).sum()).detach()
