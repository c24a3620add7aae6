"""Models: dropout kind and placement are arguments."""

from droplab.models.activations import ACTIVATIONS, Logistic, make_activation
from droplab.models.allcnn import NOISE_KINDS, AllCNN, check_noise, make_noise, size_sweep_fnn
from droplab.models.fnn import FNN
from droplab.models.resnet import ResNet20
from droplab.models.transformer import Transformer, sequence_loss
from droplab.models.vae import VAE, negative_elbo
from droplab.models.vgg import VGG9

__all__ = [
    # fully connected
    "FNN", "Logistic", "ACTIVATIONS", "make_activation",
    # convolutional
    "VGG9", "ResNet20",
    # Achille & Soatto 2017: Table 2, Fig. 3(a), §5
    "AllCNN", "size_sweep_fnn", "make_noise", "check_noise", "NOISE_KINDS", "VAE", "negative_elbo",
    # sequence to sequence
    "Transformer", "sequence_loss",
]
