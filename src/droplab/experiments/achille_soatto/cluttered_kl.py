"""Achille & Soatto 2017, Fig. 2: on Cluttered MNIST, the KL of Information Dropout concentrates on the
digit, and larger β discards the clutter first.

Reproduce: ``droplab run as-cluttered-kl --profile quick`` (cluttered ``digits`` upsampled to 16 px on
48×48 canvases; ``--profile paper`` is MNIST digits on 96×96 canvases with 21 distractors and
All-CNN-96 at full width). For each β an All-CNN-96 with Information Dropout (ReLU, log-uniform prior)
is trained with the §6 recipe; the per-position KL of each Information Dropout layer (summed over
channels) is mapped over test images, and the fraction of the KL inside the digit's ink box is
compared with the fraction of the map's area inside it (:func:`droplab.information.box_fraction`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from matplotlib.patches import Rectangle

from droplab._checks import check_int, check_positive
from droplab.data.cluttered import cluttered
from droplab.experiments.achille_soatto import PAPER
from droplab.experiments.common import train_stage
from droplab.experiments.config import ExperimentConfig
from droplab.experiments.plotting import subplots
from droplab.experiments.registry import experiment
from droplab.experiments.run import RunContext
from droplab.information import InformationDropoutRecipe, box_fraction, ib_loss_fn, kl_maps
from droplab.models import AllCNN
from droplab.training import accuracy


@dataclass
class ClutteredKLConfig(ExperimentConfig):
    """Cluttered canvases, the β grid, All-CNN-96's width and the §6 recipe (scaled down)."""

    source: str = "digits"
    digit_size: int = 16
    canvas: int = 48
    n_distractors: int = 8
    fragment: int | None = None
    n_train: int | None = None
    n_test: int = 200
    betas: tuple[float, ...] = (0.01, 0.1, 1.0)
    width: float = 0.25
    max_alpha: float = 0.5
    lr: float = 0.01
    epochs: int = 12
    milestone_epochs: tuple[int, ...] = (5, 9)
    batch_size: int = 100
    n_show: int = 4
    localization_ratio: float = 2.0

    PROFILES = {
        "smoke": {"digit_size": 8, "canvas": 16, "n_distractors": 2, "n_train": 100, "n_test": 20,
                  "betas": (0.01, 1.0), "width": 0.1, "epochs": 1, "milestone_epochs": (), "n_show": 2},
        "paper": {"source": "mnist", "digit_size": 28, "canvas": 96, "n_distractors": 21, "n_test": 1000,
                  "betas": (0.001, 0.01, 0.1, 1.0), "width": 1.0, "epochs": 80, "milestone_epochs": (30, 60)},
    }

    def validate(self) -> None:
        for b in self.betas:
            check_positive("betas entry", b, allow_zero=True)
        if len(self.betas) < 2 or list(self.betas) != sorted(self.betas):
            raise ValueError(f"betas must list at least two increasing values, got {self.betas}")
        check_positive("max_alpha", self.max_alpha)
        check_int("n_test", self.n_test, minimum=1)


@experiment("as-cluttered-kl", paper=PAPER, reproduces="Fig. 2: per-position KL of Information Dropout on "
            "cluttered digits localizes the digit; larger β drops the clutter", config=ClutteredKLConfig)
