"""Loss landscape: directions, profiles, interval flatness."""

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
]
