"""VGG-9 (Li et al. 2017's CIFAR variant) with dropout after each pooling layer (Zhang, Zhou & Xu 2024, Fig. 1(b)).

Seven 3×3 convolutions (64, 64, M, 128, 128, M, 256, 256, 256, M), each followed by batch
normalization and ReLU, then a fully connected layer to 256 units (BN, ReLU) and the classifier:
nine weight layers. ``width`` scales every channel count (for CPU-scale runs); ``dropout`` is the
drop probability of the noise layer of kind ``noise`` after each pooling layer (the models'
convention, :mod:`droplab.nn.kinds`; the paper's "dropout rate 0.8" is a keep probability:
``dropout = 0.2``).
"""

from __future__ import annotations

from torch import Tensor, nn

from droplab._checks import check_int, check_positive, check_probability
from droplab.nn.kinds import NoiseFactory, make_noise, places_noise

VGG9_PLAN = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M")


class VGG9(nn.Module):
    """VGG-9 for ``in_channels`` × ``image_size`` × ``image_size`` inputs and ``n_classes`` outputs.

    >>> import torch
    >>> VGG9(n_classes=10, in_channels=1, image_size=8, width=0.125, dropout=0.2)(torch.zeros(2, 1, 8, 8)).shape
    torch.Size([2, 10])
    """

    def __init__(self, n_classes: int = 10, *, in_channels: int = 3, image_size: int = 32, width: float = 1.0,
                 dropout: float = 0.0, noise: str | NoiseFactory = "bernoulli") -> None:
        super().__init__()
        check_int("n_classes", n_classes, minimum=2)
        check_int("image_size", image_size, minimum=8)
        check_positive("width", width)
        check_probability("dropout", dropout)
        place = places_noise(noise, dropout)
        layers: list[nn.Module] = []
        channels, size = in_channels, image_size
        for item in VGG9_PLAN:
            if item == "M":
                layers.append(nn.MaxPool2d(2, 2, ceil_mode=True))
                size = -(-size // 2)
                if place:
                    layers.append(make_noise(noise, channels, p=dropout, spatial=True))
            else:
                out = max(1, round(int(item) * width))
                layers += [nn.Conv2d(channels, out, 3, padding=1), nn.BatchNorm2d(out), nn.ReLU()]
                channels = out
        hidden = max(1, round(256 * width))
        self.features = nn.Sequential(*layers)
        self.fc = nn.Sequential(nn.Linear(channels * size * size, hidden), nn.BatchNorm1d(hidden), nn.ReLU())
        self.classifier = nn.Linear(hidden, n_classes)

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(self.fc(self.features(x).flatten(1)))