def run(cfg: ClutteredKLConfig, ctx: RunContext) -> None:
    opts = {"canvas": cfg.canvas, "n_distractors": cfg.n_distractors, "fragment": cfg.fragment, "source": cfg.source,
            "digit_size": cfg.digit_size, "seed": cfg.seed}
    train = cluttered("train", n_images=cfg.n_train, **opts).to(cfg.device)
    test = cluttered("test", n_images=cfg.n_test, **opts)
    boxes = test.meta["boxes"]
    test = test.to(cfg.device)
    recipe = InformationDropoutRecipe(max_alpha=cfg.max_alpha, lr=cfg.lr, epochs=cfg.epochs,
                                      milestone_epochs=cfg.milestone_epochs, batch_size=cfg.batch_size)
    rows, shown = [], {}
    for beta in cfg.betas:
        torch.manual_seed(cfg.seed)
        model = AllCNN("allcnn96", 10, in_channels=1, width=cfg.width, noise="information",
                       max_alpha=cfg.max_alpha).to(cfg.device)
        train_stage(ctx, f"train_beta{beta:g}", model, ib_loss_fn(model, beta, len(train)), train, None,
                    recipe.train_config(len(train), seed=cfg.seed))

        def measure(model=model) -> dict:
            maps = kl_maps(model, test.x)
            return {"maps": {k: v.cpu() for k, v in maps.items()}, "test_acc": accuracy(model, test.x, test.y)}

        res = ctx.stage(f"maps_beta{beta:g}", measure)
        shown[beta] = {k: v[: cfg.n_show] for k, v in res["maps"].items()}
        for depth, (name, maps) in enumerate(res["maps"].items(), start=1):
            mass, area = box_fraction(maps, boxes, cfg.canvas)
            ok = ~torch.isnan(mass)
            rows.append({"beta": beta, "layer": depth, "name": name, "kl_in_box": float(mass[ok].mean()),
                         "area_in_box": float(area[ok].mean()), "ratio": float(mass[ok].mean() / area[ok].mean()),
                         "mean_total_kl": float(maps.sum((1, 2)).mean()), "test_acc": res["test_acc"]})
    ctx.table("kl_in_box", rows)

    n_layers = min(3, len(next(iter(shown.values()))))
    fig, axes = subplots(cfg.n_show, 1 + n_layers * len(cfg.betas),
                             figsize=(1.6 * (1 + n_layers * len(cfg.betas)), 1.6 * cfg.n_show), squeeze=False)
    for i in range(cfg.n_show):
        axes[i, 0].imshow(test.x[i, 0].cpu().numpy(), cmap="gray")
        t, lft, b, r = boxes[i].tolist()
        axes[i, 0].add_patch(Rectangle((lft - 0.5, t - 0.5), r - lft, b - t, fill=False, ec="lime", lw=1))
        col = 1
        for beta in cfg.betas:
            for name in list(shown[beta])[:n_layers]:
                extent = (-0.5, cfg.canvas - 0.5, cfg.canvas - 0.5, -0.5)  # the map over the input's pixels
                axes[i, col].imshow(test.x[i, 0].cpu().numpy(), cmap="gray", extent=extent)
                axes[i, col].imshow(shown[beta][name][i].numpy(), cmap="inferno", alpha=0.7, extent=extent,
                                    interpolation="nearest")
                if i == 0:
                    axes[i, col].set_title(f"β={beta:g}\n{name}", fontsize=7)
                col += 1
    for a in axes.flat:
        a.set_xticks([])
        a.set_yticks([])
    ctx.figure(fig, "kl_maps", f"{PAPER}, Fig. 2: total KL per spatial position (nats, summed over channels) of the "
               f"first {n_layers} Information Dropout layers of All-CNN-96 over cluttered test digits, for β = "
               f"{', '.join(f'{b:g}' for b in cfg.betas)}; left, the input with the digit's box.")

    by = {(r["beta"], r["layer"]): r for r in rows}
    first = range(1, n_layers + 1)
    top = max(cfg.betas)
    localizes = max(by[(top, d)]["ratio"] for d in first)
    deepest = [by[(b, n_layers)]["kl_in_box"] for b in cfg.betas]
    measured = {"ratio_at_largest_beta": {str(d): by[(top, d)]["ratio"] for d in first},
                "kl_in_box_vs_beta_layer": {f"{b:g}": v for b, v in zip(cfg.betas, deepest)},
                "test_acc": {f"{b:g}": by[(b, 1)]["test_acc"] for b in cfg.betas}}
    ctx.legacy_claim(id="as-fig2-localizes", paper=PAPER, where="Fig. 2, §6",
              statement="The KL divergence alone provides enough information to localize the digit.",
              criterion=f"At the largest β ({top:g}), in at least one of the first {n_layers} Information Dropout "
                        f"layers, the mean fraction of KL inside the digit's box is ≥ {cfg.localization_ratio} × "
                        "the mean fraction of the map's area inside it.",
              measured=measured, outcome=localizes >= cfg.localization_ratio)
    ctx.legacy_claim(id="as-fig2-beta-nuisances", paper=PAPER, where="Fig. 2, §6",
              statement="Larger β makes the Information Dropout layers discard the nuisances (clutter) first.",
              criterion=f"In layer {n_layers}, the mean fraction of KL inside the digit's box increases strictly "
                        f"with β over {', '.join(f'{b:g}' for b in cfg.betas)}.",
              measured=measured, outcome=all(a < b for a, b in zip(deepest, deepest[1:])))
