"""The expected dropout gradient E_masks[∇_w L(w, mask)] next to the ensemble network's gradient.

Baldi & Sadowski 2014 (§11.1, eq. 139–140) view dropout as stochastic gradient descent on the
true-ensemble error; §11.2–11.5 (eqs. 147, 155, 164, 180) show that its expected gradient is the
ensemble network's gradient plus an adaptive weight-decay term. This module measures both sides for
any model: the expectation by batched Monte Carlo over the layers' own noise (with standard errors)
or exactly by enumeration over all Bernoulli masks of a small net; the ensemble gradient with every
noise replaced by its mean (evaluation mode). Their difference is the gradient of the regularizer
dropout adds (explicit, to first order in the update).

Masks: Monte Carlo draws independent noise per example (as dropout training does); enumeration
uses one mask shared by the batch. For a loss that is a sum or mean of per-example losses both give
the same expectation (linearity of expectation over each example's own mask).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch.func import grad, vmap

from droplab._checks import check_data, check_int
from droplab._params import LossFn
from droplab.nn import BernoulliDropout, named_noise_layers
from droplab.nn.laws import bernoulli_support
from droplab.nn.noise_space import draw_noise, noise_space
from droplab.regularization.laplacian import masked_loss, model_params

MAX_ENUMERATED_UNITS = 20


@dataclass(frozen=True)
class ExpectedGradient:
    """Expected dropout gradient, its standard error (0 when exact) and the ensemble network's gradient.

    Every field maps parameter names to tensors shaped like the parameters.
    """

    mean: dict[str, Tensor]
    stderr: dict[str, Tensor]
    ensemble: dict[str, Tensor]
    n_samples: int | None

    @property
    def difference(self) -> dict[str, Tensor]:
        """E[∇L_D] − ∇L_ENS: the gradient of dropout's regularizer (B&S eq. 147/155/180 extra term)."""
        return {k: self.mean[k] - self.ensemble[k] for k in self.mean}


def _param_names(model: nn.Module) -> list[str]:
    return [k for k, p in model.named_parameters() if p.requires_grad]


def ensemble_gradient(model: nn.Module, loss_fn: LossFn, inputs: Tensor,
                      targets: Tensor) -> dict[str, Tensor]:
    """∇_w of the ensemble network's loss: every noise layer replaced by its mean E ξ (B&S §3, eq. 144)."""
    space = noise_space(model, inputs)
    params = model_params(model)
    names = _param_names(model)
    loss = masked_loss(model, loss_fn, inputs, targets)
    mean_noise = dict(zip(space.names, space.means))

    def of_params(p: dict[str, Tensor]) -> Tensor:
        return loss({**params, **p}, mean_noise)

    return {k: v.detach() for k, v in grad(of_params)({k: params[k] for k in names}).items()}


def _per_mask_gradients(model: nn.Module, loss_fn: LossFn, inputs: Tensor, targets: Tensor,
                        noise: dict[str, Tensor], chunk_size: int | None) -> dict[str, Tensor]:
    """∇_w L(w, noise_s) for a batch of noises (leading dim s), vmapped."""
    params = model_params(model)
    names = _param_names(model)
    loss = masked_loss(model, loss_fn, inputs, targets)

    def one(nz: dict[str, Tensor]) -> dict[str, Tensor]:
        return grad(lambda p: loss({**params, **p}, nz))({k: params[k] for k in names})

    return {k: v.detach() for k, v in vmap(one, chunk_size=chunk_size)(noise).items()}


def bernoulli_mask_support(model: nn.Module, inputs: Tensor) -> tuple[dict[str, Tensor], Tensor]:
    """Every joint Bernoulli mask of the model's units and its probability (for exact expectations).

    Returns ``({name: (K, 1, *units) noise values}, probs (K,))`` with ``K = 2^d`` for ``d`` noise
    units in all; the noise of a kept unit is ``1/(1−p)`` (inverted) or 1 (``scale="none"``).
    Raises unless every noise layer is a :class:`droplab.nn.BernoulliDropout` and ``d ≤ 20``.
    """
    space = noise_space(model, inputs)
    layers = dict(named_noise_layers(model))
    bad = [n for n in space.names if not isinstance(layers[n], BernoulliDropout)]
    if bad:
        raise ValueError(f"exact enumeration needs BernoulliDropout noise layers; {bad} are not (use "
                         "Monte Carlo, n_samples > 0)")
    if space.dim > MAX_ENUMERATED_UNITS:
        raise ValueError(f"exact enumeration is over 2^units masks; the model has {space.dim} noise units, "
                         f"at most {MAX_ENUMERATED_UNITS} are allowed (use Monte Carlo)")
    keeps, scales = [], []
    for name, shape in zip(space.names, space.shapes):
        layer = layers[name]
        keep = (1 - torch.as_tensor(layer.p, dtype=inputs.dtype, device=inputs.device)).expand(shape).reshape(-1)
        keeps.append(keep)
        scales.append(1 / keep if layer.scale == "inverted" else torch.ones_like(keep))
    keep, scale = torch.cat(keeps), torch.cat(scales)
    bits, probs = bernoulli_support(keep)  # (K, d), (K,)
    values = torch.split(bits * scale, space.sizes, dim=1)
    noise = {n: v.reshape(len(bits), *s) for n, s, v in zip(space.names, space.shapes, values)}
    return noise, probs


