"""Zhang, Zhou & Xu 2024, Fig. 4 and §7: the dropout noise covariance aligns with the Hessian.

Reproduce: ``droplab run zzx-alignment --profile quick``. The nets of
:mod:`droplab.experiments.zzx.noise_structure` (FNN 784-50-50-10, dropout GD, one per (keep, lr)
and seed, trained in ``record_every``-step chunks shared with the other noise experiments); at each
chunk's end i, the block's Hessian H_i of the evaluation-mode loss and the covariance Σ_i of
``n_alignment`` dropout gradients at θ_i give Tr(H_iΣ_i) against the isotropic Tr(H_iΣ̄_i),
Σ̄_i = Tr(Σ_i)/D · I (§7), with the random-eigenvector null beside.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from droplab.data import Dataset
from droplab.experiments.claims import load_claims
from droplab.experiments.plotting import subplots
from droplab.experiments.registry import experiment
from droplab.experiments.run import RunContext
from droplab.experiments.zzx.noise_structure import CE, PAPER, NoiseConfig, hidden_block, trained_nets
from droplab.landscape import block_hessian
from droplab.models import FNN
from droplab.noise_structure import alignment, gradient_samples


@dataclass
class AlignmentConfig(NoiseConfig):
    """Fig. 4: at every ``record_every`` steps of the dropout-GD training, N dropout gradients and the Hessian."""

    n_alignment: int = 200
    n_null: int = 10
    ratio: float = 10.0

    PROFILES = {
        **NoiseConfig.PROFILES,
        "smoke": {**NoiseConfig.PROFILES["smoke"], "n_alignment": 12, "n_null": 2},
        "paper": {**NoiseConfig.PROFILES["paper"], "n_alignment": 1000},
    }


SPECS = load_claims(__package__)
FIG4 = SPECS["zzx-fig4-alignment"]


@experiment("zzx-alignment", paper=PAPER, reproduces="Fig. 4: Tr(HΣ) ≫ Tr(HΣ̄) throughout training",
            config=AlignmentConfig, claims=[FIG4])
def run_alignment(cfg: AlignmentConfig, ctx: RunContext) -> None:
    rows: list[dict] = []
    dim = [0]
    for seed in ctx.seeds():
        def measure(keep: float, lr: float, step: int, model: FNN, train: Dataset, seed: int = seed) -> None:
            def compute() -> dict:
                block = hidden_block(model)
                h = block_hessian(model, CE, (train.x, train.y), block).matrix
                s = gradient_samples(model, CE, (train.x, train.y), cfg.n_alignment, block,
                                     generator=torch.Generator().manual_seed(seed * 7919 + step), chunk=cfg.chunk)
                a = alignment(h, s.samples, n_null=cfg.n_null, generator=ctx.generator(seed * 7919 + step))
                return {"tr_h_sigma": a.trace_h_sigma, "tr_h_isotropic": a.trace_h_isotropic, "ratio": a.ratio,
                        "null_max": a.null_max, "beats_null": a.beats_null, "dim": h.shape[0]}

            r = ctx.stage(f"alignment_keep{keep}_lr{lr}_s{seed}_{step}", compute)
            dim[0] = r.pop("dim")
            rows.append({"seed": seed, "keep": keep, "lr": lr, "step": step, **r})

        for _ in trained_nets(cfg, ctx, seed, on_chunk=measure):  # trains; measure() records at each chunk
            pass
    ctx.table("alignment", rows)
    fig, ax = subplots(figsize=(6.5, 4))
    first = ctx.seeds()[0]
    for keep, lr in cfg.pairs:
        sel = [r for r in rows if r["keep"] == keep and r["lr"] == lr and r["seed"] == first]
        line, = ax.semilogy([r["step"] for r in sel], [r["tr_h_sigma"] for r in sel], "o-",
                            label=f"keep={keep}, lr={lr}")
        ax.semilogy([r["step"] for r in sel], [r["tr_h_isotropic"] for r in sel], "o:", color=line.get_color())
    ax.set(xlabel="GD step (full batch, with dropout)", ylabel="Tr(HΣ) (solid), Tr(HΣ̄) (dotted)")
    ax.legend(fontsize=7)
    ctx.figure(fig, "alignment", f"{ctx.paper}, Fig. 4: alignment of the dropout gradient covariance with the "
               f"Hessian along dropout GD, block D = {dim[0]}, seed {first}, N = {cfg.n_alignment} gradients per "
               f"recorded step, on {cfg.dataset}.", claims=[FIG4.id])
    worst = [min(math.log10(r["ratio"]) for r in rows if r["seed"] == s) for s in ctx.seeds()]
    ctx.claim(FIG4, worst, measured={"min_ratio": min(r["ratio"] for r in rows),
                                     "max_ratio": max(r["ratio"] for r in rows),
                                     "fraction_beating_null": sum(r["beats_null"] for r in rows) / len(rows)})
