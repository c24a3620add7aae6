"""What the Achille & Soatto experiments share: the §6 recipe's config fields, the paper's KL weight β/N, and
where α(x) sits under its cap.

§6: "We also divide the KL-divergence term by the number of training samples" — N = 60,000 for
MNIST (and Cluttered MNIST), 50,000 for CIFAR-10. An experiment that trains on fewer examples keeps
the paper's *effective* weight β/N per example by dividing by the paper's N (``paper_n``), not by its
own training-set size; otherwise a small training set multiplies the weight by N / n_train.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
from torch import Tensor

from droplab._checks import check_int, check_positive
from droplab.experiments.config import ExperimentConfig
from droplab.experiments.plotting import subplots
from droplab.experiments.run import RunContext
from droplab.information import InformationDropoutRecipe

MNIST_N = 60_000
CIFAR10_N = 50_000


def check_paper_n(paper_n: int) -> None:
    check_int("paper_n", paper_n, minimum=1)


@dataclass
class RecipeConfig(ExperimentConfig):
    """The fields of §6's training recipe (:class:`droplab.information.InformationDropoutRecipe`), scaled down
    at quick: α(x) < ``max_alpha``; Adam at ``lr``, divided by 10 at ``milestone_epochs``; the KL divided by
    the paper's training-set size ``paper_n``."""

    paper_n: int = MNIST_N
    max_alpha: float = 0.5
    lr: float = 0.01
    epochs: int = 4
    milestone_epochs: tuple[int, ...] = (3,)
    batch_size: int = 100

    def recipe(self, beta: float = 1.0) -> InformationDropoutRecipe:
        """The recipe with these fields and KL weight ``beta``."""
        return InformationDropoutRecipe(beta=beta, max_alpha=self.max_alpha, lr=self.lr, epochs=self.epochs,
                                        milestone_epochs=self.milestone_epochs, batch_size=self.batch_size)

    def validate(self) -> None:
        check_paper_n(self.paper_n)
        check_positive("max_alpha", self.max_alpha)


def kl_weight(beta: float, paper_n: int, n_train: int) -> dict[str, float]:
    """β, the N the KL is divided by, the training-set size and the effective weight β/N (what is logged)."""
    return {"beta": beta, "paper_n": paper_n, "n_train": n_train, "effective_beta": beta / paper_n}


def kl_weight_text(beta: float | tuple[float, ...], paper_n: int, n_train: int) -> str:
    """The KL weight in words, for captions: β (one or a grid), N, the effective β/N and the training-set size."""
    betas = beta if isinstance(beta, tuple) else (beta,)
    return (f"β = {', '.join(f'{b:g}' for b in betas)}, KL divided by the paper's N = {paper_n:,} (effective weight "
            f"β/N = {', '.join(f'{b / paper_n:.3g}' for b in betas)} per example) while training on n = {n_train:,} "
            "examples")


def alpha_figure(ctx: RunContext, alphas: dict[str, Tensor], cap: float, name: str, what: str,
                 claims: Iterable[str] = ()) -> dict[str, dict[str, float]]:
    """Histogram of α(x) per layer on a log axis against its cap; returns per layer the quantiles and the
    fraction within 1% of the cap (what the report logs beside the figure)."""
    layers = list(alphas)
    fig, axes = subplots(1, len(layers), figsize=(3.2 * len(layers), 2.8), squeeze=False)
    summary = {}
    for ax, layer in zip(axes[0], layers):
        a = alphas[layer].flatten().double().numpy()
        q = np.quantile(a, [0.05, 0.5, 0.95])
        near = float(np.mean(a >= 0.99 * cap))
        summary[layer] = {"q05": float(q[0]), "median": float(q[1]), "q95": float(q[2]), "mean": float(a.mean()),
                          "at_cap": near}
        ax.hist(a, bins=np.geomspace(max(a.min(), 1e-4), cap, 50), color="tab:purple", alpha=0.8)
        ax.axvline(cap, color="k", ls="--", label=f"cap {cap:g}")
        ax.set(xscale="log", xlabel="α(x) (noise scale of log ε)", ylabel="count (units × positions × inputs)",
               title=f"{layer}: median {q[1]:.3g}, {near:.0%} ≥ 0.99·cap")
        ax.legend(fontsize=7)
    ctx.figure(fig, name, f"{ctx.paper}: distribution of α(x) per Information Dropout layer ({what}), against "
               f"the cap α < {cap:g} (§6); counts over units, positions and test inputs.", claims=list(claims))
    return summary
