"""Exact dropout ensembles: moment recursions for linear nets, enumeration of every sub-network.

Baldi & Sadowski 2014, §2–3: for a linear (or affine) feedforward net with Bernoulli gating
variables independent of each other, of the weights and of the activities, the mean of every unit
over all sub-networks is the forward pass of the net with each weight scaled by its keep
probability (eqs. 7, 15, 18, 24, 26), and the covariances follow by the same layer-by-layer
recursion (eqs. 11, 16–17, 19–20, 25). With ``M = C + m mᵀ`` the second moment of the input
``x`` (mean ``m``, covariance ``C``) of a layer:

* unit dropout ``y = x ⊙ ξ`` (ξ_j independent, mean μ_j, variance v_j):
  ``E y = μ ⊙ m``, ``Cov y = diag(μ) C diag(μ) + diag(v ⊙ diag M)`` (eqs. 15–17, 24–25);
* affine ``y = W x + b``: ``E y = W m + b``, ``Cov y = W C Wᵀ``;
* connection dropout ``S_i = Σ_j δ_ij w_ij x_j + b_i`` (δ_ij ~ Bernoulli(p_ij)), with ``A = W ⊙ P``:
  ``E S = A m + b``, ``Cov S = A C Aᵀ + diag(Σ_j p_ij q_ij w_ij² M_jj)`` (eqs. 18–20, 26).

:func:`enumerate_subnetworks` is the ground truth: it runs the model on every mask of its droplab
Bernoulli layers at once (batched, :func:`droplab.nn.replay_masks`) and returns the exact,
probability-weighted mean and covariance of the output.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from droplab._checks import check_batch, check_int, check_probability, model_input
from droplab.ensemble.stats import StreamingMoments
from droplab.models import FNN
from droplab.nn import BernoulliDropout, DropConnectLinear, NoiseLayer, mc_mode, named_noise_layers, replay_masks
from droplab.nn.base import noise_shape
from droplab.nn.laws import bernoulli_support
from droplab.nn.modes import evaluation


@dataclass(frozen=True)
class Moments:
    """Mean ``(N, d)`` and covariance ``(N, d, d)`` of a layer's units over the dropout ensemble, per input."""

    mean: Tensor
    cov: Tensor

    @property
    def variance(self) -> Tensor:
        """Per-unit variance ``(N, d)``: the diagonal of :attr:`cov`."""
        return self.cov.diagonal(dim1=-2, dim2=-1)


# ---------------------------------------------------------------- one step of the recursion
def unit_dropout_moments(m: Moments, mu: Tensor | float, var: Tensor | float) -> Moments:
    """Moments of ``x ⊙ ξ`` with independent per-unit noise of mean ``mu`` and variance ``var`` (eqs. 15–17, 24–25)."""
    d = m.mean.shape[-1]
    mu = torch.as_tensor(mu, dtype=m.mean.dtype).broadcast_to((d,))
    var = torch.as_tensor(var, dtype=m.mean.dtype).broadcast_to((d,))
    second = m.variance + m.mean ** 2
    cov = m.cov * mu[:, None] * mu[None, :] + torch.diag_embed(var * second)
    return Moments(m.mean * mu, cov)


def affine_moments(m: Moments, weight: Tensor, bias: Tensor | None = None) -> Moments:
    """Moments of ``W x + b`` (deterministic weights): ``W m + b`` and ``W C Wᵀ``."""
    mean = m.mean @ weight.T
    if bias is not None:
        mean = mean + bias
    return Moments(mean, weight @ m.cov @ weight.T)


def connection_dropout_moments(m: Moments, weight: Tensor, keep: Tensor | float,
                               bias: Tensor | None = None) -> Moments:
    """Moments of ``S_i = Σ_j δ_ij w_ij x_j + b_i``, δ_ij ~ Bernoulli(keep_ij) (eqs. 18–20, 26).

    ``keep`` is a float or an ``(out, in)`` tensor of keep probabilities; gates are {0, 1}
    (Baldi–Sadowski convention, no rescaling).
    """
    keep = torch.as_tensor(keep, dtype=weight.dtype)
    return weight_noise_moments(m, weight, keep, keep * (1 - keep), bias)


