"""Fully connected nets with any widths, activation and dropout placement."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from torch import Tensor, nn

from droplab._checks import check_int, check_probability
from droplab.models.activations import make_activation
from droplab.nn import BernoulliDropout

DropoutFactory = Callable[[float], nn.Module]


class FNN(nn.Module):
    """``widths[0] → widths[1] → … → widths[-1]`` with an activation after each hidden layer.

    ``dropout`` maps a position to a **drop** probability: position 0 is the input, position k
    (1 ≤ k ≤ number of hidden layers) is after hidden layer k's activation. The papers' keep
    probability is ``1 − p``. ``dropout_layer(p)`` builds each noise layer (default
    :class:`droplab.nn.BernoulliDropout`; any droplab noise layer or ``torch.nn.Dropout`` fits).
    The layers are in ``self.net`` (an ``nn.Sequential``), so hooks and names are predictable.

    >>> FNN([64, 32, 10], dropout={1: 0.5})
    FNN(
      (net): Sequential(
        (0): Linear(in_features=64, out_features=32, bias=True)
        (1): ReLU()
        (2): BernoulliDropout(p=0.5, scale='inverted')
        (3): Linear(in_features=32, out_features=10, bias=True)
      )
    )
    """

    def __init__(self, widths: Sequence[int], activation: str = "relu", *,
                 dropout: Mapping[int, float] | None = None,
                 dropout_layer: DropoutFactory = BernoulliDropout, bias: bool = True,
                 gain: float = 1.0, c: float = 1.0) -> None:
        super().__init__()
        widths = list(widths)
        if len(widths) < 2:
            raise ValueError(f"widths must list at least input and output sizes, got {widths}")
        for i, w in enumerate(widths):
            check_int(f"widths[{i}]", w, minimum=1)
        n_hidden = len(widths) - 2
        dropout = dict(dropout or {})
        for pos, p in dropout.items():
            if not isinstance(pos, int) or not 0 <= pos <= n_hidden:
                raise ValueError(f"dropout position must be 0 (input) .. {n_hidden} (last hidden), got {pos!r}")
            check_probability(f"dropout[{pos}]", p)
        layers: list[nn.Module] = []
        if 0 in dropout:
            layers.append(dropout_layer(dropout[0]))
        for k in range(len(widths) - 1):
            layers.append(nn.Linear(widths[k], widths[k + 1], bias=bias))
            if k < n_hidden:
                layers.append(make_activation(activation, gain=gain, c=c))
                if k + 1 in dropout:
                    layers.append(dropout_layer(dropout[k + 1]))
        self.widths = widths
        self.net = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x.flatten(1))

    @property
    def linears(self) -> list[nn.Linear]:
        """The linear layers in order."""
        return [m for m in self.net if isinstance(m, nn.Linear)]
