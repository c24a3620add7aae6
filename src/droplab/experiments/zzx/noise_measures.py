"""Zhang, Zhou & Xu 2024, §3.4–3.5 and §6: the measurements behind Figs. 2–3, for any net and block.

One code path for every row of Figs. 2–3 (the FNN of :mod:`~droplab.experiments.zzx.noise_structure`,
ResNet-20 and the transformer of :mod:`~droplab.experiments.zzx.noise_nets`): the samples S_grad and
S_para of a block at a trained θ (a shared stage), Definition 2's widths along the PCA directions of
their covariance (Fig. 2), the Hessian's spectrum and the projected variances (Fig. 3), the regime
gate and the registered slope claims.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from droplab._params import LossFn
from droplab.data import Dataset
from droplab.experiments.claims import ClaimSpec, Criterion
from droplab.experiments.common import describe_callable, tensor_digest
from droplab.experiments.config import ExperimentConfig
from droplab.experiments.run import RunContext
from droplab.landscape import (
    block_hessian,
    direction_from_vector,
    hessian_eigenpairs,
    hessian_operator,
    widened_flatness,
)
from droplab.noise_structure import (
    PowerLawFit,
    detrend,
    gradient_samples,
    pca,
    power_law_fit,
    projected_variance,
    trajectory_samples,
)

PAPER = "Zhang, Zhou & Xu 2024"
KINDS = ("gradient", "trajectory")
TITLES = {"gradient": "S_grad (gradients)", "trajectory": "S_para (parameters, detrended)"}


@dataclass
class SamplingConfig(ExperimentConfig):
    """What every noise-structure experiment samples and measures at a trained θ.

    ``n_samples`` gradient samples S_grad at θ; ``n_trajectory`` further dropout training steps give
    S_para, detrended; widths along the top ``n_directions`` PCA directions (radius widened ×4 up to
    ``max_radius``); ``min_train_acc``: §6's "when the accuracy is nearly 100%"."""

    n_samples: int = 500
    n_trajectory: int = 100
    n_directions: int = 12
    radius: float = 40.0
    max_radius: float = 2560.0
    chunk: int = 32
    n_boot: int = 200
    flat_tol: float = 1e-2  # relative bisection tolerance of each width end (interval_flatness)
    min_train_acc: float = 0.97

    def validate(self) -> None:
        if self.max_radius < self.radius:
            raise ValueError(f"max_radius must be ≥ radius ({self.radius}), got {self.max_radius}")


def noise_samples(cfg: SamplingConfig, ctx: RunContext, model: nn.Module, loss_fn: LossFn, train: Dataset,
                  block: Sequence[str], lr: float, seed: int, optimizer: str = "gd") -> dict[str, Tensor]:
    """S_grad (θ frozen, fresh masks) and detrended S_para (``n_trajectory`` further dropout steps of
    ``optimizer`` at ``lr``) of the block, a shared stage (every experiment on this net reuses them)."""
    data = (train.x, train.y)
    key = {"what": "zzx-noise-samples", "model": repr(model), "state": tensor_digest(*model.state_dict().values()),
           "data": tensor_digest(train.x, train.y), "n_samples": cfg.n_samples, "n_trajectory": cfg.n_trajectory,
           "lr": lr, "seed": seed, "chunk": cfg.chunk, "block": list(block), "loss": describe_callable(loss_fn),
           "optimizer": optimizer}

    def compute() -> dict[str, Tensor]:
        g = gradient_samples(model, loss_fn, data, cfg.n_samples, block, generator=torch.Generator().manual_seed(seed),
                             chunk=cfg.chunk)
        t = trajectory_samples(model, loss_fn, data, cfg.n_trajectory, block, lr=lr, optimizer=optimizer,
                               generator=torch.Generator().manual_seed(seed + 1))
        return {"gradient": g.samples, "trajectory": detrend(t.samples)}

    return ctx.shared_stage(f"samples_{len(block)}_lr{lr}_s{seed}", key, compute)


