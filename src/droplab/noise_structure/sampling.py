"""Sampling the dropout noise (Zhang, Zhou & Xu 2024, §3.4) on a parameter block.

* :func:`trajectory_samples` — S_para (§3.4.1): the block at N consecutive full-batch GD steps with
  dropout, run on a copy of the model (the caller's model is not changed).
* :func:`gradient_samples` — S_grad (§3.4.2): θ frozen, N gradients of the dropout loss with
  respect to the block, each with a fresh per-example mask of every noise layer.

The gradient sampler is vectorized over chunks of masks, and everything that does not depend on
the noise is computed once: the block layer's input (the layers before it) and, for a linear
layer's [weight(, bias)] block, its output z = W a + b. Then only δ_s = ∂L/∂z under mask s is
``vmap(grad(·))`` over the masks, and the block gradients of a whole chunk are one batched
contraction ∇_W L_s = δ_sᵀ a, ∇_b L_s = Σ_i δ_s,i. Other blocks use ``vmap(grad(L))`` over the
masks. ``method="loop"`` is the plain one-forward-backward-per-draw reference; both consume the same
stream of masks (:func:`draw_noise`), so they agree draw for draw.

Bernoulli dropout masks are drawn from 32-bit uniform integers (two per 64-bit word of the
generator, compared with round(keep·2³²): the keep probability is exact to 2⁻³³, finer than the
2⁻²⁴ grid of a float32 uniform) at a fraction of ``torch.rand`` + compare's cost. Cross-entropy is
differentiated on a class-major copy of the logits in the vectorized path: PyTorch's CPU
log-softmax over a short last dimension (10 classes) runs several times below memory speed.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch.func import functional_call, grad, vmap

from droplab._checks import check_choice, check_int, check_positive, check_probability
from droplab.landscape.curvature import LossFn, forward_with, linear_block_module, parameter_block
from droplab.nn import BernoulliDropout, NoiseLayer, mc_mode, named_noise_layers, replay_masks
from droplab.regularization import noise_space
from droplab.training import TrainConfig, fit
from droplab.training.callbacks import RecordParameters
from droplab.training.modes import evaluation

SAMPLER_METHODS = ("vectorized", "loop")


@dataclass(frozen=True)
class NoiseSamples:
    """N samples (N, D) of a parameter block: ``kind`` "gradient" (S_grad) or "trajectory" (S_para)."""

    samples: Tensor
    names: tuple[str, ...]
    kind: str
    loss: str

    @property
    def n(self) -> int:
        return self.samples.shape[0]


def bernoulli_noise_fast(shape: Sequence[int], keep: float, scale: float, *, dtype: torch.dtype = torch.float32,
                         device: torch.device | str | None = None,
                         generator: torch.Generator | None = None) -> Tensor:
    """Bernoulli noise of ``shape``: ``scale`` with probability round(keep·2³²)/2³², else 0.

    Each element compares a 32-bit uniform integer (half of a full-range 64-bit generator word,
    ``random_``) with the threshold round(keep·2³²): the law differs from Bernoulli(keep) by at most
    2⁻³³, finer than the 2⁻²⁴ grid of a float32 uniform, at a fraction of ``torch.rand``'s cost.

    >>> g = torch.Generator().manual_seed(0)
    >>> noise = bernoulli_noise_fast((100000,), 0.8, 1.25, generator=g)
    >>> round(float((noise > 0).float().mean()), 2), sorted(set(noise.tolist()))
    (0.8, [0.0, 1.25])
    """
    check_probability("keep", keep, low_open=True, high_open=False)
    count = math.prod(shape)
    words = torch.empty((count + 1) // 2, dtype=torch.int64, device=device)
    words.random_(-2 ** 63, None, generator=generator)
    u = words.view(torch.int32)[:count]                      # u − 2³¹ for u uniform on [0, 2³²)
    threshold = round(keep * 2 ** 32)
    if threshold >= 2 ** 32:
        return torch.full(tuple(shape), scale, dtype=dtype, device=device)
    kept = u < threshold - 2 ** 31
    one, zero = torch.tensor(scale, dtype=dtype, device=device), torch.zeros((), dtype=dtype, device=device)
    return torch.where(kept, one, zero).reshape(tuple(shape))


def _layer_noise(layer: NoiseLayer, probe: Tensor, generator: torch.Generator | None) -> Tensor:
    """Per-example noise of ``layer`` for ``probe``'s shape: the fast Bernoulli path where it applies."""
    if (type(layer) is BernoulliDropout and not isinstance(layer.p, Tensor) and not layer.shared_dims
            and 0 < layer.p < 1):
        keep = 1 - layer.p
        return bernoulli_noise_fast(probe.shape, keep, 1 / keep if layer.scale == "inverted" else 1.0,
                                    dtype=probe.dtype, device=probe.device, generator=generator)
    previous = layer.generator
    layer.generator = generator if generator is not None else previous
    try:
        return layer.sample_noise(probe)
    finally:
        layer.generator = previous