def weight_noise_moments(m: Moments, weight: Tensor, mu: Tensor | float, var: Tensor | float,
                         bias: Tensor | None = None) -> Moments:
    """Moments of ``S_i = Σ_j ξ_ij w_ij x_j + b_i`` with independent weight noise ξ_ij of mean ``mu``, variance ``var``.

    Mean ``(μ⊙W) m + b``; covariance ``(μ⊙W) C (μ⊙W)ᵀ + diag(Σ_j v_ij w_ij² E[x_j²])`` — the
    extra term is diagonal because distinct connections are independent (eq. 20).
    """
    mu = torch.as_tensor(mu, dtype=weight.dtype, device=weight.device).broadcast_to(weight.shape)
    var = torch.as_tensor(var, dtype=weight.dtype, device=weight.device).broadcast_to(weight.shape)
    out = affine_moments(m, weight * mu, bias)
    second = m.variance + m.mean ** 2  # (N, in)
    extra = second @ (var * weight ** 2).T  # (N, out)
    return Moments(out.mean, out.cov + torch.diag_embed(extra))


def point_moments(x: Tensor) -> Moments:
    """A fixed input: mean ``x`` ``(N, d)``, covariance 0."""
    return Moments(x, torch.zeros(*x.shape, x.shape[-1], dtype=x.dtype, device=x.device))


# ---------------------------------------------------------------- a whole net
def _leaves(model: nn.Module) -> Iterator[nn.Module]:
    if isinstance(model, FNN):
        yield from _leaves(model.net)
    elif isinstance(model, nn.Sequential):
        for child in model:
            yield from _leaves(child)
    elif isinstance(model, (nn.Linear, nn.Identity, nn.Flatten, NoiseLayer)):
        yield model
    else:
        raise ValueError(f"model must be an FNN or nn.Sequential of nn.Linear, nn.Identity, nn.Flatten and "
                         f"droplab noise layers for exact linear moments; got a {type(model).__name__}")


def _noise_law(layer: NoiseLayer) -> tuple[Tensor | float, Tensor | float]:
    shared = layer.shared_dims
    if any(d not in (0, -2) for d in shared):
        raise ValueError(f"{type(layer).__name__} shares its noise along dims {shared}; exact linear moments need "
                         "independent noise per unit (shared_dims may only share the batch dim 0)")
    return layer.noise_moments()


def linear_moments(model: nn.Module, x: Tensor) -> list[Moments]:
    """Exact per-input mean and covariance of every ``nn.Linear`` / ``DropConnectLinear`` output (eqs. 15–26).

    ``model`` is an :class:`droplab.models.FNN` with ``activation="linear"`` or an ``nn.Sequential``
    of ``nn.Linear`` / ``nn.Identity`` and droplab noise layers with independent per-unit noise
    (any law: the recursion only needs the noise mean and variance, e.g. Bernoulli with
    per-unit ``p`` tensors, either scaling). ``x`` is ``(N, d_in)`` (an unbatched ``(d_in,)`` is a
    batch of one). Returns one :class:`Moments` per ``nn.Linear`` in order; the last is the output.
    Works in ``x``'s dtype (use float64 for comparisons with :func:`enumerate_subnetworks`).
    ``DropConnectLinear`` layers contribute their independent per-connection weight noise
    (:func:`weight_noise_moments`).
    """
    x = x.unsqueeze(0) if x.dim() == 1 else x
    check_batch("x", x)
    m = point_moments(x.flatten(1))
    out: list[Moments] = []
    for leaf in _leaves(model):
        if isinstance(leaf, (nn.Linear, DropConnectLinear)) and m.mean.shape[-1] != leaf.in_features:
            where = "x" if not out else "the layer before it"
            raise ValueError(f"x of shape {tuple(x.shape)}: a {type(leaf).__name__} expects {leaf.in_features} "
                             f"features but {where} gives {m.mean.shape[-1]}")
        bias = getattr(leaf, "bias", None)
        bias = None if bias is None else bias.detach().to(x.dtype)
        if isinstance(leaf, DropConnectLinear):  # connection noise (eqs. 18–20, 26), any scaling
            m = weight_noise_moments(m, leaf.weight.detach().to(x.dtype), *leaf.noise_moments(), bias)
            out.append(m)
        elif isinstance(leaf, NoiseLayer):
            m = unit_dropout_moments(m, *_noise_law(leaf))
        elif isinstance(leaf, nn.Linear):
            m = affine_moments(m, leaf.weight.detach().to(x.dtype), bias)
            out.append(m)
    if not out:
        raise ValueError("model has no nn.Linear or DropConnectLinear layer; linear_moments needs at least one")
    return out


