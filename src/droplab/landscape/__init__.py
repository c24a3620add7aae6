"""Loss landscape: directions, profiles, interval flatness and curvature (see docs/landscape.md)."""

from droplab._params import flatten_block, parameter_block
from droplab.landscape.blocks import BlockHessian
from droplab.landscape.directions import (
    GRANULARITIES,
    check_direction,
    direction_from_vector,
    filter_normalized_direction,
)
from droplab.landscape.flatness import (
    IntervalFlatness,
    direction_flatness,
    flatness_table,
    interval_flatness,
    widened_flatness,
)
from droplab.landscape.ggn import ggn
from droplab.landscape.hessian import METHODS, block_hessian, expected_hessian
from droplab.landscape.operator import HessianOperator, hessian_operator
from droplab.landscape.profiles import loss_at, loss_profile, loss_surface
from droplab.landscape.spectra import Eigenpairs, TraceEstimate, hessian_eigenpairs, hutchinson_trace
from droplab.nn.modes import forward_with
from droplab.nn.noise_space import LOSSES, loss_masks

__all__ = [
    # directions
    "filter_normalized_direction", "direction_from_vector", "check_direction", "GRANULARITIES",
    # profiles
    "loss_profile", "loss_surface", "loss_at",
    # flatness
    "interval_flatness", "direction_flatness", "flatness_table", "widened_flatness", "IntervalFlatness",
    # curvature of a parameter block (loss semantics: LOSSES)
    "block_hessian", "expected_hessian", "ggn", "BlockHessian", "hessian_operator", "HessianOperator",
    "hessian_eigenpairs", "Eigenpairs", "hutchinson_trace", "TraceEstimate", "parameter_block",
    "flatten_block", "loss_masks", "forward_with", "LOSSES", "METHODS",
]
