"""Zhang, Zhou & Xu 2024, Figs. 2(a, d), 3(a, d) and 4: the structure of the dropout noise on an FNN.

Reproduce: ``droplab run zzx-variance-flatness --profile quick`` (likewise ``zzx-hessian-variance``,
``zzx-alignment``); ``--profile paper`` is App. A's setting: FNN 784-50-50-10, dropout after the second
hidden layer, GD on the first 10,000 MNIST examples, the block = the 50×50 weight and bias between
the hidden layers (D = 2,550), N = 3,000 samples (Fig. 2) or 1,000 (Fig. 3). The paper's "dropout
rate" is the keep probability p; droplab's drop probability is 1 − p.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from dataclasses import dataclass

import torch
from torch import nn

from droplab._checks import check_probability
from droplab.experiments.common import load_task, train_stage
from droplab.experiments.config import ExperimentConfig
from droplab.experiments.plotting import subplots
from droplab.experiments.registry import experiment
from droplab.experiments.run import RunContext
from droplab.landscape import block_hessian, direction_flatness, direction_from_vector
from droplab.models import FNN
from droplab.noise_structure import (
    alignment,
    gradient_samples,
    pca,
    power_law_fit,
    projected_variance,
    trajectory_samples,
)
from droplab.training import TrainConfig

PAPER = "Zhang, Zhou & Xu 2024"
BLOCK = ["net.2.weight", "net.2.bias"]  # the layer between the two hidden layers
CE = nn.functional.cross_entropy


@dataclass
class NoiseConfig(ExperimentConfig):
    """FNN in-50-50-out, dropout (keep p) after hidden layer 2, GD; one net per (keep, lr) pair."""

    dataset: str = "digits"
    n_train: int | None = None
    hidden: tuple[int, int] = (50, 50)
    pairs: tuple[tuple[float, float], ...] = ((0.8, 0.1), (0.5, 0.1), (0.8, 0.05))
    steps: int = 1500
    n_samples: int = 300
    n_directions: int = 40
    radius: float = 40.0
    chunk: int = 32
    n_boot: int = 200
    flat_tol: float = 1e-3  # relative bisection tolerance of each width end (interval_flatness)

    PROFILES = {
        "smoke": {"n_train": 200, "hidden": (12, 12), "pairs": ((0.8, 0.1),), "steps": 30, "n_samples": 16,
                  "n_directions": 3, "radius": 10.0, "n_boot": 20,
                  "flat_tol": 3e-2},
        "paper": {"dataset": "mnist", "n_train": 10000, "steps": 20000, "n_samples": 3000, "n_directions": 400},
    }

    def validate(self) -> None:
        for i, (keep, lr) in enumerate(self.pairs):
            check_probability(f"pairs[{i}] keep", keep, low_open=True, high_open=False)
            if lr <= 0:
                raise ValueError(f"pairs[{i}] lr must be > 0, got {lr}")


def _train(cfg: NoiseConfig, ctx: RunContext, keep: float, lr: float, train, test) -> FNN:
    torch.manual_seed(cfg.seed)  # the same initialization for every pair
    model = FNN([train.in_features, *cfg.hidden, train.n_classes], "relu", dropout={2: 1 - keep})
    train_stage(ctx, f"train_keep{keep}_lr{lr}", model, CE, train, test,
                TrainConfig(optimizer="gd", lr=lr, steps=cfg.steps, seed=cfg.seed))
    return model


def _samples(cfg: NoiseConfig, ctx: RunContext, model: FNN, data, keep: float, lr: float) -> dict[str, torch.Tensor]:
    """S_grad (θ frozen) and S_para (N further dropout GD steps) of the block, as a cached stage."""
    def compute() -> dict[str, torch.Tensor]:
        g = gradient_samples(model, CE, data, cfg.n_samples, BLOCK, generator=ctx.generator(1), chunk=cfg.chunk)
        t = trajectory_samples(model, CE, data, cfg.n_samples, BLOCK, lr=lr,
                               generator=torch.Generator().manual_seed(cfg.seed + 1))
        return {"gradient": g.samples, "trajectory": t.samples}

    return ctx.stage(f"samples_keep{keep}_lr{lr}", compute)


def _trained_pairs(cfg: NoiseConfig, ctx: RunContext) -> Iterator[tuple[float, float, FNN, tuple, dict]]:
    """Per (keep, lr): keep, lr, the trained net, the training data and the block's noise samples (cached)."""
    train, test = load_task(cfg.dataset, cfg.n_train, device=cfg.device)
    data = (train.x, train.y)
    for keep, lr in cfg.pairs:
        model = _train(cfg, ctx, keep, lr, train, test)
        yield keep, lr, model, data, _samples(cfg, ctx, model, data, keep, lr)


