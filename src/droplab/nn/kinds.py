"""Noise layers by name: the registry every model builds its dropout layers from.

Every droplab model takes the same two arguments (see ``docs/noise-layers.md``):

* ``dropout`` — the drop probability p of each noise layer (a float for every position of the
  architecture; :class:`droplab.models.FNN` also takes a mapping position → p); no layers when 0;
* ``noise`` — the kind: a name of :data:`NOISE_KINDS` or a factory ``p -> nn.Module`` (a layer
  class such as ``torch.nn.Dropout`` or ``lambda p: BernoulliDropout(p, scale="none")``).

=================  ==============================================================================
``none``           no noise layer
``bernoulli``      binary dropout, drop probability ``p`` (Baldi & Sadowski 2014, eq. 1)
``gaussian``       N(1, σ²) noise with σ² = p/(1 − p), Bernoulli's variance (Srivastava et al. 2014)
``lognormal``      constant log-normal noise logN(0, α²) with α = ``max_alpha`` (Achille & Soatto, Fig. 3)
``information``    Information Dropout (Achille & Soatto 2017, §4), α(x) < ``max_alpha`` per sample
                   and unit; prior log-uniform for ReLU (Proposition 1), log-normal with learned
                   μ, σ for Softplus (Proposition 2)
``variational``    Variational Dropout (Kingma et al. 2015), learned α per unit (channel), α ≤ 1
=================  ==============================================================================

``lognormal``, ``information`` and ``variational`` have no drop probability (:data:`FREE_KINDS`): their
noise level is ``max_alpha`` or learned, and a model places them whatever ``dropout`` is; the other
kinds (and factories) are placed where p > 0 (:func:`places_noise`).
"""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from droplab._checks import check_choice, check_positive, check_probability
from droplab.nn.bernoulli import BernoulliDropout
from droplab.nn.gaussian import GaussianDropout
from droplab.nn.information import InformationDropout
from droplab.nn.lognormal import LogNormalDropout
from droplab.nn.variational import VariationalDropout

NOISE_KINDS = ("none", "bernoulli", "gaussian", "lognormal", "information", "variational")
FREE_KINDS = ("lognormal", "information", "variational")
INFORMATION_ACTIVATIONS = ("relu", "softplus")

NoiseFactory = Callable[[float], nn.Module]
"""Builds a noise layer from its drop probability p (``torch.nn.Dropout`` is one)."""


def check_noise(kind: str | NoiseFactory, p: float, max_alpha: float = 0.5) -> None:
    """One-line errors for a bad dropout kind (a name of :data:`NOISE_KINDS` or a callable), drop
    probability or α cap (≤ 0)."""
    if not callable(kind):
        check_choice("noise: dropout kind", kind, NOISE_KINDS)
    check_probability("p", p)
    check_positive("max_alpha", max_alpha)


def places_noise(kind: str | NoiseFactory, p: float) -> bool:
    """Whether a model with drop probability ``p`` of kind ``kind`` puts a noise layer at its positions:
    never for ``"none"``, always for the kinds without a drop probability, else when p > 0."""
    check_noise(kind, p)
    if callable(kind):
        return p > 0
    return kind != "none" and (p > 0 or kind in FREE_KINDS)


def make_noise(kind: str | NoiseFactory, units: int, *, activation: str = "relu", p: float = 0.5,
               max_alpha: float = 0.5, spatial: bool = False) -> nn.Module:
    """The noise layer of ``kind`` for ``units`` features (channels in dim 1 when ``spatial``: one mask
    per channel and position; α per position for Information Dropout).

    A callable ``kind`` is a :data:`NoiseFactory`: ``kind(p)``.

    >>> make_noise("bernoulli", 8, p=0.2)
    BernoulliDropout(p=0.2, scale='inverted')
    """
    check_noise(kind, p, max_alpha)
    if callable(kind):
        return kind(p)
    if kind == "none":
        return nn.Identity()
    if kind == "bernoulli":
        return BernoulliDropout(p)
    if kind == "gaussian":
        return GaussianDropout(p=p)
    if kind == "lognormal":
        return LogNormalDropout(max_alpha)
    if kind == "information":
        check_choice("activation (Information Dropout's prior follows it)", activation, INFORMATION_ACTIVATIONS)
        prior = "log-uniform" if activation == "relu" else "log-normal"
        return InformationDropout(units, max_alpha=max_alpha, prior=prior, conv=spatial)
    return VariationalDropout(units, conv=spatial)