def draw_noise(model: nn.Module, inputs: Tensor, n_draws: int,
               generator: torch.Generator | None = None) -> dict[str, Tensor]:
    """``n_draws`` per-example noises of every noise layer for ``inputs``: ``{name: (n_draws, n, *units)}``.

    Each layer draws with its own law on an empty input of the right shape — no forward pass — with
    ``generator`` in place of the layer's generator; plain per-unit Bernoulli dropout draws with
    :func:`bernoulli_noise_fast` (the same law, from cheaper random bits).
    """
    check_int("n_draws", n_draws, minimum=1)
    space = noise_space(model, inputs)
    layers = dict(named_noise_layers(model))
    n = len(inputs)
    out = {}
    for name, shape in zip(space.names, space.shapes):
        probe = torch.empty((n_draws * n, *shape[1:]), dtype=inputs.dtype, device=inputs.device)
        noise = _layer_noise(layers[name], probe, generator)
        if noise.shape[0] != n_draws * n:
            raise ValueError(f"noise layer {name!r} shares its noise across the batch; gradient sampling needs "
                             "per-example noise")
        out[name] = noise.reshape(n_draws, n, *noise.shape[1:])
    return out


def _noise_stream(model: nn.Module, x: Tensor, n_samples: int, chunk: int,
                  generator: torch.Generator | None) -> Iterator[dict[str, Tensor]]:
    for lo in range(0, n_samples, chunk):
        yield draw_noise(model, x, min(chunk, n_samples - lo), generator)


def gradient_samples(model: nn.Module, loss_fn: LossFn, data: tuple[Tensor, Tensor], n_samples: int,
                     params: Sequence[str | Tensor] | None = None, *, generator: torch.Generator | None = None,
                     method: str = "vectorized", chunk: int = 16,
                     timings: dict[str, float] | None = None) -> NoiseSamples:
    """S_grad (§3.4.2): N gradients ∇_block R^drop(θ, η_s) at frozen θ, a fresh mask η_s per sample.

    Every example gets its own mask (as in dropout training); batch norm is held in evaluation mode.
    ``chunk`` masks are processed per vectorized call (memory ∝ chunk × batch × units). With a dict
    ``timings`` the seconds spent drawing masks and on arithmetic are added to it (keys ``"masks"``,
    ``"arithmetic"``: wall clock; ``"masks_cpu"``, ``"arithmetic_cpu"``: this process's CPU time).

    >>> from droplab.models import FNN
    >>> net = FNN([4, 3, 2], dropout={1: 0.5})
    >>> x, y = torch.randn(8, 4), torch.randint(0, 2, (8,))
    >>> s = gradient_samples(net, nn.functional.cross_entropy, (x, y), 5, ["net.0.weight"],
    ...                      generator=torch.Generator().manual_seed(0))
    >>> tuple(s.samples.shape)
    (5, 12)
    """
    check_int("n_samples", n_samples, minimum=2)
    check_int("chunk", chunk, minimum=1)
    check_choice("method", method, SAMPLER_METHODS)
    names = parameter_block(model, params)
    x, y = data
    base = {k: v.detach() for k, v in model.named_parameters()}
    others = {k: v for k, v in base.items() if k not in names}
    block = {k: base[k] for k in names}
    clock = _Clock(timings)
    if method == "vectorized":
        batch_grads = _vectorized_gradients(model, loss_fn, x, y, names, others, block)
    out = []
    stream = _noise_stream(model, x, n_samples, chunk, generator)
    while (noise := clock("masks", lambda: next(stream, None))) is not None:
        if method == "vectorized":
            out.append(clock("arithmetic", lambda noise=noise: batch_grads(noise)))
        else:
            for s in range(len(next(iter(noise.values())))):
                one = {k: v[s] for k, v in noise.items()}
                out.append(clock("arithmetic", lambda one=one: _loop_gradient(model, loss_fn, x, y, names, others,
                                                                               block, one)))
    samples = torch.cat(out) if method == "vectorized" else torch.stack(out)
    return NoiseSamples(samples, tuple(names), "gradient", "dropout (fresh per-example mask per sample)")


