"""The regularizer dropout adds: noise Laplacian, closed forms, expected dropout gradient.

Shalova–Peletier–Schlichting: Gaussian-dropout GD follows −½ P_Γ ∇_w Δ_η L̂(w, 0) on the zero-loss
manifold; Baldi & Sadowski 2014 §11: the expected dropout gradient is the ensemble gradient plus an
adaptive weight decay. See docs/regularization.md.
"""

from droplab.nn.noise_space import NoiseSpace, noise_space
from droplab.nn.noise_space import draw_noise as sample_noise  # the name this package has always exported
from droplab.regularization.closed_forms import (
    DeepLinearDecomposition,
    deep_linear_decomposition,
    linear_dropout_regularizer,
    linear_expected_gradient,
    relu_l2_laplacian,
    sigmoid_expected_gradient,
    sigmoid_regularizer,
    top_layer_expected_gradient,
)
from droplab.regularization.expected_gradient import (
    DecayAlignment,
    ExpectedGradient,
    bernoulli_mask_support,
    decay_alignment,
    ensemble_gradient,
    expected_dropout_gradient,
)
from droplab.regularization.explicit_implicit import MODES, explicit_implicit, train_decomposed
from droplab.regularization.laplacian import (
    NoiseHessianOperator,
    check_twice_differentiable,
    masked_loss,
    model_params,
    mse_gauss_newton_laplacian,
    noise_hessian_operator,
    noise_laplacian,
    noise_laplacian_diagonal,
    noise_laplacian_grad,
    noise_regularizer,
)

__all__ = [
    # noise Laplacian (SPS)
    "noise_laplacian",
    "noise_laplacian_diagonal",
    "noise_hessian_operator",
    "NoiseHessianOperator",
    "noise_laplacian_grad",
    "noise_regularizer",
    "mse_gauss_newton_laplacian",
    "check_twice_differentiable",
    "NoiseSpace",
    "noise_space",
    "masked_loss",
    "model_params",
    # closed forms (SPS example; Baldi & Sadowski §11)
    "relu_l2_laplacian",
    "linear_dropout_regularizer",
    "linear_expected_gradient",
    "deep_linear_decomposition",
    "DeepLinearDecomposition",
    "sigmoid_expected_gradient",
    "sigmoid_regularizer",
    "top_layer_expected_gradient",
    # expected dropout gradient
    "expected_dropout_gradient",
    "ensemble_gradient",
    "ExpectedGradient",
    "bernoulli_mask_support",
    "decay_alignment",
    "DecayAlignment",
    "sample_noise",
    # explicit vs implicit regularization (Wei, Kakade & Ma 2020)
    "explicit_implicit",
    "train_decomposed",
    "MODES",
]
