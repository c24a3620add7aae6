"""Functional twins of the droplab noise layers: stateless, validating, vectorized.

One contract for every function::

    f(x, <law parameters>, training=True, *, generator=None, noise=None, return_noise=False)

returns ``out``, or ``(out, noise)`` with ``return_noise=True``. ``noise`` replays a given noise
instead of drawing (what :func:`droplab.nn.replay_masks` hands the layers); the noise returned is
the one applied, in the variable the layer records (the multiplicative noise, except where a
reparametrization variable keeps gradients exact: the standard-normal z of Information and
variational dropout, the pre-activation ζ of :func:`variational_linear`, the keep mask of
:func:`dropin`, the spikes Δ, the backward factor). ``training=False`` gives the deterministic
expectation (the ensemble layer); its returned noise is the mean multiplier. The input must be a
floating-point tensor (as for ``torch.nn.functional.dropout``); NaN propagates as NaN. Each
:class:`droplab.nn.NoiseLayer`'s ``forward`` is one call of its function here; the laws they draw
from are in :mod:`droplab.nn.laws`.

Transforms: every function is traceable by ``torch.compile`` (tested with ``fullgraph=True``
for Bernoulli and Gaussian dropout). Under ``torch.func`` transforms (``grad``, ``vmap``,
``jacrev``) the deterministic path (``training=False``) and any function given its noise work;
fresh sampling inside ``vmap`` needs ``randomness="different"`` or ``"same"``.
"""

from droplab.nn.functional.connections import dropconnect_linear, spiking_linear, variational_linear
from droplab.nn.functional.units import (
    backpercolation,
    bernoulli_dropout,
    dropin,
    gaussian_dropout,
    information_dropout,
    lognormal_dropout,
    ou_dropout,
    stochastic_spiking,
    variational_dropout,
)

__all__ = [
    "backpercolation",
    "bernoulli_dropout",
    "dropconnect_linear",
    "dropin",
    "gaussian_dropout",
    "information_dropout",
    "lognormal_dropout",
    "ou_dropout",
    "spiking_linear",
    "stochastic_spiking",
    "variational_dropout",
    "variational_linear",
]
