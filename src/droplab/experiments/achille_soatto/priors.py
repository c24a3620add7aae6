"""Achille & Soatto 2017, Fig. 1: the post-noise activations follow the proposed priors — log-uniform
for ReLU (Proposition 1), log-normal for Softplus (Proposition 2).

Reproduce: ``droplab run as-priors --profile quick`` (All-CNN-32 with Information Dropout on ``mnist-5k``
digits padded to 32×32, the KL divided by MNIST's N = 60,000; ``--profile paper`` is CIFAR-10 at full
width, N = 50,000). Per seed, one net per activation is trained with the §6 recipe; the activations
``z = ε ⊙ f(x)`` of its last Information Dropout layer on the test images (noise on, batch norm on its
statistics) are split in two halves of the inputs: the prior's free parameters are fitted on one half
(log-normal: μ, σ by maximum likelihood; log-uniform: the window between the 5% and 95% quantiles of
log z) and the Kolmogorov–Smirnov distance of log z is measured on the other, so the test does not
compare activations with a prior fitted to themselves.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from droplab import data as _data
from droplab._checks import check_positive
from droplab.experiments.achille_soatto import PAPER
from droplab.experiments.achille_soatto.common import (
    RecipeConfig,
    alpha_figure,
    kl_weight,
    kl_weight_text,
)
from droplab.experiments.claims import load_claims
from droplab.experiments.common import train_stage
from droplab.experiments.plotting import subplots
from droplab.experiments.registry import experiment
from droplab.experiments.run import RunContext
from droplab.information import (
    alpha_values,
    ib_loss_fn,
    ks_log_normal,
    ks_log_uniform,
    noisy_activations,
    recompute_batchnorm,
)
from droplab.models import AllCNN
from droplab.nn import InformationDropout, noise_layers
from droplab.training import accuracy


@dataclass
class PriorsConfig(RecipeConfig):
    """``ks_max``: the largest KS distance that counts as "approximately follows the prior"; images are
    zero-padded to ``image_size`` (All-CNN-32 takes 32×32)."""

    dataset: str = "mnist-5k"
    image_size: int = 32
    n_train: int | None = 1000
    width: float = 0.1
    beta: float = 1.0
    epochs: int = 5
    milestone_epochs: tuple[int, ...] = (3, 4)
    window: tuple[float, float] = (0.05, 0.95)
    ks_max: float = 0.1
    min_accuracy: float = 0.8

    PROFILES = {
        "smoke": {"width": 0.05, "epochs": 1, "milestone_epochs": (), "n_train": 100},
        "paper": {"dataset": "cifar10", "n_train": None, "paper_n": 50_000, "width": 1.0, "epochs": 80,
                  "milestone_epochs": (30, 60)},
    }

    def validate(self) -> None:
        super().validate()
        check_positive("beta", self.beta, allow_zero=True)
        check_positive("ks_max", self.ks_max)


SPECS = load_claims(__package__)
RELU, SOFTPLUS, JOINT = SPECS["as-fig1a-prior-relu"], SPECS["as-fig1b-prior-softplus"], SPECS["as-fig1-priors"]
CLAIMS = (RELU, SOFTPLUS, JOINT)
PANELS = (("relu", "log-uniform", RELU), ("softplus", "log-normal", SOFTPLUS))


def _padded(cfg: PriorsConfig, split: str) -> _data.Dataset:
    ds = _data.load(cfg.dataset, split, n=cfg.n_train if split == "train" else None, flat=False)
    pad = max(0, cfg.image_size - ds.x.shape[-1])
    x = F.pad(ds.x, (pad // 2, pad - pad // 2, pad // 2, pad - pad // 2))
    return _data.Dataset(ds.name, split, x, ds.y, ds.n_classes, ds.meta).to(cfg.device)


def _held_out_ks(z: torch.Tensor, prior: str, window: tuple[float, float]) -> dict[str, float]:
    """Fit the prior's free parameters on the first half of the inputs, measure KS on the second."""
    half = len(z) // 2
    fit, test = z[:half].flatten().double(), z[half:]
    u = fit[fit > 0].log()
    if prior == "log-uniform":
        a, b = torch.quantile(u, torch.tensor(window, dtype=u.dtype)).tolist()
        return {"ks": ks_log_uniform(test, bounds=(a, b)), "a": a, "b": b}
    mu, sigma = float(u.mean()), float(u.std(unbiased=False))
    return {"ks": ks_log_normal(test, mu, sigma)[0], "mu": mu, "sigma": sigma}


@experiment("as-priors", paper=PAPER, reproduces="Fig. 1: post-noise activations follow the log-uniform (ReLU) and "
            "log-normal (Softplus) priors", config=PriorsConfig, claims=CLAIMS)
