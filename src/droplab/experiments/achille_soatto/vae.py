"""Achille & Soatto 2017, §5 and Table 1: a VAE is Information Dropout with y = x and β = 1.

Reproduce: ``droplab run as-vae --profile quick`` (binarized ``digits``; ``--profile paper`` is
MNIST with Table 1's sizes: latent 256·k, hidden 512·k, k = 1, 2, 3). For each k, the same VAE is
trained with a Gaussian latent (Kingma & Welling 2013) and with an Information Dropout latent
(:class:`droplab.models.VAE`), and the test ELBO and importance-weighted log-likelihood are reported.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from droplab import data as _data
from droplab._checks import check_int, check_positive
from droplab.experiments.achille_soatto import PAPER
from droplab.experiments.common import train_stage
from droplab.experiments.config import ExperimentConfig
from droplab.experiments.plotting import subplots
from droplab.experiments.registry import experiment
from droplab.experiments.run import RunContext
from droplab.models import VAE, negative_elbo
from droplab.training import TrainConfig


@dataclass
class VAEConfig(ExperimentConfig):
    """Latent ``latent·k`` and hidden ``hidden·k`` units; pixels binarized at ``threshold``."""

    dataset: str = "digits"
    n_train: int | None = None
    ks: tuple[int, ...] = (1, 2, 3)
    hidden: int = 64
    latent: int = 16
    max_alpha: float = 0.5
    threshold: float = 0.5
    lr: float = 1e-3
    epochs: int = 60
    batch_size: int = 100
    elbo_samples: int = 20
    iw_samples: int = 200
    tolerance: float = 0.03

    PROFILES = {
        "smoke": {"ks": (1,), "hidden": 16, "latent": 4, "epochs": 2, "n_train": 200, "elbo_samples": 2,
                  "iw_samples": 5},
        "paper": {"dataset": "mnist", "hidden": 512, "latent": 256, "epochs": 100, "iw_samples": 1000},
    }

    def validate(self) -> None:
        for k in self.ks:
            check_int("ks entry", k, minimum=1)
        check_positive("max_alpha", self.max_alpha)
        check_int("elbo_samples", self.elbo_samples, minimum=1)
        check_int("iw_samples", self.iw_samples, minimum=1)


def _binarized(cfg: VAEConfig, split: str) -> torch.Tensor:
    ds = _data.load(cfg.dataset, split, n=cfg.n_train if split == "train" else None).flat()
    return (ds.x > cfg.threshold).float().to(cfg.device)


@experiment("as-vae", paper=PAPER, reproduces="§5, Table 1: a VAE with an Information Dropout latent matches the "
            "Gaussian VAE's test ELBO", config=VAEConfig)
def run(cfg: VAEConfig, ctx: RunContext) -> None:
    train, test = _binarized(cfg, "train"), _binarized(cfg, "test")
    tc = TrainConfig(optimizer="adam", lr=cfg.lr, batch_size=cfg.batch_size,
                     steps=cfg.epochs * -(-len(train) // cfg.batch_size), seed=cfg.seed)
    zeros = torch.zeros(len(train))
    rows = []
    for k in cfg.ks:
        for kind in ("gaussian", "information"):
            torch.manual_seed(cfg.seed)
            vae = VAE(train.shape[1], cfg.hidden * k, cfg.latent * k, latent_kind=kind,
                      max_alpha=cfg.max_alpha).to(cfg.device)
            train_stage(ctx, f"train_{kind}_{k}", vae, negative_elbo, _data.Dataset("binary", "train", train, zeros,
                                                                                  None), None, tc)

            def evaluate(vae: VAE = vae, k: int = k) -> dict[str, float]:
                g = ctx.generator(k)
                with torch.no_grad():
                    rec, _, kl = vae.sample_terms(test, cfg.elbo_samples, g)
                    iw = vae.iw_log_likelihood(test, cfg.iw_samples, g)
                return {"test_elbo": float(-(rec + kl).mean()), "test_reconstruction": float(rec.mean()),
                        "test_kl": float(kl.mean()), "test_iw_log_likelihood": float(iw.mean())}

            rows.append({"k": k, "latent_kind": kind, **ctx.stage(f"eval_{kind}_{k}", evaluate)})
    ctx.table("table1", rows)

    fig, ax = subplots(figsize=(5.5, 3.8))
    for kind, marker in (("gaussian", "o"), ("information", "s")):
        pts = [r for r in rows if r["latent_kind"] == kind]
        ax.plot([r["k"] for r in pts], [r["test_elbo"] for r in pts], marker=marker, label=f"{kind}: ELBO")
        ax.plot([r["k"] for r in pts], [r["test_iw_log_likelihood"] for r in pts], marker=marker, ls=":",
                label=f"{kind}: IW log-lik. (K={cfg.iw_samples})")
    ax.set(xlabel="size multiplier k", ylabel="nats per test image", title=f"VAE on binarized {cfg.dataset}")
    ax.legend(fontsize=8)
    ctx.figure(fig, "table1", f"{PAPER}, Table 1: test ELBO (and importance-weighted log-likelihood) of a VAE with "
               f"a Gaussian vs an Information Dropout latent, latent {cfg.latent}·k, hidden {cfg.hidden}·k.")

    elbo = {(r["k"], r["latent_kind"]): r["test_elbo"] for r in rows}
    rel = {k: abs(elbo[(k, "information")] - elbo[(k, "gaussian")]) / abs(elbo[(k, "gaussian")]) for k in cfg.ks}
    ctx.legacy_claim(id="as-table1-vae", paper=PAPER, where="§5, Table 1",
              statement="A VAE implemented with an Information Dropout latent performs similarly to the Gaussian VAE.",
              criterion=f"At every k, the test ELBOs differ by ≤ {100 * cfg.tolerance:g}% of the Gaussian's "
                        "(Table 1's largest gap is 1.3%).",
              measured={"relative_gap": {str(k): v for k, v in rel.items()},
                        **{f"elbo_{kind}_k{k}": v for (k, kind), v in elbo.items()}},
              outcome=all(v <= cfg.tolerance for v in rel.values()))
