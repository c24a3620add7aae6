"""Zhang, Zhou & Xu 2024, Figs. 2(a, d) and 3(a, d): the structure of the dropout noise on an FNN.

Reproduce: ``droplab run zzx-variance-flatness --profile quick`` (likewise ``zzx-hessian-variance``
and ``zzx-alignment`` in :mod:`droplab.experiments.zzx.alignment`). App. A's setting: FNN
784-50-50-10, dropout after the second hidden layer, full-batch GD (``quick``: the 4,000
``mnist-5k`` training images; ``paper``: the first 10,000 MNIST images), the block = the 50×50
weight and bias between the hidden layers (D = 2,550), N = 3,000 samples (Fig. 2) or 1,000 (Fig. 3).
The paper's "dropout rate" p is the keep probability; droplab's drop probability is 1 − p.

Every experiment here trains the same nets through :func:`trained_nets` (one per (keep, lr) pair and
seed, in ``record_every``-step chunks through ``train_stage``) and draws the same samples through a
shared stage, so one ``reproduce`` trains and samples once for all of them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from droplab._checks import check_probability
from droplab._params import layer_block
from droplab.data import Dataset
from droplab.experiments.claims import ClaimSpec, Criterion
from droplab.experiments.common import load_task, tensor_digest, train_stage
from droplab.experiments.config import ExperimentConfig
from droplab.experiments.plotting import subplots
from droplab.experiments.registry import experiment
from droplab.experiments.run import RunContext
from droplab.landscape import block_hessian, direction_flatness, direction_from_vector
from droplab.models import FNN
from droplab.noise_structure import (
    detrend,
    gradient_samples,
    pca,
    power_law_fit,
    projected_variance,
    trajectory_samples,
)
from droplab.training import TrainConfig

PAPER = "Zhang, Zhou & Xu 2024"
CE = nn.functional.cross_entropy
KINDS = ("gradient", "trajectory")


@dataclass
class NoiseConfig(ExperimentConfig):
    """FNN in-50-50-out, dropout (keep p) after hidden layer 2, full-batch GD; one net per (keep, lr) and seed.

    ``n_samples`` gradient samples S_grad at the trained θ; ``n_trajectory`` further dropout GD steps
    give S_para, detrended (the drift of continued training removed). ``min_train_acc``: §6's "when
    the accuracy is nearly 100%"."""

    dataset: str = "mnist-5k"
    n_train: int | None = None
    hidden: tuple[int, int] = (50, 50)
    pairs: tuple[tuple[float, float], ...] = ((0.8, 0.5), (0.5, 0.5))
    steps: int = 400
    record_every: int = 100
    n_samples: int = 500
    n_trajectory: int = 100
    n_directions: int = 12
    radius: float = 40.0
    max_radius: float = 2560.0
    chunk: int = 32
    n_boot: int = 200
    flat_tol: float = 1e-2  # relative bisection tolerance of each width end (interval_flatness)
    min_train_acc: float = 0.97

    PROFILES = {
        "smoke": {"n_train": 200, "hidden": (12, 12), "pairs": ((0.8, 0.5),), "steps": 40, "record_every": 20,
                  "n_samples": 24, "n_trajectory": 16, "n_directions": 3, "n_boot": 20, "flat_tol": 3e-2,
                  "min_train_acc": 0.0},
        "paper": {"dataset": "mnist", "n_train": 10000, "steps": 20000, "record_every": 1000, "n_samples": 3000,
                  "n_trajectory": 3000, "n_directions": 400, "flat_tol": 1e-3, "min_train_acc": 0.99},
    }

    def validate(self) -> None:
        for i, (keep, lr) in enumerate(self.pairs):
            check_probability(f"pairs[{i}] keep", keep, low_open=True, high_open=False)
            if lr <= 0:
                raise ValueError(f"pairs[{i}] lr must be > 0, got {lr}")
        if self.steps % self.record_every:
            raise ValueError(f"steps ({self.steps}) must be a multiple of record_every ({self.record_every})")
        if self.max_radius < self.radius:
            raise ValueError(f"max_radius must be ≥ radius ({self.radius}), got {self.max_radius}")