def _fit_claim(ctx: RunContext, claim_id: str, where: str, statement: str, fits: dict, sign: int) -> None:
    """Reproduced iff every fitted slope's bootstrap 95% CI lies strictly on the predicted side of 0."""
    side = "< 0" if sign < 0 else "> 0"
    ok = all((f.ci_high < 0) if sign < 0 else (f.ci_low > 0) for f in fits.values())
    ctx.legacy_claim(id=claim_id, paper=PAPER, where=where, statement=statement,
              criterion=f"reproduced iff, for every (keep, lr) pair and both sample sets, the whole bootstrap 95% CI "
                        f"of the Theil–Sen log–log slope is {side}",
              measured={k: {"slope": f.slope, "ci": [f.ci_low, f.ci_high], "r2": f.r2, "n": f.n}
                        for k, f in fits.items()},
              outcome=ok)


@experiment("zzx-variance-flatness", paper=PAPER,
            reproduces="Fig. 2(a, d): inverse relation between the PCA variance λ_i(Σ) and the interval flatness",
            config=NoiseConfig)
def run_variance_flatness(cfg: NoiseConfig, ctx: RunContext) -> None:
    fits, rows = {}, []
    fig, axes = subplots(1, 2, figsize=(10, 4))
    for keep, lr, model, data, samples in _trained_pairs(cfg, ctx):
        for ax, kind in zip(axes, ("trajectory", "gradient")):
            spectrum = pca(samples[kind], k=min(cfg.n_directions, samples[kind].shape[0] - 1))

            def widths(spectrum=spectrum, model=model, data=data) -> torch.Tensor:
                block = [dict(model.named_parameters())[k] for k in BLOCK]
                dirs = [direction_from_vector(model, v, params=block) for v in spectrum.vectors.T]
                found = direction_flatness(model, CE, data, dirs, radius=cfg.radius, tol=cfg.flat_tol,
                                           initial=cfg.radius / 64)
                return torch.tensor([fl.width for fl in found])

            flat = ctx.stage(f"flatness_{kind}_keep{keep}_lr{lr}", widths)
            fit = power_law_fit(spectrum.values, flat, n_boot=cfg.n_boot, generator=ctx.generator(2))
            fits[f"{kind} keep={keep} lr={lr}"] = fit
            rows += [{"kind": kind, "keep": keep, "lr": lr, "lambda": float(la), "flatness": float(f)}
                     for la, f in zip(spectrum.values, flat)]
            ax.loglog(spectrum.values, flat, ".", label=f"p={keep}, lr={lr} (slope {fit.slope:.2f})")
            ax.set(xlabel="PCA variance λ_i(Σ) (squared parameter / gradient units)",
                   ylabel="interval flatness F along v_i(Σ) (parameter units)", title=f"S_{kind[:4]}")
    for ax in axes:
        ax.legend(fontsize=7)
    ctx.table("variance_flatness", rows)
    ctx.figure(fig, "variance_flatness", f"{PAPER}, Fig. 2(a, d): PCA variance of the dropout noise against the "
               f"interval flatness (Definition 2, factor 2) along the top {cfg.n_directions} eigen-directions, "
               f"trajectory (left) and gradient (right) samples, N = {cfg.n_samples}, on {cfg.dataset}.")
    _fit_claim(ctx, "zzx-fig2-inverse", "Fig. 2(a, d), §6.1",
               "Inverse relation between λ_i(Σ) and F_{v_i(Σ)}: larger noise variance along sharper directions.",
               fits, -1)


@experiment("zzx-hessian-variance", paper=PAPER,
            reproduces="Fig. 3(a, d): projected variance grows as a power of the Hessian eigenvalue",
            config=NoiseConfig)
def run_hessian_variance(cfg: NoiseConfig, ctx: RunContext) -> None:
    fits, rows = {}, []
    fig, axes = subplots(1, 2, figsize=(10, 4))
    for keep, lr, model, data, samples in _trained_pairs(cfg, ctx):
        h = ctx.stage(f"hessian_keep{keep}_lr{lr}", lambda m=model, d=data: block_hessian(m, CE, d, BLOCK).matrix)
        lam, vecs = torch.linalg.eigh(h)
        pos = lam > 1e-6 * lam.max()  # Definition 4 on the positive part of the spectrum (log scale)
        for ax, kind in zip(axes, ("trajectory", "gradient")):
            var = projected_variance(samples[kind], vecs[:, pos])
            fit = power_law_fit(lam[pos], var, n_boot=cfg.n_boot, generator=ctx.generator(2))
            fits[f"{kind} keep={keep} lr={lr}"] = fit
            rows += [{"kind": kind, "keep": keep, "lr": lr, "lambda_h": float(a), "variance": float(b)}
                     for a, b in zip(lam[pos], var)]
            ax.loglog(lam[pos], var, ".", ms=2, label=f"p={keep}, lr={lr} (slope {fit.slope:.2f})")
            ax.set(xlabel="Hessian eigenvalue λ_i(H) of the evaluation-mode loss",
                   ylabel="Var(Proj_{v_i(H)} S)", title=f"S_{kind[:4]}")
    for ax in axes:
        ax.legend(fontsize=7)
    ctx.table("hessian_variance", rows)
    ctx.figure(fig, "hessian_variance", f"{PAPER}, Fig. 3(a, d): variance of the dropout samples projected on "
               f"the Hessian's eigenvectors against the eigenvalues (positive part), trajectory (left) and gradient "
               f"(right) samples, N = {cfg.n_samples}, block D = {h.shape[0]}, on {cfg.dataset}.")
    _fit_claim(ctx, "zzx-fig3-power-law", "Fig. 3(a, d), §6.2",
               "Power-law, positive relation between Var(Proj_{v_i(H)} S) and λ_i(H).", fits, +1)


