"""Noise modes, mask record/replay and generators for every droplab noise layer in a model.

Three modes, each a context manager that restores the caller's state on exit (analyses never call
``.train()`` / ``.eval()`` on a caller's model behind its back):

* :func:`training` (``model.train()`` inside the block): each noise layer samples fresh noise;
* :func:`evaluation` (``model.eval()`` inside the block): deterministic, the noise replaced by its
  expectation (the "ensemble network" of Baldi & Sadowski 2014, §3: weight scaling);
* :func:`mc_mode`: sample even in eval mode, for ensemble estimates.

:func:`lend_generator` makes every noise layer draw from one ``torch.Generator`` for a call.

:func:`record_masks` captures the noise each layer drew; :func:`replay_masks` makes the layers
reuse given noise, so that a train-mode dropout net becomes a deterministic function of its
parameters (what curvature tools need) or of a noise variable (what the noise Laplacian needs):
:func:`forward_with` runs the model so with a parameter block replaced, :func:`block_loss` is the
loss as a function of that block.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager

import torch
from torch import Tensor, nn
from torch.func import functional_call

from droplab._checks import check_generator
from droplab._params import LossFn, unflatten_block
from droplab.nn.base import NoiseLayer

Masks = Mapping[str, torch.Tensor]
"""Noise of every noise layer by qualified name, as :func:`replay_masks` takes it."""


def named_noise_layers(model: nn.Module) -> Iterator[tuple[str, NoiseLayer]]:
    """Yield ``(qualified_name, layer)`` for every droplab noise layer in ``model``."""
    for name, module in model.named_modules():
        if isinstance(module, NoiseLayer):
            yield name, module


def noise_layers(model: nn.Module) -> list[NoiseLayer]:
    """List every droplab noise layer in ``model`` in module order."""
    return [layer for _, layer in named_noise_layers(model)]


@contextmanager
def _setting(layers: Sequence[NoiseLayer], attr: str, values: Sequence[object]) -> Iterator[None]:
    """Set ``attr`` of each layer to its value inside the block; every layer's previous value restored."""
    previous = [getattr(layer, attr) for layer in layers]
    for layer, value in zip(layers, values):
        setattr(layer, attr, value)
    try:
        yield
    finally:
        for layer, value in zip(layers, previous):
            setattr(layer, attr, value)


@contextmanager
def _mode(model: nn.Module, train: bool) -> Iterator[nn.Module]:
    previous = {m: m.training for m in model.modules()}
    model.train(train)
    try:
        yield model
    finally:
        for m, flag in previous.items():
            m.training = flag


def evaluation(model: nn.Module) -> AbstractContextManager[nn.Module]:
    """Evaluation mode inside the block (noise replaced by its mean); every module's previous mode restored.

    >>> net = nn.Sequential(nn.Linear(2, 2), nn.Dropout(0.5)).train()
    >>> with evaluation(net):
    ...     net[1].training
    False
    >>> net[1].training
    True
    """
    return _mode(model, False)


def training(model: nn.Module) -> AbstractContextManager[nn.Module]:
    """Training mode inside the block (noise sampled); every module's previous mode restored."""
    return _mode(model, True)


@contextmanager
def lend_generator(model: nn.Module, generator: torch.Generator | None) -> Iterator[nn.Module]:
    """Every droplab noise layer of ``model`` (or ``model`` itself, if it is one) draws from ``generator``
    inside the block; the layers' own generators are restored on exit. ``None`` lends nothing: the
    layers keep their generators (or torch's global one).

    >>> from droplab.nn import BernoulliDropout
    >>> layer, x = BernoulliDropout(0.5), torch.ones(8)
    >>> with lend_generator(layer, torch.Generator().manual_seed(0)):
    ...     a = layer(x)
    >>> with lend_generator(layer, torch.Generator().manual_seed(0)):
    ...     b = layer(x)
    >>> torch.equal(a, b), layer.generator is None
    (True, True)
    """
    check_generator("generator", generator)
    layers = noise_layers(model) if generator is not None else []
    with _setting(layers, "generator", [generator] * len(layers)):
        yield model


@contextmanager
def mc_mode(model: nn.Module, enabled: bool = True) -> Iterator[nn.Module]:
    """Make every droplab noise layer of ``model`` sample even in eval mode; restore on exit.

    The train/eval flags of the model are not touched (analyses never flip a caller's
    mode behind its back).
    """
    layers = noise_layers(model)
    with _setting(layers, "mc", [enabled] * len(layers)):
        yield model


@contextmanager
def record_masks(model: nn.Module) -> Iterator[dict[str, list[torch.Tensor]]]:
    """Record the noise every droplab layer of ``model`` draws inside the block.

    Yields a dict ``{layer_name: [noise of call 1, noise of call 2, ...]}``; each tensor is
    the multiplicative noise the layer applied (broadcastable to its input), which
    :func:`replay_masks` accepts back.
    """
    named = dict(named_noise_layers(model))
    record: dict[str, list[torch.Tensor]] = {name: [] for name in named}
    with _setting(list(named.values()), "_record", list(record.values())):
        yield record


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
    layers = [named[name] for name in masks]
    replays = [value if isinstance(value, torch.Tensor) else list(value) for value in masks.values()]
    with _setting(layers, "_replay", replays), _setting(layers, "_replay_name", list(masks)):
        yield model


def forward_with(model: nn.Module, params: Mapping[str, Tensor], x: Tensor, mask: Masks | None) -> Tensor:
    """``model(x)`` with ``params`` in evaluation mode; with ``mask`` the noise layers replay it.

    Other layers (batch norm) stay in evaluation mode either way; the caller's modes are restored.
    """
    with evaluation(model), mc_mode(model, mask is not None), replay_masks(model, mask or {}):
        return functional_call(model, dict(params), (x,))


def block_loss(model: nn.Module, loss_fn: LossFn, x: Tensor, y: Tensor, names: Sequence[str],
               mask: Masks | None, weight: float = 1.0) -> Callable[[Tensor], Tensor]:
    """``flat ↦ weight · loss_fn(model(x), y)`` with the block set to ``flat``, the rest of θ frozen."""
    base = {k: v.detach() for k, v in model.named_parameters()}

    def f(flat: Tensor) -> Tensor:
        value = loss_fn(forward_with(model, {**base, **unflatten_block(model, names, flat)}, x, mask), y)
        if value.dim() != 0:
            raise ValueError(f"loss_fn must return a scalar mean over examples, got shape {tuple(value.shape)}")
        return value * weight

    return f
