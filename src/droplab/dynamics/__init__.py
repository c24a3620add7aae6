"""Dropout dynamics: Gaussian-dropout GD on the zero-loss manifold and its limiting flow (SPS)."""

from droplab.dynamics.manifold import (
    FlatModel,
    Trajectory,
    gaussian_dropout_gd,
    path_distance,
    reach_zero_loss,
    record_times,
    regularizer_flow,
    retract,
    tangent_projector,
)

__all__ = [
    # zero-loss manifold (Shalova–Peletier–Schlichting)
    "FlatModel",
    "Trajectory",
    "reach_zero_loss",
    "retract",
    "tangent_projector",
    "gaussian_dropout_gd",
    "regularizer_flow",
    "path_distance",
    "record_times",
]