def _vectorized_gradients(model: nn.Module, loss_fn: LossFn, x: Tensor, y: Tensor, names: Sequence[str],
                          others: dict[str, Tensor],
                          block: dict[str, Tensor]) -> Callable[[dict[str, Tensor]], Tensor]:
    """``noise {name: (S, n, ...)} ↦`` the S flat block gradients, with the noise-free work done once."""
    suffix = _noise_free_prefix(model, names, x)
    params = {**others, **block}

    def run(h: Tensor, modules: Sequence[tuple[str, nn.Module]], theta: dict[str, Tensor],
            noise: dict[str, Tensor]) -> Tensor:
        with evaluation(model), mc_mode(model), replay_masks(model, noise):
            for prefix, module in modules:
                local = {k[len(prefix) + 1:]: v for k, v in theta.items() if k.startswith(prefix + ".")}
                h = functional_call(module, local, (h,)) if local else module(h)
        return h

    loss_fn = _VECTORIZED_LOSSES.get(loss_fn, loss_fn)
    linear = linear_block_module(model, names)
    if suffix is not None and linear is not None and suffix[1][0][1] is linear[0]:
        a, modules = suffix
        with torch.no_grad():
            z = functional_call(linear[0], {k.rsplit(".", 1)[1]: v for k, v in block.items()}, (a,))
        if linear[1]:  # [a, 1]: the bias gradient Σ_i δ_s,i comes out of the same product
            a = torch.cat([a, torch.ones(len(a), 1, dtype=a.dtype, device=a.device)], 1)
        a_t = a.T.contiguous()                                   # (k, n), made once
        m, k = z.shape[1], a.shape[1]
        delta_of = vmap(grad(lambda z, noise: loss_fn(run(z, modules[1:], params, noise), y)), in_dims=(None, 0))

        def linear_grads(noise: dict[str, Tensor]) -> Tensor:
            delta = delta_of(z, noise)                           # (S, n, m) = ∂L/∂z under each mask
            g = torch.matmul(a_t, delta).transpose(1, 2)         # (S, m, k): Σ_i δ_s,i ã_iᵀ, one batched GEMM
            if not linear[1]:
                return g.reshape(len(delta), m * k)
            return torch.cat([g[..., :-1].reshape(len(delta), -1), g[..., -1]], 1)

        return linear_grads

    def loss_of(theta: dict[str, Tensor], noise: dict[str, Tensor]) -> Tensor:
        if suffix is None:
            return loss_fn(forward_with(model, {**others, **theta}, x, noise), y)
        return loss_fn(run(suffix[0], suffix[1], {**others, **theta}, noise), y)

    def generic_grads(noise: dict[str, Tensor]) -> Tensor:
        g = vmap(grad(loss_of), in_dims=(None, 0))(block, noise)
        return torch.cat([g[k].reshape(len(next(iter(noise.values()))), -1) for k in names], -1)

    return generic_grads


def _class_major_cross_entropy(logits: Tensor, target: Tensor) -> Tensor:
    """``F.cross_entropy(logits, target)`` (mean over n) with the log-softmax over a (C, n) copy."""
    if logits.dim() != 2 or target.dim() != 1 or target.is_floating_point():
        return nn.functional.cross_entropy(logits, target)
    log_p = torch.log_softmax(logits.T.contiguous(), 0)     # (C, n): softmax along the long inner dim
    return -log_p.gather(0, target.unsqueeze(0)).mean()


