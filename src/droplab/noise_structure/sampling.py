"""Sampling the dropout noise (Zhang, Zhou & Xu 2024, §3.4) on a parameter block.

* :func:`trajectory_samples` — S_para (§3.4.1): the block at N consecutive full-batch GD steps with
  dropout, run on a copy of the model (the caller's model is not changed).
* :func:`gradient_samples` — S_grad (§3.4.2): θ frozen, N gradients of the dropout loss with
  respect to the block, each with a fresh per-example mask of every noise layer.

The gradient sampler is vectorized: ``vmap(grad(L))`` over chunks of masks, so everything that does
not depend on the noise (the layers before the first noise layer, the block's input) is computed
once per chunk, not once per draw. ``method="loop"`` is the plain one-backward-per-draw reference;
both consume the same stream of masks (:func:`draw_noise`), so they agree draw for draw.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch.func import functional_call, grad, vmap

from droplab._checks import check_choice, check_int, check_positive
from droplab.landscape.curvature import LossFn, forward_with, parameter_block
from droplab.nn import NoiseLayer, mc_mode, named_noise_layers, replay_masks
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


def draw_noise(model: nn.Module, inputs: Tensor, n_draws: int,
               generator: torch.Generator | None = None) -> dict[str, Tensor]:
    """``n_draws`` per-example noises of every noise layer for ``inputs``: ``{name: (n_draws, n, *units)}``.

    Each layer draws with its own law (:meth:`droplab.nn.NoiseLayer.sample_noise`) on an empty input
    of the right shape — no forward pass — with ``generator`` in place of the layer's generator.
    """
    check_int("n_draws", n_draws, minimum=1)
    space = noise_space(model, inputs)
    layers = dict(named_noise_layers(model))
    n = len(inputs)
    out = {}
    for name, shape in zip(space.names, space.shapes):
        layer = layers[name]
        previous = layer.generator
        layer.generator = generator if generator is not None else previous
        try:
            probe = torch.empty((n_draws * n, *shape[1:]), dtype=inputs.dtype, device=inputs.device)
            noise = layer.sample_noise(probe)
        finally:
            layer.generator = previous
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
                     method: str = "vectorized", chunk: int = 32,
                     timings: dict[str, float] | None = None) -> NoiseSamples:
    """S_grad (§3.4.2): N gradients ∇_block R^drop(θ, η_s) at frozen θ, a fresh mask η_s per sample.

    Every example gets its own mask (as in dropout training); batch norm is held in evaluation mode.
    ``chunk`` masks are processed per vectorized call (memory ∝ chunk × batch × units). With a dict
    ``timings`` the seconds spent drawing masks and on arithmetic are added to it.

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
    suffix = _noise_free_prefix(model, names, x)

    def loss_of(theta: dict[str, Tensor], noise: dict[str, Tensor]) -> Tensor:
        if suffix is None:
            return loss_fn(forward_with(model, {**others, **theta}, x, noise), y)
        h, modules = suffix
        with evaluation(model), mc_mode(model), replay_masks(model, noise):
            for prefix, module in modules:
                local = {k[len(prefix) + 1:]: v for k, v in {**others, **theta}.items() if k.startswith(prefix + ".")}
                h = functional_call(module, local, (h,)) if local else module(h)
        return loss_fn(h, y)

    def flat(grads: dict[str, Tensor], lead: tuple[int, ...]) -> Tensor:
        return torch.cat([grads[k].reshape(*lead, -1) for k in names], -1)

    clock = _Clock(timings)
    out = []
    stream = _noise_stream(model, x, n_samples, chunk, generator)
    while (noise := clock("masks", lambda: next(stream, None))) is not None:
        if method == "vectorized":
            g = clock("arithmetic", lambda: vmap(grad(loss_of), in_dims=(None, 0))(block, noise))
            out.append(flat(g, (len(next(iter(noise.values()))),)))
        else:
            for s in range(len(next(iter(noise.values())))):
                one = {k: v[s] for k, v in noise.items()}
                out.append(clock("arithmetic", lambda one=one: _loop_gradient(model, loss_fn, x, y, names, others,
                                                                               block, one)))
    samples = torch.cat(out) if method == "vectorized" else torch.stack(out)
    return NoiseSamples(samples, tuple(names), "gradient", "dropout (fresh per-example mask per sample)")


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
    """Adds wall time of labelled calls to a dict (no-op without one)."""

    def __init__(self, timings: dict[str, float] | None) -> None:
        self.timings = timings

    def __call__(self, label: str, fn: Callable[[], object]):
        if self.timings is None:
            return fn()
        t0 = time.perf_counter()
        value = fn()
        self.timings[label] = self.timings.get(label, 0.0) + time.perf_counter() - t0
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