@dataclass(frozen=True)
class Relation:
    """One scatter of Figs. 2–3 and its log–log Theil–Sen fit; ``censored``: points left out (Fig. 2)."""

    x: Tensor
    y: Tensor
    fit: PowerLawFit
    censored: int = 0


def fit_relation(x: Tensor, y: Tensor, n_boot: int, generator: torch.Generator) -> PowerLawFit:
    """:func:`~droplab.noise_structure.power_law_fit`, or a NaN fit (the claim then has no value for this
    seed: inconclusive) when fewer than 3 points are measured (widths censored, no positive eigenvalue)."""
    x, y = torch.as_tensor(x, dtype=torch.float64).cpu(), torch.as_tensor(y, dtype=torch.float64).cpu()
    ok = int((torch.isfinite(x) & torch.isfinite(y) & (x > 0) & (y > 0)).sum())
    if ok < 3:
        nan = float("nan")
        return PowerLawFit(nan, nan, nan, nan, nan, ok, len(x) - ok, 0.95)
    return power_law_fit(x, y, n_boot=n_boot, generator=generator)


def variance_flatness(cfg: SamplingConfig, ctx: RunContext, stage: str, model: nn.Module, loss_fn: LossFn,
                      train: Dataset, block: Sequence[str], samples: Tensor, seed: int) -> Relation:
    """Fig. 2: the PCA variances λ_i(Σ) (Definition 1) against Definition 2's widths along v_i(Σ)."""
    spectrum = pca(samples, k=min(cfg.n_directions, samples.shape[0] - 1, samples.shape[1]))
    named = dict(model.named_parameters())
    dirs = [direction_from_vector(model, v, params=[named[k] for k in block]) for v in spectrum.vectors.T]
    flat, n_out = ctx.stage(stage, lambda: widened_flatness(model, loss_fn, (train.x, train.y), dirs, cfg.radius,
                                                          cfg.max_radius, cfg.flat_tol))
    return Relation(spectrum.values, flat, fit_relation(spectrum.values, flat, cfg.n_boot, ctx.generator(seed)), n_out)


