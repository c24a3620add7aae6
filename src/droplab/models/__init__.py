"""Models: dropout kind and placement are arguments."""

from droplab.models.activations import ACTIVATIONS, Logistic, make_activation
from droplab.models.fnn import FNN
from droplab.models.resnet import ResNet20
from droplab.models.vgg import VGG9

__all__ = [
    # fully connected
    "FNN", "Logistic", "ACTIVATIONS", "make_activation",
    # convolutional
    "VGG9", "ResNet20",
]
