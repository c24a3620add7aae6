"""Figures without pyplot: no global backend, no figure manager to close, safe in worker processes."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def subplots(nrows: int = 1, ncols: int = 1, *, figsize: tuple[float, float] | None = None,
             layout: str | None = None, **kwargs: Any) -> tuple[Figure, Any]:
    """``plt.subplots`` without pyplot: a :class:`~matplotlib.figure.Figure` and its axes.

    >>> fig, ax = subplots(1, 2, figsize=(6, 2))
    >>> len(ax)
    2
    """
    from matplotlib.figure import Figure  # imported on first use: listing claims needs no matplotlib

    fig = Figure(figsize=figsize, layout=layout)
    return fig, fig.subplots(nrows, ncols, **kwargs)
