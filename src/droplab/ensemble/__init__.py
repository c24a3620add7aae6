"""Baldi–Sadowski static analysis of dropout: means, bounds, linear moments, transfer, Monte Carlo.

Baldi & Sadowski 2014, §2–9 and Appendices A–F. See docs/ensemble.md.
"""

from droplab.ensemble import approximations, errors, linear, means, montecarlo, transfer
from droplab.ensemble.approximations import (
    connected_product_estimate,
    logistic_derivative_mean,
    product_estimate,
    propagated_error,
    variance_estimate_upper,
    variance_estimate_zero,
)
from droplab.ensemble.errors import (
    LOSSES,
    EnsembleErrors,
    ensemble_errors,
    normalized_exponential_nwgm,
    softmax_ensemble_errors,
)
from droplab.ensemble.linear import (
    Moments,
    SubnetworkEnsemble,
    affine_moments,
    connection_dropout_layer,
    connection_dropout_moments,
    deep_linear_moments,
    enumerate_subnetworks,
    joint_linear_moments,
    linear_moments,
    point_moments,
    unit_dropout_moments,
)
from droplab.ensemble.means import (
    BOUND_ARGMAX_SIMPLE,
    BOUND_ARGMAX_VARIANCE_FREE,
    EnsembleSummary,
    cartwright_field_bounds,
    complement_geometric_mean,
    expectation,
    geometric_mean,
    geometric_mean_second_order,
    ky_fan_log_ratios,
    log_geometric_mean,
    mean_absolute_deviation,
    nwgm,
    nwgm_bound_boundary,
    nwgm_bound_boundary_variance,
    nwgm_bound_simple,
    nwgm_bound_variance,
    nwgm_bound_variance_free,
    nwgm_error_boundary,
    nwgm_error_second_order,
    nwgm_second_order,
    nwgm_second_order_boundary,
    nwgm_second_order_mean,
    summary,
    variance,
)
from droplab.ensemble.montecarlo import (
    MonteCarloResult,
    PairStats,
    UnitStats,
    ensemble_activations,
    sample_ensemble,
    subnetwork_outputs,
)
from droplab.ensemble.stats import StreamingMoments
from droplab.ensemble.transfer import (
    PROBIT_ALPHA,
    logistic,
    logistic_derivative,
    logistic_derivative_mean_first_order,
    logistic_derivative_mean_second_order,
    logistic_gaussian_mean,
    nwgm_identity_gap,
    relu_finite_gap,
    relu_gaussian_mean,
    relu_gaussian_second_moment,
    relu_uniform_mean,
)

__all__ = [
    # submodules
    "means", "linear", "transfer", "montecarlo", "approximations", "errors",
    # means (§8)
    "summary", "EnsembleSummary", "expectation", "geometric_mean", "log_geometric_mean",
    "complement_geometric_mean", "nwgm", "variance", "mean_absolute_deviation",
    # ensemble errors (§4.3, §6)
    "normalized_exponential_nwgm", "ensemble_errors", "softmax_ensemble_errors", "EnsembleErrors", "LOSSES",
    # approximations and bounds (§8, App. B)
    "geometric_mean_second_order", "nwgm_second_order", "nwgm_error_second_order", "nwgm_second_order_mean",
    "nwgm_second_order_boundary", "nwgm_error_boundary", "nwgm_bound_variance", "nwgm_bound_variance_free",
    "nwgm_bound_simple", "nwgm_bound_boundary", "nwgm_bound_boundary_variance", "BOUND_ARGMAX_VARIANCE_FREE",
    "BOUND_ARGMAX_SIMPLE", "cartwright_field_bounds", "ky_fan_log_ratios",
    # exact linear ensembles (§2–3)
    "Moments", "linear_moments", "joint_linear_moments", "deep_linear_moments", "unit_dropout_moments",
    "affine_moments",
    "connection_dropout_moments", "connection_dropout_layer", "point_moments", "enumerate_subnetworks",
    "SubnetworkEnsemble",
    # transfer functions (§7, App. A, D, F)
    "relu_gaussian_mean", "relu_gaussian_second_moment", "relu_uniform_mean", "relu_finite_gap", "logistic",
    "logistic_derivative",
    "logistic_gaussian_mean", "PROBIT_ALPHA", "logistic_derivative_mean_first_order",
    "logistic_derivative_mean_second_order", "nwgm_identity_gap",
    # Monte Carlo (§9)
    "sample_ensemble", "subnetwork_outputs", "ensemble_activations", "MonteCarloResult", "UnitStats", "PairStats",
    "StreamingMoments",
    # variance and covariance estimates (§9.6)
    "variance_estimate_upper", "variance_estimate_zero", "product_estimate", "connected_product_estimate",
    "propagated_error", "logistic_derivative_mean",
]
