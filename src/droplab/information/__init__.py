"""Information Dropout analyses (Achille & Soatto 2017): the §6 recipe and App. B's disentanglement."""

from droplab.information.disentangle import (
    Disentanglement,
    ib_lagrangian,
    ib_terms,
    optimal_sigma2,
    rotation,
    solve_disentanglement,
)
from droplab.information.recipe import InformationDropoutRecipe

__all__ = [
    # §6 training recipe
    "InformationDropoutRecipe",
    # App. B, Proposition 3
    "Disentanglement",
    "ib_terms",
    "ib_lagrangian",
    "optimal_sigma2",
    "rotation",
    "solve_disentanglement",
]
