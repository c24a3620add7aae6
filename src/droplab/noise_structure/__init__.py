"""Dropout noise structure (Zhang, Zhou & Xu 2024): sampling, spectra, alignment, §8 theory.

See docs/landscape.md.
"""

from droplab.nn.noise_space import draw_noise  # re-exported: its home is droplab.nn
from droplab.noise_structure.sampling import (
    SAMPLER_METHODS,
    NoiseSamples,
    gradient_samples,
    trajectory_samples,
)
from droplab.noise_structure.spectra import (
    PCA,
    Alignment,
    CovarianceOperator,
    PowerLawFit,
    alignment,
    detrend,
    pca,
    power_law_fit,
    projected_variance,
)
from droplab.noise_structure.theory import (
    ExactMoments,
    Orderings,
    TheoryMatrices,
    exact_dropout_moments,
    example_gradient_samples,
    half_mse,
    matrix_agreement,
    proposition1,
    theorem_matrices,
)

__all__ = [
    # sampling the noise (§3.4)
    "gradient_samples", "trajectory_samples", "draw_noise", "NoiseSamples",
    "SAMPLER_METHODS",
    # spectra and relations (§3.5-3.6)
    "pca", "PCA", "detrend", "projected_variance", "CovarianceOperator", "alignment", "Alignment",
    "power_law_fit", "PowerLawFit",
    # theory (§8, App. B)
    "theorem_matrices", "TheoryMatrices", "proposition1", "Orderings", "exact_dropout_moments",
    "ExactMoments", "example_gradient_samples", "matrix_agreement", "half_mse",
]