def run(cfg: PriorsConfig, ctx: RunContext) -> None:
    train, test = _padded(cfg, "train"), _padded(cfg, "test")
    ctx.log(**kl_weight(cfg.beta, cfg.paper_n, len(train)))
    recipe = cfg.recipe(cfg.beta)
    rows, shown, alphas = [], {}, {}
    for seed in ctx.seeds():
        for activation, prior, _ in PANELS:
            torch.manual_seed(seed)
            model = AllCNN("allcnn32", train.n_classes, in_channels=1, width=cfg.width, activation=activation,
                           noise="information", max_alpha=cfg.max_alpha).to(cfg.device)
            train_stage(ctx, f"train_{activation}_s{seed}", model, ib_loss_fn(model, cfg.beta, cfg.paper_n), train,
                        None, recipe.train_config(len(train), seed=seed))
            recompute_batchnorm(model, train.x, batch_size=cfg.batch_size)
            last = [m for m in noise_layers(model) if isinstance(m, InformationDropout)][-1]
            z = ctx.stage(f"activations_{activation}_s{seed}", lambda m=model, layer=last, s=seed: noisy_activations(
                m, test.x, layer, generator=torch.Generator().manual_seed(s)))
            fit = _held_out_ks(z, prior, cfg.window)
            rows.append({"seed": seed, "activation": activation, "prior": prior, **fit,
                         "zero_fraction": float((z <= 0).double().mean()),
                         "test_acc": accuracy(model, test.x, test.y)})
            if seed == ctx.seeds()[0]:
                shown[activation] = (z, fit)
                alphas.update({f"{activation} {k}": v for k, v in alpha_values(model, test.x).items()})
    ctx.table("fits", rows)

    fig, ax = subplots(1, 2, figsize=(10, 3.8))
    for a, (activation, prior, _) in zip(ax, PANELS):
        z, fit = shown[activation]
        u = z[len(z) // 2:].flatten().double()
        u = u[u > 0].log()
        a.hist(u.numpy(), bins=80, density=True, alpha=0.6, label="held-out log z")
        if prior == "log-uniform":
            inside = float(((u >= fit["a"]) & (u <= fit["b"])).double().mean())
            h = inside / (fit["b"] - fit["a"])
            a.plot([fit["a"], fit["a"], fit["b"], fit["b"]], [0, h, h, 0], "k--",
                   label=f"log-uniform on the other half's 5–95% window (KS {fit['ks']:.3f})")
        else:
            grid = torch.linspace(float(u.min()), float(u.max()), 200, dtype=torch.float64)
            dens = torch.distributions.Normal(fit["mu"], fit["sigma"]).log_prob(grid).exp()
            a.plot(grid.numpy(), dens.numpy(), "r-", label=f"log-normal fitted on the other half, μ={fit['mu']:.2f}, "
                   f"σ={fit['sigma']:.2f} (KS {fit['ks']:.3f})")
        a.set(xlabel="log z (post-noise activation)", ylabel="density",
              title=f"{activation}: {float((z <= 0).double().mean()):.0%} of z are 0")
        a.legend(fontsize=7)
    ctx.figure(fig, "priors", f"{ctx.paper}, Fig. 1: histogram of log z of the last Information Dropout layer of "
               f"All-CNN-32 at width {cfg.width:g} on {cfg.dataset} test digits padded to {cfg.image_size}×"
               f"{cfg.image_size} (seed {ctx.seeds()[0]}; {kl_weight_text(cfg.beta, cfg.paper_n, len(train))}), "
               "against the priors fitted on the other half of the test inputs.", claims=[c.id for c in CLAIMS])
    ctx.log(alpha_summary=alpha_figure(ctx, alphas, cfg.max_alpha, "alpha_hist",
                                       f"All-CNN-32, seed {ctx.seeds()[0]}, test digits"))

    seeds = ctx.seeds()
    ks = {act: [next(r["ks"] for r in rows if r["seed"] == s and r["activation"] == act) for s in seeds]
          for act, _, _ in PANELS}
    acc = {act: [next(r["test_acc"] for r in rows if r["seed"] == s and r["activation"] == act) for s in seeds]
           for act, _, _ in PANELS}
    gate = [min(acc["relu"][i], acc["softplus"][i]) >= cfg.min_accuracy for i in range(len(seeds))]
    why = f"a net stayed below test accuracy {cfg.min_accuracy}"
    for activation, _, spec in PANELS:
        ctx.claim(spec, ks[activation], regime_met=gate, regime_values={"test_acc": acc}, regime_reason=why,
                  measured={"zero_fraction": [r["zero_fraction"] for r in rows if r["activation"] == activation]})
    ctx.claim(JOINT, [max(a, b) for a, b in zip(ks["relu"], ks["softplus"])], regime_met=gate,
              regime_values={"test_acc": acc}, regime_reason=why, measured=ks)