def joint_linear_moments(model: nn.Module, x: Tensor) -> Moments:
    """Joint mean ``(N, D)`` and covariance ``(N, D, D)`` of all ``nn.Linear`` outputs, concatenated (eq. 25).

    Same models as :func:`linear_moments`; ``D`` is the sum of their widths, input side first.
    Covariances across layers follow because a layer's gates are independent of everything
    computed before it: ``Cov(ξ ⊙ x, z) = diag(E ξ) Cov(x, z)`` and ``Cov(W x + b, z) = W Cov(x, z)``.
    """
    m = point_moments(x.flatten(1))
    cross: list[Tensor] = []  # Cov(current, S_k) for every recorded S_k, each (N, d_current, d_k)
    rows: list[list[Tensor]] = []
    means: list[Tensor] = []
    for leaf in _leaves(model):
        if isinstance(leaf, NoiseLayer):
            mu, var = _noise_law(leaf)
            m = unit_dropout_moments(m, mu, var)
            scale = torch.as_tensor(mu, dtype=m.mean.dtype).broadcast_to((m.mean.shape[-1],))[None, :, None]
            cross = [scale * c for c in cross]
        elif isinstance(leaf, nn.Linear):
            w = leaf.weight.detach().to(x.dtype)
            m = affine_moments(m, w, None if leaf.bias is None else leaf.bias.detach().to(x.dtype))
            cross = [w @ c for c in cross]
            rows.append([*cross, m.cov])
            cross.append(m.cov)
            means.append(m.mean)
    if not rows:
        raise ValueError("model has no nn.Linear layer; joint_linear_moments needs at least one")
    n = len(rows)
    blocks = [[rows[i][j] if j <= i else rows[j][i].transpose(-1, -2) for j in range(n)] for i in range(n)]
    return Moments(torch.cat(means, -1), torch.cat([torch.cat(r, -1) for r in blocks], -2))


def deep_linear_moments(x: Tensor, weights: Sequence[Tensor], biases: Sequence[Tensor | None] | None = None, *,
                        unit_keep: Sequence[Tensor | float | None] | None = None,
                        connection_keep: Sequence[Tensor | float | None] | None = None,
                        bias_keep: Sequence[Tensor | float | None] | None = None) -> list[Moments]:
    """Eqs. 24–26 for a layered linear net given as weight matrices, Baldi–Sadowski convention.

    Layer ``k`` maps ``S^{k}`` to ``S^{k+1} = W_k (δ^k ⊙ S^k) + b_k`` with unit gates
    δ^k_j ~ Bernoulli(``unit_keep[k]``) (``None``: no unit dropout) and/or connection gates
    δ_ij ~ Bernoulli(``connection_keep[k]``); gates are {0, 1} (no rescaling), so the mean is the
    forward pass with weights scaled by keep probabilities (eq. 8). ``bias_keep[k]`` drops the biases
    too, each with its own gate δ_b ~ Bernoulli(p_b) (eqs. 9–11: mean ``b p_b``, variance
    ``b² p_b q_b``, independent of the other gates). Returns the moments of every ``S^{k+1}``.
    """
    n = len(weights)
    biases = list(biases) if biases is not None else [None] * n
    unit_keep = list(unit_keep) if unit_keep is not None else [None] * n
    connection_keep = list(connection_keep) if connection_keep is not None else [None] * n
    bias_keep = list(bias_keep) if bias_keep is not None else [None] * n
    for name, seq in (("biases", biases), ("unit_keep", unit_keep), ("connection_keep", connection_keep),
                      ("bias_keep", bias_keep)):
        if len(seq) != n:
            raise ValueError(f"{name} must have one entry per weight matrix ({n}), got {len(seq)}")
    m = point_moments(x)
    out = []
    for k, (w, b, uk, ck, bk) in enumerate(zip(weights, biases, unit_keep, connection_keep, bias_keep)):
        if uk is not None:
            check_probability(f"unit_keep[{k}]", uk, high_open=False)
            uk_t = torch.as_tensor(uk, dtype=x.dtype)
            m = unit_dropout_moments(m, uk_t, uk_t * (1 - uk_t))
        fixed_bias = b if bk is None else None
        if ck is not None:
            check_probability(f"connection_keep[{k}]", ck, high_open=False)
            m = connection_dropout_moments(m, w, ck, fixed_bias)
        else:
            m = affine_moments(m, w, fixed_bias)
        if bk is not None and b is not None:  # eqs. 9–11: an independent gate on each bias
            check_probability(f"bias_keep[{k}]", bk, high_open=False)
            bk_t = torch.as_tensor(bk, dtype=x.dtype)
            m = Moments(m.mean + b * bk_t, m.cov + torch.diag_embed((b ** 2 * bk_t * (1 - bk_t)).expand_as(m.mean)))
        out.append(m)
    return out


