"""Fully connected nets with any widths, activation and dropout placement."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from torch import Tensor, nn

from droplab._checks import check_int, check_probability
from droplab.models.activations import make_activation
from droplab.nn.kinds import NoiseFactory, check_noise, make_noise, places_noise


class FNN(nn.Module):
    """``widths[0] → widths[1] → … → widths[-1]`` with an activation after each hidden layer.

    The models' dropout convention (:mod:`droplab.nn.kinds`): ``dropout`` is the **drop**
    probability p (the papers' keep probability is ``1 − p``), ``noise`` the kind, a name of
    :data:`droplab.nn.NOISE_KINDS` (default ``"bernoulli"``) or a factory ``p -> nn.Module``
    (``torch.nn.Dropout``, ``lambda p: BernoulliDropout(p, scale="none")``). A float ``dropout``
    puts a layer after every hidden activation (none when p = 0, unless the kind has no drop
    probability); a mapping places them: position 0 is the input, position k (1 ≤ k ≤ number of
    hidden layers) is after hidden layer k's activation, and every listed position gets a layer.
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
                 dropout: float | Mapping[int, float] = 0.0, noise: str | NoiseFactory = "bernoulli",
                 bias: bool = True, gain: float = 1.0, c: float = 1.0) -> None:
        super().__init__()
        widths = list(widths)
        if len(widths) < 2:
            raise ValueError(f"widths must list at least input and output sizes, got {widths}")
        for i, w in enumerate(widths):
            check_int(f"widths[{i}]", w, minimum=1)
        n_hidden = len(widths) - 2
        if isinstance(dropout, Mapping):
            check_noise(noise, 0.0)
            for pos, p in dropout.items():
                if not isinstance(pos, int) or not 0 <= pos <= n_hidden:
                    raise ValueError(f"dropout position must be 0 (input) .. {n_hidden} (last hidden), got {pos!r}")
                check_probability(f"dropout[{pos}]", p)
            drops = dict(dropout)
        else:
            check_probability("dropout", dropout)
            drops = {k: dropout for k in range(1, n_hidden + 1)} if places_noise(noise, dropout) else {}
        layers: list[nn.Module] = []
        if 0 in drops:
            layers.append(make_noise(noise, widths[0], activation=activation, p=drops[0]))
        for k in range(len(widths) - 1):
            layers.append(nn.Linear(widths[k], widths[k + 1], bias=bias))
            if k < n_hidden:
                layers.append(make_activation(activation, gain=gain, c=c))
                if k + 1 in drops:
                    layers.append(make_noise(noise, widths[k + 1], activation=activation, p=drops[k + 1]))
        self.widths = widths
        self.net = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x.flatten(1))

    @property
    def linears(self) -> list[nn.Linear]:
        """The linear layers in order."""
        return [m for m in self.net if isinstance(m, nn.Linear)]
