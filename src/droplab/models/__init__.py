"""Models: dropout kind and placement are arguments.

Every model takes ``dropout`` (the drop probability p; :class:`FNN` also a mapping position → p) and
``noise`` (the kind: a name of :data:`droplab.nn.NOISE_KINDS` or a factory ``p -> nn.Module``);
see :mod:`droplab.nn.kinds`. ``make_noise``, ``check_noise`` and ``NOISE_KINDS`` are re-exported
from there.
"""

from droplab.models.activations import ACTIVATIONS, Logistic, make_activation
from droplab.models.allcnn import AllCNN, size_sweep_fnn
from droplab.models.fnn import FNN
from droplab.models.resnet import ResNet20
from droplab.models.transformer import Transformer, sequence_loss
from droplab.models.vae import VAE, negative_elbo
from droplab.models.vgg import VGG9
from droplab.nn.kinds import NOISE_KINDS, check_noise, make_noise

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
