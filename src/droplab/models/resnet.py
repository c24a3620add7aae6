"""ResNet-20 for CIFAR (He et al. 2016) with dropout after the convolutions (Zhang, Zhou & Xu 2024, Fig. 1(c)).

Three stages of three basic blocks (16, 32, 64 channels × ``width``), identity shortcuts with
a 1×1 projection where the shape changes, global average pooling and a linear classifier.
A noise layer follows each convolution's activation inside the blocks (the paper: "dropout layers
after the convolutional layers", rate 0.8 = keep, so ``dropout = 0.2``); ``dropout`` and ``noise``
follow the models' convention (:mod:`droplab.nn.kinds`).
"""

from __future__ import annotations

from collections.abc import Callable

from torch import Tensor, nn

from droplab._checks import check_int, check_positive, check_probability
from droplab.nn.kinds import NoiseFactory, make_noise, places_noise

Layer = Callable[[int], nn.Module]  # channels -> the model's noise layer (or the identity)


class BasicBlock(nn.Module):
    """conv-BN-ReLU-[drop]-conv-BN + shortcut, ReLU, [drop]."""

    def __init__(self, cin: int, cout: int, stride: int, layer: Layer) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.drop1, self.drop2 = layer(cout), layer(cout)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x: Tensor) -> Tensor:
        out = self.drop1(self.bn1(self.conv1(x)).relu())
        out = self.bn2(self.conv2(out))
        return self.drop2((out + self.shortcut(x)).relu())


class ResNet20(nn.Module):
    """ResNet-20: 1 + 3·3·2 convolutions + 1 linear = 20 weight layers.

    >>> import torch
    >>> ResNet20(n_classes=100, in_channels=1, width=0.25, dropout=0.2)(torch.zeros(2, 1, 8, 8)).shape
    torch.Size([2, 100])
    """

    def __init__(self, n_classes: int = 100, *, in_channels: int = 3, width: float = 1.0, dropout: float = 0.0,
                 noise: str | NoiseFactory = "bernoulli") -> None:
        super().__init__()
        check_int("n_classes", n_classes, minimum=2)
        check_positive("width", width)
        check_probability("dropout", dropout)
        place = places_noise(noise, dropout)

        def layer(channels: int) -> nn.Module:
            return make_noise(noise, channels, p=dropout, spatial=True) if place else nn.Identity()

        widths = [max(1, round(c * width)) for c in (16, 32, 64)]
        self.stem = nn.Sequential(nn.Conv2d(in_channels, widths[0], 3, 1, 1, bias=False), nn.BatchNorm2d(widths[0]),
                                  nn.ReLU())
        blocks, cin = [], widths[0]
        for stage, cout in enumerate(widths):
            for i in range(3):
                blocks.append(BasicBlock(cin, cout, 2 if (stage > 0 and i == 0) else 1, layer))
                cin = cout
        self.blocks = nn.Sequential(*blocks)
        self.classifier = nn.Linear(cin, n_classes)

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(self.blocks(self.stem(x)).mean((2, 3)))
