"""Achille & Soatto 2017, Fig. 1: the post-noise activations follow the proposed priors — log-uniform
for ReLU (Proposition 1), log-normal for Softplus (Proposition 2).

Reproduce: ``droplab run as-priors --profile quick`` (All-CNN-32 with Information Dropout on ``digits``
8×8 images; ``--profile paper`` is CIFAR-10 at full width). One net per activation is trained with
the §6 recipe; the activations ``z = ε ⊙ f(x)`` of its last Information Dropout layer on the test
images (noise on, batch norm on its statistics) are compared with both priors by the
Kolmogorov–Smirnov distance of ``log z`` (:func:`droplab.information.prior_fit`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from droplab import data as _data
from droplab._checks import check_positive
from droplab.experiments.achille_soatto import PAPER
from droplab.experiments.common import train_stage
from droplab.experiments.config import ExperimentConfig
from droplab.experiments.plotting import subplots
from droplab.experiments.registry import experiment
from droplab.experiments.run import RunContext
from droplab.information import (
    InformationDropoutRecipe,
    ib_loss_fn,
    noisy_activations,
    prior_fit,
    recompute_batchnorm,
)
from droplab.models import AllCNN
from droplab.nn import InformationDropout, noise_layers


@dataclass
class PriorsConfig(ExperimentConfig):
    """``ks_max``: the largest KS distance that counts as "approximately follows the prior"."""

    dataset: str = "digits"
    n_train: int | None = None
    width: float = 0.25
    beta: float = 1.0
    max_alpha: float = 0.5
    lr: float = 0.01
    epochs: int = 15
    milestone_epochs: tuple[int, ...] = (6, 11)
    batch_size: int = 100
    window: tuple[float, float] = (0.05, 0.95)
    ks_max: float = 0.1

    PROFILES = {
        "smoke": {"width": 0.1, "epochs": 1, "milestone_epochs": (), "n_train": 150},
        "paper": {"dataset": "cifar10", "width": 1.0, "epochs": 80, "milestone_epochs": (30, 60)},
    }

    def validate(self) -> None:
        check_positive("beta", self.beta, allow_zero=True)
        check_positive("max_alpha", self.max_alpha)
        check_positive("ks_max", self.ks_max)


@experiment("as-priors", paper=PAPER, reproduces="Fig. 1: post-noise activations follow the log-uniform (ReLU) and "
            "log-normal (Softplus) priors", config=PriorsConfig)
def run(cfg: PriorsConfig, ctx: RunContext) -> None:
    train = _data.load(cfg.dataset, "train", n=cfg.n_train, flat=False).to(cfg.device)
    test = _data.load(cfg.dataset, "test", flat=False).to(cfg.device)
    recipe = InformationDropoutRecipe(beta=cfg.beta, max_alpha=cfg.max_alpha, lr=cfg.lr, epochs=cfg.epochs,
                                      milestone_epochs=cfg.milestone_epochs, batch_size=cfg.batch_size)
    fits, samples = {}, {}
    for activation, prior in (("relu", "log-uniform"), ("softplus", "log-normal")):
        torch.manual_seed(cfg.seed)
        model = AllCNN("allcnn32", train.n_classes, in_channels=train.x.shape[1], width=cfg.width,
                       activation=activation, noise="information", max_alpha=cfg.max_alpha).to(cfg.device)
        train_stage(ctx, f"train_{activation}", model, ib_loss_fn(model, cfg.beta, len(train)), train, None,
                    recipe.train_config(len(train), seed=cfg.seed))
        recompute_batchnorm(model, train.x, batch_size=cfg.batch_size)
        last = [m for m in noise_layers(model) if isinstance(m, InformationDropout)][-1]
        z = ctx.stage(f"activations_{activation}",
                      lambda m=model, layer=last: noisy_activations(
                          m, test.x, layer, generator=torch.Generator().manual_seed(cfg.seed)))
        mu, sigma = (last.prior_mu.item(), last.prior_log_sigma.exp().item()) if prior == "log-normal" \
            else (None, None)
        fit = prior_fit(z, mu=mu, sigma=sigma, window=cfg.window)
        fits[activation] = {"prior": prior, "ks_log_uniform": fit.ks_log_uniform, "ks_log_normal": fit.ks_log_normal,
                            "zero_fraction": fit.zero_fraction, "log_normal_mu": fit.mu,
                            "log_normal_sigma": fit.sigma, "n_positive": fit.n,
                            "ks_proposed": fit.ks_log_uniform if prior == "log-uniform" else fit.ks_log_normal}
        samples[activation] = (z, fit)
    ctx.table("fits", [{"activation": a, **f} for a, f in fits.items()])

    fig, ax = subplots(1, 2, figsize=(10, 3.8))
    for a, (activation, (z, fit)) in zip(ax, samples.items()):
        u = z.flatten().double()
        u = u[u > 0].log()
        a.hist(u.numpy(), bins=80, density=True, alpha=0.6, label="empirical log z")
        lo, hi = torch.quantile(u, torch.tensor(cfg.window, dtype=u.dtype)).tolist()
        inside = float(((u >= lo) & (u <= hi)).double().mean())
        a.plot([lo, lo, hi, hi], [0, inside / (hi - lo), inside / (hi - lo), 0], "k--",
               label=f"log-uniform on {cfg.window} quantiles (KS {fit.ks_log_uniform:.3f})")
        grid = torch.linspace(float(u.min()), float(u.max()), 200, dtype=torch.float64)
        dens = torch.exp(-0.5 * ((grid - fit.mu) / fit.sigma) ** 2) / (fit.sigma * math.sqrt(2 * math.pi))
        a.plot(grid.numpy(), dens.numpy(), "r-", label=f"log-normal μ={fit.mu:.2f}, σ={fit.sigma:.2f} "
               f"(KS {fit.ks_log_normal:.3f})")
        a.set(xlabel="log z (post-noise activation, log units)", ylabel="density",
              title=f"{activation}: {fits[activation]['zero_fraction']:.0%} of z are 0")
        a.legend(fontsize=7)
    ctx.figure(fig, "priors", f"{PAPER}, Fig. 1: histogram of log z of the last Information Dropout layer of "
               f"All-CNN-32 on {cfg.dataset} test images against the log-uniform (ReLU, Proposition 1) and "
               "log-normal (Softplus, Proposition 2) priors.")
    for activation, panel in (("relu", "1(a)"), ("softplus", "1(b)")):
        f = fits[activation]
        ctx.legacy_claim(id=f"as-fig{panel}-prior-{activation}", paper=PAPER, where=f"Fig. {panel}, §4",
                  statement=f"With {activation} activations the empirical distribution of the post-noise activations "
                            f"approximately follows the proposed {f['prior']} prior.",
                  criterion=f"KS distance of log z (z > 0) to the {f['prior']} prior ≤ {cfg.ks_max} (log-uniform: on "
                            f"the {cfg.window} quantile window; log-normal: the layer's learned prior μ, σ).",
                  measured={k: v for k, v in f.items() if k != "prior"}, outcome=f["ks_proposed"] <= cfg.ks_max)
