"""Models: dropout kind and placement are arguments."""

from droplab.models.activations import ACTIVATIONS, Logistic, make_activation
from droplab.models.fnn import FNN

__all__ = ["FNN", "Logistic", "ACTIVATIONS", "make_activation"]