def hessian_spectrum(model: nn.Module, loss_fn: LossFn, train: Dataset, block: Sequence[str], n_eigen: int | None,
                     generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
    """Eigenvalues and eigenvectors (columns) of the block's evaluation-mode Hessian (Definition 4): the whole
    spectrum by a dense Hessian (``n_eigen=None``), else the top ``n_eigen`` by Lanczos (HVPs only)."""
    data = (train.x, train.y)
    if n_eigen is None:
        return torch.linalg.eigh(block_hessian(model, loss_fn, data, block).matrix)
    pairs = hessian_eigenpairs(hessian_operator(model, loss_fn, data, block), n_eigen, tol=1e-4, generator=generator)
    return pairs.values, pairs.vectors


def hessian_variance(lam: Tensor, vecs: Tensor, samples: Tensor, n_boot: int, generator: torch.Generator) -> Relation:
    """Fig. 3: Var(Proj_{v_i(H)} S) (Definition 3) against λ_i(H) on the positive part of the spectrum."""
    pos = lam > 1e-6 * lam.max()  # a log–log relation: the positive part (Definition 4's sharp directions)
    lam_p, vecs_p = lam[pos].to(samples), vecs[:, pos].to(samples)
    var = projected_variance(samples, vecs_p)
    return Relation(lam_p, var, fit_relation(lam_p, var, n_boot, generator))


def relations(cfg: SamplingConfig, ctx: RunContext, tag: str, model: nn.Module, loss_fn: LossFn, train: Dataset,
              block: Sequence[str], lr: float, seed: int, *, optimizer: str = "gd", figures: Sequence[str] = ("2", "3"),
              n_eigen: int | None = None) -> dict[str, dict[str, Relation]]:
    """Figs. 2 and 3 (those in ``figures``) of one trained net's block, per kind of sample: the samples
    (:func:`noise_samples`), the block's Hessian spectrum (stage ``hessian{tag}``, ``n_eigen`` as
    :func:`hessian_spectrum`) and Definition 2's widths (stage ``flatness_{kind}{tag}``)."""
    samples = noise_samples(cfg, ctx, model, loss_fn, train, block, lr, seed, optimizer=optimizer)
    out: dict[str, dict[str, Relation]] = {}
    if "3" in figures:
        lam, vecs = ctx.stage(f"hessian{tag}", lambda: hessian_spectrum(model, loss_fn, train, block, n_eigen,
                                                                        ctx.generator(seed)))
        out["3"] = {k: hessian_variance(lam, vecs, samples[k], cfg.n_boot, ctx.generator(seed)) for k in KINDS}
    if "2" in figures:
        out["2"] = {k: variance_flatness(cfg, ctx, f"flatness_{k}{tag}", model, loss_fn, train, block, samples[k], seed)
                    for k in KINDS}
    return out


def accuracy_gate(min_train_acc: float, metrics: list[dict[str, Any]]) -> tuple[bool, str]:
    """§6's regime: every net at ≥ ``min_train_acc`` training accuracy ("when the accuracy is nearly 100%")."""
    worst = min(m["train_acc"] for m in metrics)
    return worst >= min_train_acc, (
        f"a net stayed at {100 * worst:.1f}% training accuracy; §6 samples 'when the accuracy is nearly 100%' "
        f"(gate {100 * min_train_acc:.0f}%)")


def scheduled_lr(lr: float, steps: int, warmup: int) -> float:
    """The learning rate at the last training step: ``lr`` or, with ``warmup``, Vaswani et al.'s eq. 3
    lr · min(t^{-1/2}, t · warmup^{-3/2}) · √warmup (as :class:`~droplab.training.TrainConfig`)."""
    if not warmup:
        return lr
    return lr * min(steps ** -0.5, steps * warmup ** -1.5) * math.sqrt(warmup)


def slope_claim(fig: str, where: str, kind: str, sign: int, statement: str, quote: str, paper_value: str,
                reading: str, *, net: str = "", substitute: str = "", trained: str = "dropout GD",
                over: str = "the {side} over (keep, lr) pairs of ") -> ClaimSpec:
    """A sign claim on the log–log Theil–Sen slope (the worst (keep, lr) pair per seed, or the one net's)."""
    side = "largest" if sign < 0 else "smallest"
    return ClaimSpec(
        id=f"zzx-fig{fig}-{net + '-' if net else ''}{kind}", kind="claim", where=where, statement=statement,
        quote=quote, paper_value=paper_value,
        criterion=Criterion(quantity=f"{over.format(side=side)}the log–log Theil–Sen slope "
                                     f"({'S_grad' if kind == 'gradient' else 'detrended S_para'}), per seed",
                            op="<" if sign < 0 else ">", threshold=0.0, reading=reading),
        method="t", regime=f"every net trained by {trained} to ≥ min_train_acc training accuracy (§6: 'when the "
                           "accuracy is nearly 100%')", substitute=substitute)


FIG2_QUOTE = ("for different learning rates and dropout rates, there is an inverse relationship between the interval "
              "flatness ... and the dropout variance ... Overall, we can observe the negative correlation between the "
              "variance and flatness in Fig. 2.")
FIG3_QUOTE = ("there is also a power-law relationship between {λ_i(H)} and {Var(Proj_{v_i}(S))} for different dropout "
              "rates and learning rates, no matter S is sampled from parameters or gradients of parameters.")
CLEARER_QUOTE = ("as shown in Figs. 2 and 3, we can see that gradient sampling has a more clear linear structure than "
                 "that of parameter sampling.")
CLEARER_READING = ("'more clear linear structure' read as a higher R² of the straight line in log–log coordinates, on "
                   "the same eigenvectors of the same net.")
