"""All-CNN-32 and All-CNN-96 (Achille & Soatto 2017, Table 2) and the FNN of their Fig. 3(a), with the
dropout kind chosen by name.

Table 2 follows Springenberg et al. 2014 with batch normalization before every activation; a
dropout layer follows each stride-2 block. ``width`` multiplies every channel count but the
classes' (the paper's "percentage of the filters", Fig. 3(b)). Kinds (:data:`NOISE_KINDS`):

=================  ==============================================================================
``none``           no noise layer
``bernoulli``      binary dropout, drop probability ``p``
``lognormal``      constant log-normal noise logN(0, α²) with α = ``max_alpha`` ("Log-normal", Fig. 3)
``information``    Information Dropout (§4), α(x) < ``max_alpha`` per sample, unit and position,
                   from a 1×1 head on the activation; prior log-uniform for ReLU (Proposition 1),
                   log-normal with learned μ, σ for Softplus (Proposition 2)
``variational``    Variational Dropout (Kingma et al. 2015), learned α per unit (channel), α ≤ 1
=================  ==============================================================================

The α cap: the paper's text says α(x) < 0.5 (§6), the default here; the authors' public code caps
at 0.7 (CIFAR-10) and 1.0 (Cluttered MNIST). The experiments' ``paper`` profiles use the text's 0.5.
"""

from __future__ import annotations

from torch import Tensor, nn

from droplab._checks import check_choice, check_int, check_positive, check_probability
from droplab.models.activations import make_activation
from droplab.models.fnn import FNN
from droplab.nn import BernoulliDropout, InformationDropout, LogNormalDropout, VariationalDropout

NOISE_KINDS = ("none", "bernoulli", "lognormal", "information", "variational")
CNN_ACTIVATIONS = ("relu", "softplus")

# (kernel, channels, stride) per conv; "D" marks a dropout layer (Table 2)
ALLCNN_32 = ((3, 96, 1), (3, 96, 1), (3, 96, 2), "D", (3, 192, 1), (3, 192, 1), (3, 192, 2), "D",
             (3, 192, 1), (1, 192, 1), (1, None, 1))
ALLCNN_96 = ((3, 32, 1), (3, 32, 1), (3, 32, 2), "D", (3, 64, 1), (3, 64, 1), (3, 64, 2), "D",
             (3, 96, 1), (3, 96, 1), (3, 96, 2), "D", (3, 192, 1), (3, 192, 1), (3, 192, 2), "D",
             (3, 192, 1), (1, 192, 1), (1, None, 1))
PLANS = {"allcnn32": ALLCNN_32, "allcnn96": ALLCNN_96}


def check_noise(kind: str, p: float, max_alpha: float) -> None:
    """One-line errors for a bad dropout kind, drop probability or α cap (≤ 0)."""
    check_choice("dropout kind", kind, NOISE_KINDS)
    check_probability("p", p)
    check_positive("max_alpha", max_alpha)


def make_noise(kind: str, units: int, *, activation: str = "relu", p: float = 0.5, max_alpha: float = 0.5,
               spatial: bool = False) -> nn.Module:
    """The noise layer of ``kind`` for ``units`` features (channels when ``spatial``: α per position)."""
    check_noise(kind, p, max_alpha)
    if kind == "none":
        return nn.Identity()
    if kind == "bernoulli":
        return BernoulliDropout(p)
    if kind == "lognormal":
        return LogNormalDropout(max_alpha)
    if kind == "information":
        check_choice("activation (Information Dropout's prior follows it)", activation, CNN_ACTIVATIONS)
        prior = "log-uniform" if activation == "relu" else "log-normal"
        return InformationDropout(units, max_alpha=max_alpha, prior=prior, conv=spatial)
    return VariationalDropout(units, conv=spatial)


class AllCNN(nn.Module):
    """All-CNN-32 (``plan="allcnn32"``) or All-CNN-96 (``"allcnn96"``) of Table 2.

    Each conv is followed by batch normalization and the activation (ReLU or Softplus), a noise layer
    of ``dropout`` kind after each stride-2 block, then spatial average → logits.

    >>> import torch
    >>> AllCNN("allcnn32", in_channels=1, width=0.1, dropout="bernoulli")(torch.zeros(2, 1, 16, 16)).shape
    torch.Size([2, 10])
    """

    def __init__(self, plan: str = "allcnn32", n_classes: int = 10, *, in_channels: int = 3, width: float = 1.0,
                 activation: str = "relu", dropout: str = "none", p: float = 0.5, max_alpha: float = 0.5) -> None:
        super().__init__()
        check_choice("plan", plan, tuple(PLANS))
        check_int("n_classes", n_classes, minimum=2)
        check_int("in_channels", in_channels, minimum=1)
        check_positive("width", width)
        check_choice("activation", activation, CNN_ACTIVATIONS)
        check_noise(dropout, p, max_alpha)
        layers: list[nn.Module] = []
        channels = in_channels
        for item in PLANS[plan]:
            if item == "D":
                if dropout != "none":
                    layers.append(make_noise(dropout, channels, activation=activation, p=p,
                                             max_alpha=max_alpha, spatial=True))
                continue
            k, out, stride = item
            out = n_classes if out is None else max(1, round(out * width))
            layers += [nn.Conv2d(channels, out, k, stride, padding=k // 2, bias=False), nn.BatchNorm2d(out),
                       make_activation(activation)]
            channels = out
        self.plan, self.dropout = plan, dropout
        self.features = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.features(x).mean((2, 3))  # (B, n_classes): spatial average of the last 1×1 conv


def size_sweep_fnn(in_features: int, hidden: int, n_classes: int = 10, *, dropout: str = "none",
                   activation: str = "relu", p: float = 0.5, max_alpha: float = 0.5, n_hidden: int = 3) -> FNN:
    """Fig. 3(a)'s fully connected net: ``n_hidden`` (3) hidden layers of ``hidden`` units, the noise
    layer of kind ``dropout`` after each hidden activation.

    >>> size_sweep_fnn(64, 16, dropout="bernoulli").widths
    [64, 16, 16, 16, 10]
    """
    check_int("hidden", hidden, minimum=1)
    check_int("n_hidden", n_hidden, minimum=1)
    check_noise(dropout, p, max_alpha)
    positions = {} if dropout == "none" else {k: p for k in range(1, n_hidden + 1)}
    return FNN([in_features, *[hidden] * n_hidden, n_classes], activation, dropout=positions,
               dropout_layer=lambda q: make_noise(dropout, hidden, activation=activation, p=q, max_alpha=max_alpha))
