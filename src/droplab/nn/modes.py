"""Noise modes and mask record/replay for every droplab noise layer in a model.

Three modes (issue "noise-layer family"):

* training (``model.train()``): each noise layer samples fresh noise;
* evaluation (``model.eval()``): deterministic, the noise replaced by its expectation
  (the "ensemble network" of Baldi & Sadowski 2014, §3: weight scaling);
* Monte Carlo (:func:`mc_mode`): sample even in eval mode, for ensemble estimates.

:func:`record_masks` captures the noise each layer drew; :func:`replay_masks` makes the layers
reuse given noise, so that a train-mode dropout net becomes a deterministic function of its
parameters (what curvature tools need) or of a noise variable (what the noise Laplacian needs).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager

import torch
from torch import nn

from droplab.nn.base import NoiseLayer


def named_noise_layers(model: nn.Module) -> Iterator[tuple[str, NoiseLayer]]:
    """Yield ``(qualified_name, layer)`` for every droplab noise layer in ``model``."""
    for name, module in model.named_modules():
        if isinstance(module, NoiseLayer):
            yield name, module


def noise_layers(model: nn.Module) -> list[NoiseLayer]:
    """List every droplab noise layer in ``model`` in module order."""
    return [layer for _, layer in named_noise_layers(model)]


@contextmanager
def mc_mode(model: nn.Module, enabled: bool = True) -> Iterator[nn.Module]:
    """Make every droplab noise layer of ``model`` sample even in eval mode; restore on exit.

    The train/eval flags of the model are not touched (analyses never flip a caller's
    mode behind its back).
    """
    layers = noise_layers(model)
    previous = [layer.mc for layer in layers]
    for layer in layers:
        layer.mc = enabled
    try:
        yield model
    finally:
        for layer, flag in zip(layers, previous):
            layer.mc = flag


@contextmanager
def record_masks(model: nn.Module) -> Iterator[dict[str, list[torch.Tensor]]]:
    """Record the noise every droplab layer of ``model`` draws inside the block.

    Yields a dict ``{layer_name: [noise of call 1, noise of call 2, ...]}``; each tensor is
    the multiplicative noise the layer applied (broadcastable to its input), which
    :func:`replay_masks` accepts back.
    """
    named = list(named_noise_layers(model))
    record: dict[str, list[torch.Tensor]] = {name: [] for name, _ in named}
    previous = [layer._record for _, layer in named]
    for name, layer in named:
        layer._record = record[name]
    try:
        yield record
    finally:
        for (_, layer), prev in zip(named, previous):
            layer._record = prev


@contextmanager
def replay_masks(model: nn.Module,
                 masks: Mapping[str, torch.Tensor | Sequence[torch.Tensor]]) -> Iterator[nn.Module]:
    """Make the named noise layers use the given noise instead of sampling.

    ``masks[name]`` is either one tensor, reused at every forward call (a fixed mask: the
    net becomes deterministic), or a sequence consumed one per call (replaying a
    recording). Layers not named keep sampling. Replay applies whenever the layer samples
    (training or :func:`mc_mode`); tensors may require grad and may be functions of a noise
    variable, so ``torch.func`` transforms can differentiate through them.
    """
    named = dict(named_noise_layers(model))
    unknown = sorted(set(masks) - set(named))
    if unknown:
        raise ValueError(f"masks names unknown noise layers {unknown}; the model has {sorted(named)}")
    previous = {name: named[name]._replay for name in masks}
    for name, value in masks.items():
        named[name]._replay = value if isinstance(value, torch.Tensor) else list(value)
    try:
        yield model
    finally:
        for name, prev in previous.items():
            named[name]._replay = prev