# ---------------------------------------------------------------- exact enumeration
@dataclass(frozen=True)
class SubnetworkEnsemble:
    """Exact ensemble of a model's output over all ``n_masks`` masks: mean ``(N, d)``, covariance ``(N, d, d)``."""

    mean: Tensor
    cov: Tensor
    n_masks: int

    @property
    def variance(self) -> Tensor:
        return self.cov.diagonal(dim1=-2, dim2=-1)


@dataclass
class _Site:
    name: str
    layer: BernoulliDropout
    shape: tuple[int, ...]  # mask shape per example (batch dim 1 if shared along it)
    drop: Tensor  # (units,) drop probabilities, float64


def _sites(model: nn.Module, x: Tensor) -> list[_Site]:
    named = list(named_noise_layers(model))
    if not named:
        raise ValueError("model has no droplab noise layer; enumerate_subnetworks needs at least one BernoulliDropout")
    inputs: dict[str, list[tuple[int, ...]]] = {name: [] for name, _ in named}
    handles = [layer.register_forward_pre_hook(lambda _m, args, name=name: inputs[name].append(tuple(args[0].shape)))
               for name, layer in named]
    try:
        with evaluation(model), torch.no_grad(), model_input("x", x):
            model(x)
    finally:
        for h in handles:
            h.remove()
    sites = []
    for name, layer in named:
        if not isinstance(layer, BernoulliDropout):
            raise ValueError(f"noise layer {name!r} is a {type(layer).__name__}; enumerate_subnetworks needs "
                             "BernoulliDropout layers (a law with finite support)")
        if len(inputs[name]) != 1:
            raise ValueError(f"noise layer {name!r} is called {len(inputs[name])} times per forward; "
                             "enumerate_subnetworks needs each noise layer called exactly once")
        in_shape = inputs[name][0]
        full = noise_shape(torch.empty(in_shape, device="meta"), layer.shared_dims)
        p = torch.as_tensor(layer.p, dtype=torch.float64).cpu()
        if p.dim() == len(in_shape) and p.shape[0] > 1:
            raise ValueError(f"noise layer {name!r} has per-example p of shape {tuple(p.shape)}; "
                             "enumerate_subnetworks needs p shared across the batch (one value per unit)")
        unit = (1, *full[1:])
        drop = p.broadcast_to(torch.broadcast_shapes(unit, p.shape)).reshape(-1)
        if drop.numel() != math.prod(unit):
            raise ValueError(f"noise layer {name!r}: p of shape {tuple(p.shape)} is finer than its mask {unit}")
        sites.append(_Site(name, layer, unit, drop))
    return sites


