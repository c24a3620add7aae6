"""Noise layers: every dropout variant of the four papers, with modes and mask record/replay."""

from droplab.nn import functional
from droplab.nn.base import NoiseLayer, noise_shape
from droplab.nn.bernoulli import BernoulliDropout
from droplab.nn.modes import mc_mode, named_noise_layers, noise_layers, record_masks, replay_masks

__all__ = [
    # base and modes
    "NoiseLayer",
    "noise_shape",
    "functional",
    "mc_mode",
    "noise_layers",
    "named_noise_layers",
    "record_masks",
    "replay_masks",
    # layers
    "BernoulliDropout",
]