def hidden_block(model: nn.Module) -> list[str]:
    """App. A's block: the weight and bias of the linear layer between the two hidden layers."""
    return layer_block(model, nn.Linear, 1)


def trained_nets(cfg: NoiseConfig, ctx: RunContext, seed: int,
                 on_chunk: Callable[[float, float, int, FNN, Dataset], None] | None = None
                 ) -> Iterator[tuple[float, float, FNN, dict[str, Any]]]:
    """Per (keep, lr): the net trained by dropout GD from the seed's initialization and its metrics.

    Training runs in ``record_every``-step chunks through ``train_stage`` (identical configs in every
    experiment, so the shared cache trains once); ``on_chunk(keep, lr, step, model, train)`` sees each
    chunk's end.
    """
    train, test = load_task(cfg.dataset, cfg.n_train, device=cfg.device)
    for keep, lr in cfg.pairs:
        torch.manual_seed(seed)  # the same initialization for every pair of one seed
        model = FNN([train.in_features, *cfg.hidden, train.n_classes], "relu", dropout={2: 1 - keep})
        metrics: dict[str, Any] = {}
        for k in range(cfg.steps // cfg.record_every):
            tcfg = TrainConfig(optimizer="gd", lr=lr, steps=cfg.record_every, eval_every=cfg.record_every,
                               seed=seed * 1000 + k)
            metrics = train_stage(ctx, f"train_keep{keep}_lr{lr}_s{seed}_{k}", model, CE, train, test, tcfg)
            if on_chunk is not None:
                on_chunk(keep, lr, (k + 1) * cfg.record_every, model, train)
        yield keep, lr, model, {**metrics, "train": train}


def noise_samples(cfg: NoiseConfig, ctx: RunContext, model: FNN, train: Dataset, lr: float,
                  seed: int) -> dict[str, torch.Tensor]:
    """S_grad (θ frozen, fresh masks) and detrended S_para (further dropout GD steps) of the block, shared."""
    data, block = (train.x, train.y), hidden_block(model)
    key = {"what": "zzx-noise-samples", "model": repr(model), "state": tensor_digest(*model.state_dict().values()),
           "data": tensor_digest(train.x, train.y), "n_samples": cfg.n_samples, "n_trajectory": cfg.n_trajectory,
           "lr": lr, "seed": seed, "chunk": cfg.chunk}

    def compute() -> dict[str, torch.Tensor]:
        g = gradient_samples(model, CE, data, cfg.n_samples, block, generator=torch.Generator().manual_seed(seed),
                             chunk=cfg.chunk)
        t = trajectory_samples(model, CE, data, cfg.n_trajectory, block, lr=lr,
                               generator=torch.Generator().manual_seed(seed + 1))
        return {"gradient": g.samples, "trajectory": detrend(t.samples)}

    return ctx.shared_stage(f"samples_{len(block)}_lr{lr}_s{seed}", key, compute)


def accuracy_gate(cfg: NoiseConfig, metrics: list[dict[str, Any]]) -> tuple[bool, str]:
    """§6's regime: every net at ≥ ``min_train_acc`` training accuracy."""
    worst = min(m["train_acc"] for m in metrics)
    return worst >= cfg.min_train_acc, (f"a net stayed at {100 * worst:.1f}% training accuracy; §6 samples 'when "
                                        f"the accuracy is nearly 100%' (gate {100 * cfg.min_train_acc:.0f}%)")


def bounded_widths(model: nn.Module, data: tuple, dirs: list, cfg: NoiseConfig) -> tuple[torch.Tensor, int]:
    """Definition 2's F_v (factor 2) per direction, the search radius widened ×4 up to ``max_radius`` until
    bounded; directions still unbounded are censored (NaN, left out of any fit) and counted."""
    widths = torch.full((len(dirs),), float("nan"))
    todo, radius = list(range(len(dirs))), cfg.radius
    while todo and radius <= cfg.max_radius:
        found = direction_flatness(model, CE, data, [dirs[i] for i in todo], radius=radius, tol=cfg.flat_tol,
                                   initial=cfg.radius / 64)
        for i, fl in zip(todo, found):
            if fl.bounded:
                widths[i] = fl.width
        todo = [i for i, fl in zip(todo, found) if not fl.bounded]
        radius *= 4
    return widths, len(todo)


def slope_claim(fig: str, where: str, kind: str, sign: int, statement: str, quote: str, paper_value: str,
                reading: str) -> ClaimSpec:
    """A sign claim on the log–log Theil–Sen slope, the worst (keep, lr) pair per seed."""
    side = "largest" if sign < 0 else "smallest"
    return ClaimSpec(
        id=f"zzx-fig{fig}-{kind}", kind="claim", where=where, statement=statement, quote=quote,
        paper_value=paper_value,
        criterion=Criterion(quantity=f"the {side} over (keep, lr) pairs of the log–log Theil–Sen slope "
                                     f"({'S_grad' if kind == 'gradient' else 'detrended S_para'}), per seed",
                            op="<" if sign < 0 else ">", threshold=0.0, reading=reading),
        method="t", regime="every net trained by dropout GD to ≥ min_train_acc training accuracy (§6: 'when the "
                           "accuracy is nearly 100%')")


_FIG2_QUOTE = ("for different learning rates and dropout rates, there is an inverse relationship between the interval "
               "flatness ... and the dropout variance ... Overall, we can observe the negative correlation between the "
               "variance and flatness in Fig. 2.")
FIG2 = {
    "gradient": slope_claim(
        "2", "Fig. 2(d), §6.1", "gradient", -1,
        "Along the PCA directions of the gradient noise, larger variance goes with smaller interval flatness.",
        _FIG2_QUOTE, "negative slope for every (p, lr) (dashed lines of Fig. 2(d))",
        "'inverse relationship' read as a negative slope of log F against log λ for every pair; the paper's "
        "approximate power law is reported (slope, R²), not tested beyond its sign."),
    "trajectory": slope_claim(
        "2", "Fig. 2(a), §6.1", "trajectory", -1,
        "Along the PCA directions of the parameter noise, larger variance goes with smaller interval flatness.",
        _FIG2_QUOTE, "negative correlation (top line of Fig. 2, noisier than the gradient line)",
        "the paper says of parameter sampling only that the correlation is negative (and that gradient "
        "sampling is clearer, §6.2): the sign, nothing more, for every pair."),
}


@experiment("zzx-variance-flatness", paper=PAPER,
            reproduces="Fig. 2(a, d): inverse relation between the PCA variance λ_i(Σ) and the interval flatness",
            config=NoiseConfig, claims=list(FIG2.values()))
def run_variance_flatness(cfg: NoiseConfig, ctx: RunContext) -> None:
    rows, slopes, metrics, censored = [], {k: [] for k in KINDS}, [], {k: [] for k in KINDS}
    fig, axes = subplots(1, 2, figsize=(11, 4))
    for seed in ctx.seeds():
        worst = {k: -float("inf") for k in KINDS}
        n_cens = {k: 0 for k in KINDS}
        for keep, lr, model, m in trained_nets(cfg, ctx, seed):
            metrics.append(m)
            train = m["train"]
            samples = noise_samples(cfg, ctx, model, train, lr, seed)
            block = [dict(model.named_parameters())[k] for k in hidden_block(model)]
            for ax, kind in zip(axes, KINDS):
                spectrum = pca(samples[kind], k=min(cfg.n_directions, samples[kind].shape[0] - 1))
                dirs = [direction_from_vector(model, v, params=block) for v in spectrum.vectors.T]
                flat, n_out = ctx.stage(f"flatness_{kind}_keep{keep}_lr{lr}_s{seed}",
                                        lambda d=dirs, mo=model, t=train: bounded_widths(mo, (t.x, t.y), d, cfg))
                n_cens[kind] += n_out
                fit = power_law_fit(spectrum.values, flat, n_boot=cfg.n_boot, generator=ctx.generator(seed))
                worst[kind] = max(worst[kind], fit.slope)
                rows += [{"seed": seed, "kind": kind, "keep": keep, "lr": lr, "lambda": float(la), "flatness": float(f),
                          "slope": fit.slope, "r2": fit.r2} for la, f in zip(spectrum.values, flat)]
                if seed == ctx.seeds()[0]:
                    ax.loglog(spectrum.values, flat, ".", label=f"keep={keep}, lr={lr} (slope {fit.slope:.2f})")
        for kind in KINDS:
            slopes[kind].append(worst[kind])
            censored[kind].append(n_cens[kind])
    for ax, kind in zip(axes, KINDS):
        ax.set(xlabel="PCA variance λ_i(Σ)", ylabel="interval flatness F along v_i(Σ)",
               title="S_grad (gradients)" if kind == "gradient" else "S_para (parameters, detrended)")
        ax.legend(fontsize=7)
    fig.subplots_adjust(wspace=0.35)
    ctx.table("variance_flatness", rows)
    ctx.figure(fig, "variance_flatness", f"{ctx.paper}, Fig. 2(a, d): PCA variance of the dropout noise against "
               f"Definition 2's interval flatness (factor 2) along the top {cfg.n_directions} eigen-directions of the "
               f"{cfg.hidden[0]}×{cfg.hidden[1]}+{cfg.hidden[1]} block, seed {ctx.seeds()[0]}; gradient samples "
               f"N = {cfg.n_samples}, parameter samples N = {cfg.n_trajectory} (detrended), on {cfg.dataset}. "
               "Directions whose width the widened radius did not bound are left out.",
               claims=[c.id for c in FIG2.values()])
    met, why = accuracy_gate(cfg, metrics)
    for kind, spec in FIG2.items():
        ctx.claim(spec, slopes[kind], regime_met=met, regime_reason=why,
                  regime_values={"train_acc": [m["train_acc"] for m in metrics]},
                  measured={"censored_directions_per_seed": censored[kind],
                            "directions_per_seed": cfg.n_directions * len(cfg.pairs)})


_FIG3_QUOTE = ("there is also a power-law relationship between {λ_i(H)} and {Var(Proj_{v_i}(S))} for different dropout "
               "rates and learning rates, no matter S is sampled from parameters or gradients of parameters.")
FIG3 = {
    "gradient": slope_claim(
        "3", "Fig. 3(d), §6.2", "gradient", +1,
        "The gradient-noise variance along a Hessian eigenvector grows as a power of its eigenvalue.",
        _FIG3_QUOTE, "positive slope for every (p, lr) (Fig. 3(d))",
        "'power-law relationship ... positive correlation' read as a positive log–log slope for every pair."),
    "trajectory": slope_claim(
        "3", "Fig. 3(a), §6.2", "trajectory", +1,
        "The parameter-noise variance along a Hessian eigenvector grows with its eigenvalue.",
        _FIG3_QUOTE, "positive correlation (Fig. 3(a), noisier)",
        "the sign of the relation for every pair, as for the gradient samples ('no matter S is sampled from "
        "parameters or gradients')."),
}
CLEARER = ClaimSpec(
    id="zzx-fig23-gradient-clearer", kind="claim", where="Figs. 2–3, §6.2",
    statement="Gradient sampling shows the power-law relation more clearly than parameter sampling.",
    quote="as shown in Figs. 2 and 3, we can see that gradient sampling has a more clear linear structure than that "
          "of parameter sampling.",
    paper_value="gradient rows straighter than parameter rows",
    criterion=Criterion(quantity="paired difference (S_grad − S_para) of the log–log R² of Fig. 3's relation, "
                                 "mean over (keep, lr) pairs, per seed", op=">", threshold=0.0,
                        reading="'more clear linear structure' read as a higher R² of the straight line in log–log "
                                "coordinates, on the same eigenvectors of the same net."),
    regime="every net trained by dropout GD to ≥ min_train_acc training accuracy")


@experiment("zzx-hessian-variance", paper=PAPER,
            reproduces="Fig. 3(a, d): projected variance grows as a power of the Hessian eigenvalue",
            config=NoiseConfig, claims=[*FIG3.values(), CLEARER])
def run_hessian_variance(cfg: NoiseConfig, ctx: RunContext) -> None:
    rows, metrics = [], []
    slopes, r2 = {k: [] for k in KINDS}, {k: [] for k in KINDS}
    fig, axes = subplots(1, 2, figsize=(11, 4))
    dim = 0
    for seed in ctx.seeds():
        worst, fits = {k: float("inf") for k in KINDS}, {k: [] for k in KINDS}
        for keep, lr, model, m in trained_nets(cfg, ctx, seed):
            metrics.append(m)
            train = m["train"]
            samples = noise_samples(cfg, ctx, model, train, lr, seed)
            h = ctx.stage(f"hessian_keep{keep}_lr{lr}_s{seed}", lambda mo=model, t=train: block_hessian(
                mo, CE, (t.x, t.y), hidden_block(mo)).matrix)
            dim = h.shape[0]
            lam, vecs = torch.linalg.eigh(h)
            pos = lam > 1e-6 * lam.max()  # Definition 4 on the positive part of the spectrum (log scale)
            for ax, kind in zip(axes, KINDS):
                var = projected_variance(samples[kind], vecs[:, pos])
                fit = power_law_fit(lam[pos], var, n_boot=cfg.n_boot, generator=ctx.generator(seed))
                worst[kind] = min(worst[kind], fit.slope)
                fits[kind].append(fit.r2)
                rows += [{"seed": seed, "kind": kind, "keep": keep, "lr": lr, "slope": fit.slope, "r2": fit.r2,
                          "ci_low": fit.ci_low, "ci_high": fit.ci_high, "n": fit.n}]
                if seed == ctx.seeds()[0]:
                    ax.loglog(lam[pos], var, ".", ms=2, label=f"keep={keep}, lr={lr} (slope {fit.slope:.2f}, "
                                                               f"R² {fit.r2:.2f})")
        for kind in KINDS:
            slopes[kind].append(worst[kind])
            r2[kind].append(sum(fits[kind]) / len(fits[kind]))
    for ax, kind in zip(axes, KINDS):
        ax.set(xlabel="Hessian eigenvalue λ_i(H) (evaluation-mode loss)", ylabel="Var(Proj_{v_i(H)} S)",
               title="S_grad (gradients)" if kind == "gradient" else "S_para (parameters, detrended)")
        ax.legend(fontsize=7)
    fig.subplots_adjust(wspace=0.35)
    ctx.table("hessian_variance", rows)
    ctx.figure(fig, "hessian_variance", f"{ctx.paper}, Fig. 3(a, d): variance of the dropout samples projected on "
               f"the Hessian's eigenvectors against the eigenvalues (positive part), block D = {dim}, seed "
               f"{ctx.seeds()[0]}; gradient samples N = {cfg.n_samples}, parameter samples N = {cfg.n_trajectory} "
               f"(detrended), on {cfg.dataset}.", claims=[*(c.id for c in FIG3.values()), CLEARER.id])
    met, why = accuracy_gate(cfg, metrics)
    reg = {"train_acc": [m["train_acc"] for m in metrics]}
    for kind, spec in FIG3.items():
        ctx.claim(spec, slopes[kind], regime_met=met, regime_reason=why, regime_values=reg)
    ctx.claim(CLEARER, [a - b for a, b in zip(r2["gradient"], r2["trajectory"])], regime_met=met,
              regime_reason=why, regime_values=reg, measured={"r2_gradient": r2["gradient"],
                                                              "r2_trajectory": r2["trajectory"]})
