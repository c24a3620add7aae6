"""Dropout dynamics: Gaussian-dropout GD on the zero-loss manifold and its limiting flow (SPS)."""

from droplab.dynamics.chains import dropout_gd_chains
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
from droplab.dynamics.ou import ou_dropout_gd, ou_path, ou_rho
from droplab.dynamics.phases import (
    PhaseRecord,
    active_units,
    hidden_activations,
    record_phases,
    sparsity,
    unit_activity,
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
    "dropout_gd_chains",
    # Ornstein–Uhlenbeck dropout
    "ou_dropout_gd",
    "ou_rho",
    "ou_path",
    # learning phases and sparsity (Baldi & Sadowski §11.7)
    "unit_activity",
    "record_phases",
    "PhaseRecord",
    "hidden_activations",
    "active_units",
    "sparsity",
]
