"""Information Dropout analyses (Achille & Soatto 2017): the §6 recipe, the priors' fit (Fig. 1) and
App. B's disentanglement."""

from droplab.information.disentangle import (
    Disentanglement,
    ib_lagrangian,
    ib_terms,
    optimal_sigma2,
    rotation,
    solve_disentanglement,
)
from droplab.information.maps import alpha_values, box_fraction, information_layers, kl_maps, peak_in_box
from droplab.information.priors import PriorFit, ks_log_normal, ks_log_uniform, noisy_activations, prior_fit
from droplab.information.recipe import InformationDropoutRecipe, ib_loss_fn, recompute_batchnorm

__all__ = [
    # §6 training recipe
    "InformationDropoutRecipe",
    "recompute_batchnorm",
    "ib_loss_fn",
    # Fig. 2: KL maps
    "kl_maps",
    "information_layers",
    "box_fraction",
    "peak_in_box",
    "alpha_values",
    # Fig. 1: priors
    "PriorFit",
    "prior_fit",
    "ks_log_normal",
    "ks_log_uniform",
    "noisy_activations",
    # App. B, Proposition 3
    "Disentanglement",
    "ib_terms",
    "ib_lagrangian",
    "optimal_sigma2",
    "rotation",
    "solve_disentanglement",
]
