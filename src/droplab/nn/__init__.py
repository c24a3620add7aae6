"""Noise layers: every dropout variant of the four papers, with modes and mask record/replay.

See ``docs/noise-layers.md`` for the table of layers and the conventions (``p`` is the drop
probability; training / evaluation / Monte Carlo modes; scaling; record/replay).
"""

from droplab.nn import functional, laws
from droplab.nn.backpercolation import Backpercolation, BackpercolationSigmoid
from droplab.nn.base import NoiseLayer, noise_shape
from droplab.nn.bernoulli import BernoulliDropout
from droplab.nn.dropconnect import DropConnectLinear
from droplab.nn.dropin import Dropin
from droplab.nn.gaussian import GaussianDropout
from droplab.nn.information import InformationDropout
from droplab.nn.kinds import NOISE_KINDS, NoiseFactory, check_noise, make_noise
from droplab.nn.lognormal import LogNormalDropout
from droplab.nn.modes import (
    evaluation,
    lend_generator,
    mc_mode,
    named_noise_layers,
    noise_layers,
    record_masks,
    replay_masks,
    training,
)
from droplab.nn.noise_space import LOSSES, NoiseSpace, draw_noise, loss_masks, noise_space
from droplab.nn.ou import OUDropout
from droplab.nn.spiking import StochasticSpiking
from droplab.nn.variational import VariationalDropout, VariationalDropoutLinear

__all__ = [
    # base and modes
    "NoiseLayer",
    "noise_shape",
    "functional",
    "laws",
    "evaluation",
    "training",
    "mc_mode",
    "lend_generator",
    "noise_layers",
    "named_noise_layers",
    "record_masks",
    "replay_masks",
    # the noise variable and per-example draws of it
    "NoiseSpace",
    "noise_space",
    "draw_noise",
    "loss_masks",
    "LOSSES",
    # noise layers by name: the models' ``noise`` argument
    "NOISE_KINDS",
    "NoiseFactory",
    "make_noise",
    "check_noise",
    # unit noise: Bernoulli and its relatives (Baldi & Sadowski 2014)
    "BernoulliDropout",
    "Dropin",
    "StochasticSpiking",
    # connection noise (Baldi & Sadowski 2014, eq. 14)
    "DropConnectLinear",
    # continuous multiplicative noise (Srivastava et al. 2014; Shalova, Peletier & Schlichting)
    "GaussianDropout",
    "OUDropout",
    # log-normal and learned noise (Achille & Soatto 2017; Kingma et al. 2015)
    "LogNormalDropout",
    "InformationDropout",
    "VariationalDropout",
    "VariationalDropoutLinear",
    # noise in the backward pass (Baldi & Sadowski 2014, §10.2)
    "Backpercolation",
    "BackpercolationSigmoid",
]
