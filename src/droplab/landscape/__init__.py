"""Loss landscape: directions, profiles, interval flatness, curvature (see docs/landscape.md)."""

from droplab.landscape.curvature import (
    LOSSES,
    METHODS,
    BlockHessian,
    Eigenpairs,
    HessianOperator,
    TraceEstimate,
    block_hessian,
    expected_hessian,
    flatten_block,
    forward_with,
    ggn,
    hessian_eigenpairs,
    hessian_operator,
    hutchinson_trace,
    loss_masks,
    parameter_block,
)
from droplab.landscape.directions import (
    GRANULARITIES,
    check_direction,
    direction_from_vector,
    filter_normalized_direction,
)
from droplab.landscape.flatness import IntervalFlatness, interval_flatness
from droplab.landscape.profiles import loss_profile, loss_surface

__all__ = [
    # directions
    "filter_normalized_direction", "direction_from_vector", "check_direction", "GRANULARITIES",
    # profiles
    "loss_profile", "loss_surface",
    # flatness
    "interval_flatness", "IntervalFlatness",
    # curvature of a parameter block (loss semantics: LOSSES)
    "block_hessian", "expected_hessian", "ggn", "BlockHessian", "hessian_operator", "HessianOperator",
    "hessian_eigenpairs", "Eigenpairs", "hutchinson_trace", "TraceEstimate", "parameter_block",
    "flatten_block", "loss_masks", "forward_with", "LOSSES", "METHODS",
]