@dataclass
class AlignmentConfig(NoiseConfig):
    """Fig. 4: GD without dropout; every ``record_every`` steps, N gradients with a tentative dropout layer."""

    record_every: int = 150
    n_null: int = 10
    ratio: float = 10.0

    PROFILES = {
        "smoke": {"n_train": 200, "hidden": (12, 12), "pairs": ((0.8, 0.1),), "steps": 20, "record_every": 10,
                  "n_samples": 12, "n_null": 2},
        "paper": {"dataset": "mnist", "n_train": 10000, "steps": 20000, "record_every": 1000, "n_samples": 1000},
    }


@experiment("zzx-alignment", paper=PAPER, reproduces="Fig. 4: Tr(HΣ) ≫ Tr(HΣ̄) throughout training",
            config=AlignmentConfig)
def run_alignment(cfg: AlignmentConfig, ctx: RunContext) -> None:
    train, test = load_task(cfg.dataset, cfg.n_train, device=cfg.device)
    data = (train.x, train.y)
    rows = []
    fig, ax = subplots(figsize=(6, 4))
    for lr in sorted({lr for _, lr in cfg.pairs}):
        torch.manual_seed(cfg.seed)
        model = FNN([train.in_features, *cfg.hidden, train.n_classes], "relu", dropout={2: 0.0})  # no noise in GD
        for k in range(cfg.steps // cfg.record_every):
            train_stage(ctx, f"train_lr{lr}_{k}", model, CE, train, None,
                        TrainConfig(optimizer="gd", lr=lr, steps=cfg.record_every, seed=cfg.seed))
            step = (k + 1) * cfg.record_every

            def measure(step=step, model=model, lr=lr) -> list[dict]:
                h = block_hessian(model, CE, data, BLOCK).matrix
                out = []
                for keep in [q for q, rate in cfg.pairs if rate == lr]:
                    twin = copy.deepcopy(model)
                    twin.net[4].p = 1 - keep  # the tentatively added dropout layer
                    s = gradient_samples(twin, CE, data, cfg.n_samples, BLOCK, generator=ctx.generator(step),
                                         chunk=cfg.chunk)
                    a = alignment(h, s.samples, n_null=cfg.n_null, generator=ctx.generator(step + 1))
                    out.append({"keep": keep, "lr": lr, "step": step, "tr_h_sigma": a.trace_h_sigma,
                                "tr_h_isotropic": a.trace_h_isotropic, "ratio": a.ratio, "null_max": a.null_max,
                                "beats_null": a.beats_null})
                return out

            rows += ctx.stage(f"alignment_lr{lr}_{step}", measure)
    ctx.table("alignment", rows)
    for keep, lr in cfg.pairs:
        sel = [r for r in rows if r["keep"] == keep and r["lr"] == lr]
        line, = ax.semilogy([r["step"] for r in sel], [r["tr_h_sigma"] for r in sel], label=f"p={keep}, lr={lr}")
        ax.semilogy([r["step"] for r in sel], [r["tr_h_isotropic"] for r in sel], ":", color=line.get_color())
    ax.set(xlabel="GD step (full batch)", ylabel="Tr(HΣ) (solid), Tr(HΣ̄) (dotted)")
    ax.legend(fontsize=7)
    ctx.figure(fig, "alignment", f"{PAPER}, Fig. 4: alignment of the dropout gradient covariance with the Hessian "
               f"along GD without dropout, block D = 2,550 (paper) on {cfg.dataset}, N = {cfg.n_samples}.")
    ratios = [r["ratio"] for r in rows]
    ctx.legacy_claim(id="zzx-fig4-alignment", paper=PAPER, where="Fig. 4, §7",
              statement="Tr(HΣ) is much larger than Tr(HΣ̄) throughout training, for every (keep, lr).",
              criterion=f"reproduced iff Tr(HΣ)/Tr(HΣ̄) ≥ {cfg.ratio} at every recorded step of every pair; "
                        "the random-eigenvector null (Σ's spectrum, Haar eigenvectors) is reported alongside",
              measured={"min_ratio": min(ratios), "max_ratio": max(ratios),
                        "fraction_beating_null": sum(r["beats_null"] for r in rows) / len(rows)},
              outcome=min(ratios) >= cfg.ratio)
