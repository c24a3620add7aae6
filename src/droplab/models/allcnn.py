"""All-CNN-32 and All-CNN-96 (Achille & Soatto 2017, Table 2) and the FNN of their Fig. 3(a), with the
dropout kind chosen by name (:mod:`droplab.nn.kinds`).

Table 2 follows Springenberg et al. 2014 with batch normalization before every activation; a
dropout layer follows each stride-2 block. ``width`` multiplies every channel count but the
classes' (the paper's "percentage of the filters", Fig. 3(b)).

The α cap: the paper's text says α(x) < 0.5 (§6), the default here; the authors' public code caps
at 0.7 (CIFAR-10) and 1.0 (Cluttered MNIST). The experiments' ``paper`` profiles use the text's 0.5.
"""

from __future__ import annotations

from torch import Tensor, nn

from droplab._checks import check_choice, check_int, check_positive, check_probability
from droplab.models.activations import make_activation
from droplab.models.fnn import FNN
from droplab.nn.kinds import NoiseFactory, check_noise, make_noise, places_noise

CNN_ACTIVATIONS = ("relu", "softplus")

# (kernel, channels, stride) per conv; "D" marks a dropout layer (Table 2)
ALLCNN_32 = ((3, 96, 1), (3, 96, 1), (3, 96, 2), "D", (3, 192, 1), (3, 192, 1), (3, 192, 2), "D",
             (3, 192, 1), (1, 192, 1), (1, None, 1))
ALLCNN_96 = ((3, 32, 1), (3, 32, 1), (3, 32, 2), "D", (3, 64, 1), (3, 64, 1), (3, 64, 2), "D",
             (3, 96, 1), (3, 96, 1), (3, 96, 2), "D", (3, 192, 1), (3, 192, 1), (3, 192, 2), "D",
             (3, 192, 1), (1, 192, 1), (1, None, 1))
PLANS = {"allcnn32": ALLCNN_32, "allcnn96": ALLCNN_96}


class AllCNN(nn.Module):
    """All-CNN-32 (``plan="allcnn32"``) or All-CNN-96 (``"allcnn96"``) of Table 2.

    Each conv is followed by batch normalization and the activation (ReLU or Softplus), a noise layer
    of kind ``noise`` with drop probability ``dropout`` after each stride-2 block (the models'
    convention, :mod:`droplab.nn.kinds`; ``max_alpha`` caps α for the log-normal kinds), then
    spatial average → logits.

    >>> import torch
    >>> AllCNN("allcnn32", in_channels=1, width=0.1, dropout=0.5)(torch.zeros(2, 1, 16, 16)).shape
    torch.Size([2, 10])
    """

    def __init__(self, plan: str = "allcnn32", n_classes: int = 10, *, in_channels: int = 3, width: float = 1.0,
                 activation: str = "relu", dropout: float = 0.0, noise: str | NoiseFactory = "bernoulli",
                 max_alpha: float = 0.5) -> None:
        super().__init__()
        check_choice("plan", plan, tuple(PLANS))
        check_int("n_classes", n_classes, minimum=2)
        check_int("in_channels", in_channels, minimum=1)
        check_positive("width", width)
        check_choice("activation", activation, CNN_ACTIVATIONS)
        check_probability("dropout", dropout)
        check_noise(noise, dropout, max_alpha)
        place = places_noise(noise, dropout)
        layers: list[nn.Module] = []
        channels = in_channels
        for item in PLANS[plan]:
            if item == "D":
                if place:
                    layers.append(make_noise(noise, channels, activation=activation, p=dropout,
                                             max_alpha=max_alpha, spatial=True))
                continue
            k, out, stride = item
            out = n_classes if out is None else max(1, round(out * width))
            layers += [nn.Conv2d(channels, out, k, stride, padding=k // 2, bias=False), nn.BatchNorm2d(out),
                       make_activation(activation)]
            channels = out
        self.plan = plan
        self.features = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.features(x).mean((2, 3))  # (B, n_classes): spatial average of the last 1×1 conv


def size_sweep_fnn(in_features: int, hidden: int, n_classes: int = 10, *, dropout: float = 0.0,
                   noise: str | NoiseFactory = "bernoulli", activation: str = "relu", max_alpha: float = 0.5,
                   n_hidden: int = 3) -> FNN:
    """Fig. 3(a)'s fully connected net: ``n_hidden`` (3) hidden layers of ``hidden`` units, a noise
    layer of kind ``noise`` with drop probability ``dropout`` after each hidden activation.

    >>> size_sweep_fnn(64, 16, dropout=0.5).widths
    [64, 16, 16, 16, 10]
    """
    check_int("hidden", hidden, minimum=1)
    check_int("n_hidden", n_hidden, minimum=1)
    check_probability("dropout", dropout)
    check_noise(noise, dropout, max_alpha)
    positions = {k: dropout for k in range(1, n_hidden + 1)} if places_noise(noise, dropout) else {}
    return FNN([in_features, *[hidden] * n_hidden, n_classes], activation, dropout=positions,
               noise=lambda q: make_noise(noise, hidden, activation=activation, p=q, max_alpha=max_alpha))
