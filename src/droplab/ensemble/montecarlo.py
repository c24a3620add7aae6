"""Monte Carlo over dropout sub-networks with streaming statistics (Baldi & Sadowski 2014, §9).

For fixed weights and inputs, :func:`sample_ensemble` draws K dropout masks of every droplab
noise layer of a model and records the activity ``O`` of chosen modules' units, batched over
masks and inputs (``chunk_size`` masks × N inputs per forward pass, no Python loop per sample).
Memory does not grow with K: per unit it keeps the mean and variance (streaming merge), the
sums of ``log O`` and ``log(1 − O)`` (→ G, G′ and NWGM, eqs. 35–37, when ``0 ≤ O ≤ 1``) and, for
requested unit pairs, the covariance. Alongside, the deterministic ensemble network's activity
``W`` (evaluation mode: weights scaled by keep probabilities, eq. 98) is recorded, so that
``E − NWGM`` (α, eq. 102), ``NWGM − W`` (β) and ``E − W`` (ε) are one subtraction away.

For a logistic unit (:class:`droplab.models.Logistic`, ``nn.Sigmoid``) the logs are taken from
its logit z in float64, ``log σ(z) = −softplus(−z)`` and ``log(1 − σ(z)) = −softplus(z)``: in
float32 σ(z) rounds to 1 for z ≳ 16.7 (and to 0 for z ≲ −104), so ``log(1 − O)`` would be −∞ and
the NWGM 1 or NaN. With the logit, ``log G − log G′`` is the sample mean of z, so NWGM = σ(E z).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from droplab._checks import check_batch, check_int, model_input
from droplab._hooks import record_inputs, record_outputs
from droplab.ensemble.stats import StreamingMoments
from droplab.models import Logistic
from droplab.nn.modes import evaluation, lend_generator, mc_mode, noise_layers

Pair = tuple[str, int, str, int]


@dataclass(frozen=True)
class UnitStats:
    """Monte Carlo statistics of one module's units, each ``(N, d)`` (N inputs, d units).

    ``mean`` estimates E(O) over sub-networks, ``variance`` Var(O) (unbiased), ``ensemble`` is
    W, the deterministic ensemble network's value. ``log_geometric_mean`` /
    ``log_complement_geometric_mean`` are the sample estimates of log G and log G′ (None when some
    recorded value left [0, 1]).
    """

    mean: Tensor
    variance: Tensor
    ensemble: Tensor
    log_geometric_mean: Tensor | None
    log_complement_geometric_mean: Tensor | None

    @property
    def nwgm(self) -> Tensor:
        """``G / (G + G′)`` of the samples (eq. 37); NaN where both 0 and 1 were sampled."""
        if self.log_geometric_mean is None or self.log_complement_geometric_mean is None:
            raise ValueError("nwgm needs activities in [0, 1]; this module produced values outside")
        return torch.sigmoid(self.log_geometric_mean - self.log_complement_geometric_mean)

    @property
    def geometric_mean(self) -> Tensor:
        if self.log_geometric_mean is None:
            raise ValueError("geometric_mean needs activities in [0, 1]; this module produced values outside")
        return self.log_geometric_mean.exp()


@dataclass(frozen=True)
class PairStats:
    """Monte Carlo covariance and product mean ``E(O_a O_b)`` of unit pairs, each ``(N, P)``."""

    pairs: list[Pair]
    covariance: Tensor
    product_mean: Tensor


@dataclass(frozen=True)
class MonteCarloResult:
    """What :func:`sample_ensemble` returns: per-module :class:`UnitStats`, pair statistics, K."""

    units: dict[str, UnitStats]
    pairs: PairStats | None
    n_samples: int


def _modules(model: nn.Module, names: Sequence[str]) -> dict[str, nn.Module]:
    named = dict(model.named_modules())
    unknown = [n for n in names if n not in named]
    if unknown or not names:
        raise ValueError(f"modules must name modules of the model; unknown {unknown}, "
                         f"known: {', '.join(n for n in named if n)}")
    return {n: named[n] for n in names}


def logistic_logit(module: nn.Module) -> Callable[[Tensor], Tensor] | None:
    """For a logistic activation, the map from its input S to the float64 logit z with output σ(z)
    (``Logistic``: z = λS − log c, eq. 27; ``nn.Sigmoid``: z = S); ``None`` for any other module."""
    if isinstance(module, nn.Sigmoid):
        return lambda s: s.to(torch.float64)
    if isinstance(module, Logistic):
        gain, offset = module.gain, math.log(module.c)
        return lambda s: gain * s.to(torch.float64) - offset
    return None


def _log_pair(o: Tensor, logit: Tensor | None) -> tuple[Tensor, Tensor]:
    """``(Σ_k log O, Σ_k log(1 − O))`` over the first dim, in float64 (from the logit when there is one)."""
    if logit is not None:
        return -nn.functional.softplus(-logit).sum(0), -nn.functional.softplus(logit).sum(0)
    return torch.log(o).sum(0).to(torch.float64), torch.log1p(-o).sum(0).to(torch.float64)


def _pair_side(pairs: list[Pair], at: int, device: torch.device) -> dict[str, tuple[Tensor, Tensor]]:
    """For one side of the pairs: per module, (positions among the pairs, unit indices), as index tensors."""
    groups: dict[str, tuple[list[int], list[int]]] = {}
    for pos, pair in enumerate(pairs):
        groups.setdefault(pair[at], ([], []))
        groups[pair[at]][0].append(pos)
        groups[pair[at]][1].append(pair[at + 1])
    return {name: (torch.tensor(p, device=device), torch.tensor(u, device=device)) for name, (p, u) in groups.items()}


def ensemble_activations(model: nn.Module, x: Tensor, modules: Sequence[str]) -> dict[str, Tensor]:
    """W: every named module's output ``(N, d)`` in the deterministic ensemble network (eq. 98).

    Evaluation mode replaces each noise by its mean (weight scaling); the caller's modes are restored.
    """
    check_batch("x", x)
    mods = _modules(model, modules)
    with record_outputs(mods) as out, evaluation(model), torch.no_grad(), model_input("x", x):
        model(x)
    return {name: out[name][-1].reshape(x.shape[0], -1) for name in modules}


def subnetwork_outputs(model: nn.Module, x: Tensor, modules: Sequence[str], n_samples: int, *,
                       generator: torch.Generator, chunk_size: int | None = None) -> dict[str, Tensor]:
    """The named modules' outputs in ``n_samples`` sampled dropout sub-networks per input, ``(K, N, d)`` each.

    What :func:`sample_ensemble` summarizes, kept whole (memory K·N·d) for statistics that need every
    member (medians, errors of combined outputs). Same conventions: independent masks per input,
    ``generator`` lent to the noise layers, every other module in evaluation mode, modes restored.
    """
    check_int("n_samples", n_samples, minimum=1)
    check_batch("x", x)
    if not noise_layers(model):
        raise ValueError("model has no droplab noise layer; subnetwork_outputs needs one to sample sub-networks")
    mods = _modules(model, modules)
    big_n = x.shape[0]
    chunk_size = max(1, 4096 // big_n) if chunk_size is None else chunk_size
    check_int("chunk_size", chunk_size, minimum=1)
    parts: dict[str, list[Tensor]] = {name: [] for name in modules}
    done = 0
    with record_outputs(mods) as rec, evaluation(model), mc_mode(model), lend_generator(model, generator), \
            torch.no_grad(), model_input("x", x):
        while done < n_samples:
            k = min(chunk_size, n_samples - done)
            model(x.unsqueeze(0).expand(k, *x.shape).reshape(k * big_n, *x.shape[1:]))
            for name, calls in rec.items():
                parts[name].append(calls.pop().reshape(k, big_n, -1))
            done += k
    return {name: torch.cat(p) for name, p in parts.items()}


def sample_ensemble(model: nn.Module, x: Tensor, modules: Sequence[str], n_samples: int, *,
                    generator: torch.Generator, pairs: Sequence[Pair] = (),
                    chunk_size: int | None = None) -> MonteCarloResult:
    """Sample ``n_samples`` dropout sub-networks per input and summarize the named modules' units.

    ``x`` is ``(N, ...)``; each input gets its own independent masks. ``modules`` are qualified
    module names (``dict(model.named_modules())``), whose outputs are flattened to ``(N, d)``.
    ``pairs`` lists ``(module_a, unit_a, module_b, unit_b)`` whose covariance is kept (a module
    of a pair need not be in ``modules``). ``generator`` drives every noise layer (it is lent to
    them for the call and their own generators restored). Every module other than the noise
    layers runs in evaluation mode; the caller's modes are restored. ``chunk_size`` masks are
    drawn per forward pass (default: about 4096 rows).

    The estimates are unbiased for E and Var; ``log G`` is the sample mean of ``log O``, whose
    standard error is ``std(log O)/√K``.
    """
    check_int("n_samples", n_samples, minimum=2)
    check_batch("x", x)
    layers = noise_layers(model)
    if not layers:
        raise ValueError("model has no droplab noise layer; sample_ensemble needs at least one to sample sub-networks")
    for layer in layers:
        if not layer.per_example:
            raise ValueError(f"a {type(layer).__name__} shares its noise along the batch dim 0; Monte Carlo over "
                             "masks needs independent noise per example")
    pairs = list(pairs)
    pair_names = sorted({p[0] for p in pairs} | {p[2] for p in pairs})
    mods = _modules(model, list(dict.fromkeys([*modules, *pair_names])))
    big_n = x.shape[0]
    if chunk_size is None:
        chunk_size = max(1, 4096 // big_n)
    check_int("chunk_size", chunk_size, minimum=1)
    w = ensemble_activations(model, x, list(mods))
    for (a, i, b, j) in pairs:
        for name, unit in ((a, i), (b, j)):
            if not 0 <= unit < w[name].shape[1]:
                raise ValueError(f"pairs: unit {unit} is out of range for module {name!r} "
                                 f"with {w[name].shape[1]} units")
    logits = {name: f for name in modules if (f := logistic_logit(mods[name])) is not None}
    moments = {name: StreamingMoments() for name in modules}
    logs = {name: [torch.zeros_like(w[name], dtype=torch.float64)] * 2 for name in modules}
    in_unit = {name: True for name in modules}
    pair_moments = StreamingMoments(covariance=True)
    product = torch.zeros(big_n, len(pairs), dtype=torch.float64, device=x.device)
    sides = [_pair_side(pairs, 0, x.device), _pair_side(pairs, 2, x.device)]
    done = 0
    with record_outputs(mods) as rec, record_inputs({n: mods[n] for n in logits}) as rec_in, evaluation(model), \
            mc_mode(model), lend_generator(model, generator), torch.no_grad():
        while done < n_samples:
            k = min(chunk_size, n_samples - done)
            model(x.unsqueeze(0).expand(k, *x.shape).reshape(k * big_n, *x.shape[1:]))
            out = {name: calls.pop() for name, calls in rec.items()}  # this chunk's outputs; memory stays flat
            s_in = {name: calls.pop() for name, calls in rec_in.items()}
            for name in modules:
                o = out[name].reshape(k, big_n, -1)
                moments[name].update(o)
                if in_unit[name]:
                    lo, hi = o.aminmax()
                    in_unit[name] = bool(lo >= 0) and bool(hi <= 1)
                if in_unit[name]:
                    z = logits[name](s_in[name]).reshape(k, big_n, -1) if name in logits else None
                    log_o, log_1mo = _log_pair(o, z)
                    logs[name] = [logs[name][0] + log_o, logs[name][1] + log_1mo]
            if pairs:
                both = torch.empty(k, big_n, len(pairs), 2, dtype=x.dtype, device=x.device)  # (k, N, P, 2)
                for side, groups in enumerate(sides):
                    for name, (pos, units) in groups.items():
                        both[..., pos, side] = out[name].reshape(k, big_n, -1)[..., units].to(x.dtype)
                left, right = both[..., 0], both[..., 1]
                pair_moments.update(both)
                product += (left.double() * right.double()).sum(0)
            done += k
    units = {name: UnitStats(mean=moments[name].mean, variance=moments[name].variance(unbiased=True),
                             ensemble=w[name],
                             log_geometric_mean=logs[name][0] / n_samples if in_unit[name] else None,
                             log_complement_geometric_mean=logs[name][1] / n_samples if in_unit[name] else None)
             for name in modules}
    pair_stats = None
    if pairs:
        cov = pair_moments.covariance_matrix(unbiased=True)[..., 0, 1]
        pair_stats = PairStats(pairs=pairs, covariance=cov, product_mean=product / n_samples)
    return MonteCarloResult(units=units, pairs=pair_stats, n_samples=n_samples)
