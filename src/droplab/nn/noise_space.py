"""A model's noise variable and per-example draws of it: one home for every analysis that needs noise.

* :func:`noise_space`: the layout of η — one block ``(1, *unit_shape)`` per noise layer, with the
  layers' noise means and variances (the noise Laplacian, the SPS dynamics, closed forms);
* :func:`draw_noise`: ``n_draws`` independent per-example noises of every layer,
  ``{name: (n_draws, N, *units)}``, the layers' own laws (Monte Carlo gradients, gradient-noise
  samples, the expected loss of the curvature tools);
* :func:`loss_masks`: the masks a loss semantics (:data:`LOSSES`) averages over.

Each noise is what :func:`droplab.nn.replay_masks` takes back, so a draw replayed in a forward pass
gives that sub-network's output.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from droplab._checks import check_batch, check_choice, check_int, model_input
from droplab._hooks import record_inputs
from droplab.nn.modes import Masks, evaluation, lend_generator, mc_mode, named_noise_layers, record_masks, replay_masks

LOSSES = ("eval", "expected", "fixed-mask")


@dataclass(frozen=True)
class NoiseSpace:
    """The noise variable of a model: one η block of shape ``(1, *unit_shape)`` per noise layer."""

    names: tuple[str, ...]
    shapes: tuple[tuple[int, ...], ...]
    means: tuple[Tensor, ...]
    variances: tuple[Tensor, ...]

    @property
    def sizes(self) -> list[int]:
        return [int(torch.Size(s).numel()) for s in self.shapes]

    @property
    def dim(self) -> int:
        """Total number of noise units (the dimension of η)."""
        return sum(self.sizes)

    def masks(self, eta: Tensor) -> dict[str, Tensor]:
        """Replay masks ``m + η`` for a flat η of length :attr:`dim`."""
        blocks = torch.split(eta, self.sizes)
        return {n: m + b.reshape(s) for n, s, m, b in zip(self.names, self.shapes, self.means, blocks)}

    def variance_vector(self) -> Tensor:
        """Var(η_j) for every unit, flat (per-unit probabilities broadcast to the unit shape)."""
        return torch.cat([v.expand(s).reshape(-1) for v, s in zip(self.variances, self.shapes)])


def _layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    named = list(named_noise_layers(model))
    if not named:
        raise ValueError("model has no droplab noise layer (droplab.nn.NoiseLayer); the noise variable "
                         "needs at least one, e.g. droplab.nn.GaussianDropout or BernoulliDropout")
    return named


def noise_space(model: nn.Module, inputs: Tensor) -> NoiseSpace:
    """Find every droplab noise layer of ``model`` and the unit shape it sees on ``inputs``.

    Raises a one-line ``ValueError`` when the model has no droplab noise layer, when a layer's noise
    law depends on the input (its moments are not fixed) or when a layer is off the forward path.
    """
    check_batch("inputs", inputs)
    named = _layers(model)
    means, variances = [], []
    for name, layer in named:
        try:
            m, v = layer.noise_moments()
        except RuntimeError:
            raise ValueError(f"noise layer {name!r} ({type(layer).__name__}) has input-dependent noise "
                             "moments; the noise variable needs layers of a fixed law (Gaussian, "
                             "Bernoulli, ...)") from None
        means.append(torch.as_tensor(m, dtype=inputs.dtype, device=inputs.device))
        variances.append(torch.as_tensor(v, dtype=inputs.dtype, device=inputs.device))
    with record_inputs(dict(named)) as seen, torch.no_grad(), mc_mode(model), \
            replay_masks(model, dict(zip([n for n, _ in named], means))), model_input("inputs", inputs):
        model(inputs[:1])
    missing = [n for n, _ in named if not seen[n]]
    if missing:
        raise ValueError(f"model noise layers {missing} are not called by model(inputs); the noise variable "
                         "needs every droplab noise layer on the forward path")
    return NoiseSpace(tuple(n for n, _ in named), tuple((1, *seen[n][0].shape[1:]) for n, _ in named),
                      tuple(means), tuple(variances))


def _per_example(name: str, noise: Tensor, n_draws: int, n: int) -> Tensor:
    if noise.shape[0] != n_draws * n:
        raise ValueError(f"noise layer {name!r} shares its noise across the batch (noise batch dim "
                         f"{noise.shape[0]}); per-example draws need independent noise per example")
    return noise.reshape(n_draws, n, *noise.shape[1:])


def draw_noise(model: nn.Module, inputs: Tensor, n_draws: int,
               generator: torch.Generator | None = None) -> dict[str, Tensor]:
    """``n_draws`` per-example noises of every noise layer for the batch ``inputs``: ``{name: (n_draws, N, *units)}``.

    ``generator`` replaces the layers' own generators for the draw (:func:`droplab.nn.lend_generator`).
    Layers whose law does not depend on their input's values (every layer but
    :attr:`droplab.nn.NoiseLayer.input_dependent` ones) draw on an empty input of the right shape, with
    no forward pass of the repeated batch; otherwise one Monte Carlo forward pass of the batch repeated
    ``n_draws`` times records what each layer draws. Both give the same draws for the same generator
    (tested): the layers draw in forward order, each ``(n_draws · N, *units)`` at once.
    """
    check_int("n_draws", n_draws, minimum=1)
    named = _layers(model)
    n = len(inputs)
    if any(layer.input_dependent for _, layer in named):
        with torch.no_grad(), mc_mode(model), lend_generator(model, generator), record_masks(model) as rec:
            model(inputs.repeat(n_draws, *([1] * (inputs.dim() - 1))))
        return {name: _per_example(name, calls[0], n_draws, n) for name, calls in rec.items()}
    with record_inputs(dict(named)) as seen, torch.no_grad(), evaluation(model), mc_mode(model, False):
        model(inputs[:1])  # the unit shape each layer sees, drawing nothing
    missing = [name for name, _ in named if not seen[name]]
    if missing:
        raise ValueError(f"model noise layers {missing} are not called by model(inputs); per-example draws "
                         "need every droplab noise layer on the forward path")
    out = {}
    with lend_generator(model, generator):
        for name, layer in named:
            unit = seen[name][0]  # the layer's own input (floats also when the model takes token ids)
            probe = torch.empty((n_draws * n, *unit.shape[1:]), dtype=unit.dtype, device=unit.device)
            out[name] = _per_example(name, layer.sample_noise(probe), n_draws, n)
    return out


def loss_masks(model: nn.Module, inputs: Tensor, loss: str, masks: Masks | None = None, n_masks: int = 16,
               generator: torch.Generator | None = None) -> list[Masks | None]:
    """The masks a ``loss`` semantics averages over: ``[None]`` (``"eval"``), ``[masks]`` (``"fixed-mask"``),
    or ``n_masks`` draws of :func:`draw_noise` (``"expected"``: the layers' own laws, ``generator`` for the draw).
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
    drawn = draw_noise(model, inputs, n_masks, generator)
    return [{k: v[s] for k, v in drawn.items()} for s in range(n_masks)]