def enumerate_subnetworks(model: nn.Module, x: Tensor, *, max_units: int = 20,
                          chunk_size: int | None = None) -> SubnetworkEnsemble:
    """Exact mean and covariance of ``model(x)`` over every mask of its droplab Bernoulli layers (eq. 2).

    Each unit ``u`` with drop probability ``p_u > 0`` (per-unit ``p`` tensors allowed) is a gate;
    a mask has probability ``Π (1−p_u)^{δ_u} p_u^{1−δ_u}``, and the model runs on all ``2^n``
    masks, ``chunk_size`` masks × N inputs per forward (the noise replayed with
    :func:`droplab.nn.replay_masks` inside :func:`droplab.nn.mc_mode`; every other module in
    evaluation mode; the caller's modes are restored). Units with ``p = 0`` are always kept and
    cost nothing. Raises if more than ``max_units`` gates would be enumerated.

    ``x`` is ``(N, ...)``, or one unbatched input ``(d,)`` taken as a batch of one (as torch
    layers do); the output is flattened to ``(N, d)``. Statistics are accumulated in float64 by a
    streaming merge (:class:`droplab.ensemble.stats.StreamingMoments`).
    """
    check_int("max_units", max_units, minimum=0)
    x = x.unsqueeze(0) if x.dim() == 1 else x
    check_batch("x", x)
    sites = _sites(model, x)
    gates = [torch.nonzero(s.drop > 0).flatten() for s in sites]
    n = sum(len(g) for g in gates)
    if n > max_units:
        raise ValueError(f"model has {n} droppable units (p > 0), more than max_units={max_units}; "
                         "2^n masks would be enumerated — use droplab.ensemble.montecarlo instead")
    n_masks = 2 ** n
    big_n = x.shape[0]
    if chunk_size is None:
        chunk_size = max(1, min(n_masks, 2 ** 16 // big_n))
    check_int("chunk_size", chunk_size, minimum=1)
    keep_gates = torch.cat([1 - s.drop[g].to(torch.float64) for s, g in zip(sites, gates)])
    stats = StreamingMoments(covariance=True)
    with evaluation(model), mc_mode(model), torch.no_grad():
        for start in range(0, n_masks, chunk_size):
            bits, prob = bernoulli_support(keep_gates, start, min(start + chunk_size, n_masks))  # (B, n): 1 = kept
            b = len(bits)
            masks, offset = {}, 0
            for s, g in zip(sites, gates):
                keep = torch.ones(b, s.drop.numel(), dtype=torch.float64)
                keep[:, g] = bits[:, offset:offset + len(g)]
                offset += len(g)
                if s.layer.scale == "inverted":
                    keep = keep / (1 - s.drop)
                noise = keep.to(x.dtype).to(x.device).reshape(b, *s.shape)
                noise = noise.expand(b, big_n, *s.shape[1:]).reshape(b * big_n, *s.shape[1:])
                masks[s.name] = noise
            xb = x.unsqueeze(0).expand(b, *x.shape).reshape(b * big_n, *x.shape[1:])
            with replay_masks(model, masks):
                y = model(xb)
            stats.update(y.reshape(b, big_n, -1), prob)
    return SubnetworkEnsemble(stats.mean, stats.covariance_matrix(), n_masks)


def connection_dropout_layer(weight: Tensor, bias: Tensor | None, keep: Tensor | float) -> nn.Sequential:
    """Connection dropout (eq. 14) on ``W x + b`` built from droplab layers, so it can be enumerated or sampled.

    Each connection ``(i, j)`` becomes a unit: ``x`` is copied once per output row (a fixed
    ``nn.Linear`` of stacked identities), a :class:`droplab.nn.BernoulliDropout` with per-connection
    drop probabilities ``1 − keep`` and no rescaling gates the copies, and a block ``nn.Linear``
    sums ``w_ij δ_ij x_j`` into ``S_i``. Its exact moments are :func:`connection_dropout_moments`.
    """
    out_f, in_f = weight.shape
    keep = torch.as_tensor(keep, dtype=weight.dtype, device=weight.device).broadcast_to(weight.shape)
    check_probability("keep", keep, low_open=True, high_open=False)
    copy = nn.Linear(in_f, out_f * in_f, bias=False).to(weight.device, weight.dtype)
    gather = nn.Linear(out_f * in_f, out_f, bias=bias is not None).to(weight.device, weight.dtype)
    with torch.no_grad():
        copy.weight.copy_(torch.eye(in_f, dtype=weight.dtype, device=weight.device).repeat(out_f, 1))
        gather.weight.copy_(torch.block_diag(*weight.detach()))
        if bias is not None:
            gather.bias.copy_(bias.detach())
    gate = BernoulliDropout((1 - keep).reshape(-1), scale="none")
    return nn.Sequential(copy, gate, gather)