_VECTORIZED_LOSSES: dict[LossFn, LossFn] = {nn.functional.cross_entropy: _class_major_cross_entropy}


def _noise_free_prefix(model: nn.Module, names: Sequence[str],
                       x: Tensor) -> tuple[Tensor, list[tuple[str, nn.Module]]] | None:
    """The block layer's input (computed once) and the modules from the block layer on, when safe.

    Safe when the block lies in the direct children of an ``nn.Sequential`` from one child on, that
    child's input does not depend on the noise (no noise layer or block parameter before it), and the
    rest of the Sequential reproduces ``model(x)`` (checked once, in evaluation mode). Else None:
    the full forward runs for every chunk of masks.
    """
    for seq_name, seq in model.named_modules():
        if not isinstance(seq, nn.Sequential):
            continue
        children = [(f"{seq_name}.{c}" if seq_name else c, m) for c, m in seq.named_children()]
        idx = [next((i for i, (c, _) in enumerate(children) if k.startswith(c + ".")), None) for k in names]
        if None in idx:
            continue
        start = min(idx)
        if any(isinstance(m, NoiseLayer) or any(isinstance(s, NoiseLayer) for s in m.modules())
               for _, m in children[:start]):
            return None
        seen: list[Tensor] = []
        hook = children[start][1].register_forward_pre_hook(lambda mod, args, seen=seen: seen.append(args[0].detach()))
        try:
            with torch.no_grad(), evaluation(model):
                full = model(x)
        finally:
            hook.remove()
        if len(seen) != 1:
            return None
        h = seen[0]
        with torch.no_grad(), evaluation(model):
            for _, m in children[start:]:
                h = m(h)
        if h.shape != full.shape or not torch.equal(h, full):
            return None
        return seen[0], children[start:]
    return None


def _loop_gradient(model: nn.Module, loss_fn: LossFn, x: Tensor, y: Tensor, names: Sequence[str],
                   others: dict[str, Tensor], block: dict[str, Tensor], noise: dict[str, Tensor]) -> Tensor:
    """One forward and backward with plain autograd (the naive reference of :func:`gradient_samples`)."""
    leaves = {k: v.clone().requires_grad_(True) for k, v in block.items()}
    value = loss_fn(forward_with(model, {**others, **leaves}, x, noise), y)
    grads = torch.autograd.grad(value, [leaves[k] for k in names])
    return torch.cat([g.reshape(-1) for g in grads])


class _Clock:
    """Adds wall and process-CPU time (``label``, ``label_cpu``) of labelled calls to a dict (no-op without one)."""

    def __init__(self, timings: dict[str, float] | None) -> None:
        self.timings = timings

    def __call__(self, label: str, fn: Callable[[], object]):
        if self.timings is None:
            return fn()
        t0, c0 = time.perf_counter(), time.process_time()
        value = fn()
        for key, elapsed in ((label, time.perf_counter() - t0), (f"{label}_cpu", time.process_time() - c0)):
            self.timings[key] = self.timings.get(key, 0.0) + elapsed
        return value


def trajectory_samples(model: nn.Module, loss_fn: LossFn, data: tuple[Tensor, Tensor], n_samples: int,
                       params: Sequence[str | Tensor] | None = None, *, lr: float, seed: int = 0,
                       every: int = 1) -> NoiseSamples:
    """S_para (§3.4.1): the block after each of N·``every`` full-batch GD steps with dropout (every ``every``-th).

    Training runs on a deep copy of ``model`` (noise from ``seed``); the caller's model is unchanged.
    """
    check_int("n_samples", n_samples, minimum=2)
    check_int("every", every, minimum=1)
    check_positive("lr", lr)
    names = parameter_block(model, params)
    twin = copy.deepcopy(model)
    twin_named = dict(twin.named_parameters())
    record = RecordParameters(every, params=lambda m: [twin_named[k] for k in names])
    x, y = data
    fit(twin, loss_fn, x, y, TrainConfig(optimizer="gd", lr=lr, steps=n_samples * every, seed=seed),
        callbacks=[record])
    return NoiseSamples(record.trajectory(), tuple(names), "trajectory", "dropout GD steps")