def expected_dropout_gradient(model: nn.Module, loss_fn: LossFn, data: tuple[Tensor, Tensor],
                              n_samples: int | None = 1000, *, generator: torch.Generator | None = None,
                              chunk_size: int | None = 256) -> ExpectedGradient:
    """E_masks[∇_w L(w, mask)] with the ensemble network's gradient beside it.

    ``n_samples`` > 0: Monte Carlo over ``n_samples`` independent noise draws per example (any
    droplab noise layer), returning the mean and its standard error ``std/√S``; ``n_samples=None``:
    exact, a probability-weighted sum over every Bernoulli mask (small nets, B&S eq. 139–140).

    >>> from droplab.nn import BernoulliDropout
    >>> net = nn.Sequential(BernoulliDropout(0.5), nn.Linear(3, 1))
    >>> x, y = torch.randn(5, 3), torch.randn(5, 1)
    >>> eg = expected_dropout_gradient(net, nn.functional.mse_loss, (x, y), None)
    >>> sorted(eg.mean) == ["1.bias", "1.weight"]
    True
    """
    inputs, targets = check_data("data", data)
    ensemble = ensemble_gradient(model, loss_fn, inputs, targets)
    if n_samples is None:
        noise, probs = bernoulli_mask_support(model, inputs)
        grads = _per_mask_gradients(model, loss_fn, inputs, targets, noise, chunk_size)
        mean = {k: torch.tensordot(probs, g, dims=1) for k, g in grads.items()}
        return ExpectedGradient(mean, {k: torch.zeros_like(v) for k, v in mean.items()}, ensemble, None)
    check_int("n_samples", n_samples, minimum=2)
    noise = draw_noise(model, inputs, n_samples, generator)
    grads = _per_mask_gradients(model, loss_fn, inputs, targets, noise, chunk_size)
    mean = {k: g.mean(0) for k, g in grads.items()}
    stderr = {k: g.std(0) / n_samples**0.5 for k, g in grads.items()}
    return ExpectedGradient(mean, stderr, ensemble, n_samples)


@dataclass(frozen=True)
class DecayAlignment:
    """Per weight tensor w: the inner product ⟨E[∇L_D] − ∇L_ENS, w⟩ (Monte Carlo mean and standard error)
    and the cosine between the estimated difference and w. Positive means the expected dropout gradient's
    extra term shrinks w: a weight decay (B&S eqs. 147, 150, 164, 180, 188: the extra term is w·A, A > 0)."""

    inner: dict[str, float]
    stderr: dict[str, float]
    cosine: dict[str, float]
    n_samples: int


def decay_alignment(model: nn.Module, loss_fn: LossFn, data: tuple[Tensor, Tensor], n_samples: int = 64, *,
                    generator: torch.Generator | None = None, chunk_size: int | None = 64,
                    params: list[str] | None = None) -> DecayAlignment:
    """How the expected dropout gradient's extra term E[∇L_D] − ∇L_ENS lines up with the weights.

    For each parameter of ``params`` (default: every weight matrix, ``ndim ≥ 2``), the per-draw
    projections a_s = ⟨∇L(w, noise_s) − ∇L_ENS(w), w⟩ over ``n_samples`` independent noise draws give
    the unbiased estimate mean(a) of ⟨E∇L_D − ∇L_ENS, w⟩ and its standard error std(a)/√S; the cosine
    is that of the Monte Carlo mean difference with w (its norm includes Monte Carlo noise, so
    |cosine| is biased towards 0, never its sign).
    """
    inputs, targets = check_data("data", data)
    check_int("n_samples", n_samples, minimum=2)
    weights = dict(model.named_parameters())
    names = params if params is not None else [k for k, p in weights.items() if p.requires_grad and p.dim() >= 2]
    unknown = [k for k in names if k not in weights]
    if unknown or not names:
        raise ValueError(f"params must name parameters of the model, got {unknown or names}")
    ensemble = ensemble_gradient(model, loss_fn, inputs, targets)
    grads = _per_mask_gradients(model, loss_fn, inputs, targets, draw_noise(model, inputs, n_samples, generator),
                                chunk_size)
    inner, stderr, cosine = {}, {}, {}
    for k in names:
        w = weights[k].detach()
        diff = grads[k] - ensemble[k]
        proj = (diff * w).flatten(1).sum(1)
        mean_diff = diff.mean(0)
        inner[k] = float(proj.mean())
        stderr[k] = float(proj.std() / n_samples**0.5)
        cosine[k] = float((mean_diff * w).sum() / (mean_diff.norm() * w.norm()).clamp_min(1e-300))
    return DecayAlignment(inner, stderr, cosine, n_samples)
