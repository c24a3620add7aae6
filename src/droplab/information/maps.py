"""Where Information Dropout lets information through (Achille & Soatto 2017, Fig. 2).

The KL of an Information Dropout layer at one spatial position, summed over channels, measures how
much information about the input flows through that position (eq. 2's per-sample KL term).
:func:`box_fraction` asks how much of that KL mass lies on the digit: the fraction of KL inside the
digit's box against the fraction of the map's area inside it (a map that ignored the digit would have
the two equal on average).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

from droplab._checks import check_int
from droplab.nn import InformationDropout
from droplab.nn.modes import evaluation


def information_layers(model: nn.Module) -> dict[str, InformationDropout]:
    """The model's Information Dropout layers by qualified name; a one-line error if it has none."""
    layers = {name: m for name, m in model.named_modules() if isinstance(m, InformationDropout)}
    if not layers:
        raise ValueError("model has no droplab.nn.InformationDropout layers, so it has no KL to map; "
                         "build it with noise='information'")
    return layers


def _read_layers(model: nn.Module, x: Tensor, chunk: int,
                 read: Callable[[InformationDropout], Tensor]) -> dict[str, Tensor]:
    """Evaluation-mode passes over ``x`` in chunks (no noise drawn, the caller's modes restored),
    concatenating ``read(layer)`` of every Information Dropout layer after each pass."""
    check_int("chunk", chunk, minimum=1)
    layers = information_layers(model)
    out: dict[str, list[Tensor]] = {name: [] for name in layers}
    with evaluation(model), torch.no_grad():
        for i in range(0, len(x), chunk):
            model(x[i:i + chunk])
            for name, layer in layers.items():
                out[name].append(read(layer).detach())
    return {name: torch.cat(parts) for name, parts in out.items()}


def kl_maps(model: nn.Module, x: Tensor, *, chunk: int = 256) -> dict[str, Tensor]:
    """Per-position total KL (nats, summed over channels) of every Information Dropout layer on ``x``.

    Returns ``{layer name: (N, *spatial)}`` for convolutional layers (per unit for fully connected
    ones). The KL depends on α(x) and f(x) only, so it is computed in evaluation mode (batch norm on
    its running statistics, no noise drawn); the caller's modes are restored.
    """
    return _read_layers(model, x, chunk, lambda layer: layer.kl_map)


def alpha_values(model: nn.Module, x: Tensor, *, chunk: int = 256) -> dict[str, Tensor]:
    """α(x) of every Information Dropout layer on ``x``: ``{layer name: (N, *unit shape)}``.

    α(x) is the log-normal noise scale the layer chooses per sample, unit and position (§4); it
    depends on f(x) only, so it is read in evaluation mode (batch norm on its running statistics,
    no noise drawn), the caller's modes restored. Values lie in ``[min_alpha, max_alpha)``.

    >>> from droplab.nn import InformationDropout
    >>> net = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), InformationDropout(4, max_alpha=0.5))
    >>> a = alpha_values(net, torch.zeros(2, 3))["2"]; a.shape, bool((a < 0.5).all())
    (torch.Size([2, 4]), True)
    """
    return _read_layers(model, x, chunk, lambda layer: layer.last_alpha)


def box_fraction(maps: Tensor, boxes: Tensor, input_size: int) -> tuple[Tensor, Tensor]:
    """Per example, the fraction of the map's mass and of its cells inside the box.

    ``maps`` (N, h, w) are non-negative per-position values over an ``input_size``² image; cell
    (i, j) covers input pixels ``[i·s, (i+1)·s) × [j·s', (j+1)·s')`` with ``s = input_size / h``
    and counts as inside when its centre lies in ``boxes[n] = (top, left, bottom, right)``
    (exclusive ends, input pixels). Returns ``(mass_fraction, area_fraction)``, each (N,).

    >>> m = torch.zeros(1, 4, 4); m[0, 0, 0] = 3.0; m[0, 3, 3] = 1.0
    >>> box_fraction(m, torch.tensor([[0, 0, 4, 4]]), 8)
    (tensor([0.7500]), tensor([0.2500]))
    """
    if maps.dim() != 3:
        raise ValueError(f"maps must be shaped (N, h, w), got {tuple(maps.shape)}")
    n, h, w = maps.shape
    if boxes.shape != (n, 4):
        raise ValueError(f"boxes must be shaped ({n}, 4) to match maps, got {tuple(boxes.shape)}")
    if (maps < 0).any():
        raise ValueError("maps must be non-negative (KL per position)")
    rc = (torch.arange(h, dtype=torch.float64, device=maps.device) + 0.5) * input_size / h
    cc = (torch.arange(w, dtype=torch.float64, device=maps.device) + 0.5) * input_size / w
    b = boxes.double()
    rows = (rc >= b[:, 0:1]) & (rc < b[:, 2:3])  # (N, h)
    cols = (cc >= b[:, 1:2]) & (cc < b[:, 3:4])  # (N, w)
    inside = rows[:, :, None] & cols[:, None, :]
    m = maps.double()
    total = m.sum((1, 2))
    mass = torch.where(total > 0, (m * inside).sum((1, 2)) / total.clamp_min(1e-300), torch.nan)
    return mass.to(maps.dtype), inside.double().mean((1, 2)).to(maps.dtype)


def peak_in_box(maps: Tensor, boxes: Tensor, input_size: int) -> Tensor:
    """Per example, whether the map's largest cell lies inside the box (Fig. 2: "the KL-divergence alone
    provides enough information to localize the digit"); cells and boxes as in :func:`box_fraction`.

    A map that ignored the digit would peak inside the box as often as the box's share of the cells
    (``box_fraction``'s area fraction). Ties go to the first cell in row-major order. Returns (N,) bool.

    >>> m = torch.zeros(2, 4, 4); m[0, 0, 0] = 3.0; m[1, 3, 3] = 1.0
    >>> peak_in_box(m, torch.tensor([[0, 0, 4, 4], [0, 0, 4, 4]]), 8).tolist()
    [True, False]
    """
    box_fraction(maps, boxes, input_size)  # the same shape and sign checks
    n, h, w = maps.shape
    flat = maps.reshape(n, -1).argmax(1)
    r, c = flat // w, flat % w
    rc = (r.double() + 0.5) * input_size / h
    cc = (c.double() + 0.5) * input_size / w
    b = boxes.double()
    return (rc >= b[:, 0]) & (rc < b[:, 2]) & (cc >= b[:, 1]) & (cc < b[:, 3])
