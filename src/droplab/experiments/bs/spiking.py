"""Baldi & Sadowski 2014, §10.1, Fig. 10.2: spiking, dropout and deterministic networks with the same weights.

Reproduce: ``droplab run bs-spiking --profile quick`` (real MNIST: the 4,000 ``mnist-5k`` training
images, logistic 784-128-128-10, Adam 1,500 steps; ``--profile paper``: MNIST, 784-1200³-10).

A logistic FNN is trained with dropout (keep r on the hidden units). With its weights, three networks
run on test inputs: (1) spiking — each hidden unit with activity O sends a spike of size r with
probability O (eq. 125, global firing); (2) dropout — it sends O with probability r; (3)
deterministic — it sends r·O (weights scaled by r). Monte Carlo over spikes/masks gives each
network's mean activities and the variances of the signals the hidden units send; the deterministic
propagation should approximate both means (eqs. 130–134, NWGM), and the variances follow eqs.
135–138: spiking r²E(O)(1 − E(O)), dropout r Var(O) + E(O)² r(1 − r), equal when O = r, the spiking
one larger when r > O. Finally "stochastic neurons can be used instead of dropout during learning":
a second net, from the same initialization, is trained with spiking hidden units in place of dropout
(same steps and optimizer; gradients of the expectation, straight-through) and the two test errors
are compared, paired by seed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from droplab._checks import check_int, check_positive, check_probability
from droplab._hooks import record_outputs
from droplab.data import Dataset
from droplab.experiments.claims import load_claims
from droplab.experiments.common import load_task, train_stage
from droplab.experiments.config import ExperimentConfig
from droplab.experiments.plotting import subplots
from droplab.experiments.registry import experiment
from droplab.experiments.run import RunContext
from droplab.models import FNN, Logistic
from droplab.nn import BernoulliDropout, StochasticSpiking, lend_generator, mc_mode, noise_layers
from droplab.nn.modes import evaluation
from droplab.training import TrainConfig

PAPER = "Baldi & Sadowski 2014"


@dataclass
class SpikingNetConfig(ExperimentConfig):
    """The logistic net of Fig. 10.2 and how it is trained (shared with bs-ensemble-errors, so that a
    ``reproduce`` trains each seed's dropout net once)."""

    dataset: str = "mnist-5k"
    n_train: int | None = None
    hidden: tuple[int, ...] = (128, 128)
    r: float = 0.5
    lr: float = 1e-3
    steps: int = 1500
    batch_size: int = 64

    def validate(self) -> None:
        check_probability("r", self.r, low_open=True)
        check_positive("lr", self.lr)
        for name in ("steps", "batch_size"):
            check_int(name, getattr(self, name), minimum=1)
        if not self.hidden:
            raise ValueError("hidden must list at least one hidden width")


@dataclass
class SpikingConfig(SpikingNetConfig):
    """``n_samples`` Monte Carlo runs of each network on ``n_inputs`` test images; eqs. 135–138's order of
    the two variances is scored where |r − E(O)| > ``tie`` and ≥ ``min_spikes`` minority outcomes are
    expected."""

    n_inputs: int = 50
    n_samples: int = 2000
    tie: float = 0.02
    min_spikes: float = 20.0

    PROFILES = {
        "smoke": {"hidden": (16,), "steps": 30, "n_inputs": 5, "n_samples": 100, "n_train": 200},
        "paper": {
            "dataset": "mnist",
            "hidden": (1200, 1200, 1200),
            "steps": 30000,
            "n_inputs": 100,
            "n_samples": 10000,
        },
    }

    def validate(self) -> None:
        super().validate()
        check_positive("tie", self.tie, allow_zero=True)
        check_positive("min_spikes", self.min_spikes, allow_zero=True)
        for name in ("n_inputs", "n_samples"):
            check_int(name, getattr(self, name), minimum=1)


def network(widths: Sequence[int], kind: str, r: float) -> FNN:
    """Logistic FNN with ``kind`` ("dropout": keep r, no rescaling; "spiking": spikes of size r, eq. 125)
    after every hidden layer; both evaluate to the deterministic network (activities r·O, Fig. 10.2)."""
    layer = (lambda _: StochasticSpiking(r)) if kind == "spiking" else (lambda p: BernoulliDropout(p, scale="none"))
    return FNN(list(widths), "logistic", dropout={k: 1 - r for k in range(1, len(widths) - 1)}, noise=layer)


def train_net(ctx: RunContext, cfg: SpikingNetConfig, kind: str, seed: int, train: Dataset,
              test: Dataset) -> tuple[FNN, dict[str, Any]]:
    """The ``kind`` net of ``seed`` (initialization from ``torch.manual_seed(seed)``, the same for both kinds),
    trained as a shared stage (bs-ensemble-errors trains the same dropout nets)."""
    torch.manual_seed(seed)
    model = network([train.in_features, *cfg.hidden, train.n_classes], kind, cfg.r)
    metrics = train_stage(ctx, f"train_{kind}_s{seed}", model, nn.functional.cross_entropy, train, test,
                          TrainConfig(optimizer="adam", lr=cfg.lr, steps=cfg.steps, batch_size=cfg.batch_size,
                                      seed=seed))
    return model, metrics


def twin(trained: FNN, kind: str, r: float) -> FNN:
    """The spiking or dropout network with the weights of ``trained`` (Fig. 10.2's first two networks).

    ``spiking``: :class:`droplab.nn.StochasticSpiking` (spike of size r with probability O, global
    firing, eq. 125) after every hidden layer; ``dropout``: :class:`droplab.nn.BernoulliDropout` keeping
    O with probability r (``scale="none"``), whose evaluation mode is the deterministic third network.
    """
    net = network(trained.widths, kind, r)
    net.load_state_dict(trained.state_dict())
    return net


def propagate(
    net: FNN, x: Tensor, mode: str, n_samples: int, generator: torch.Generator | None = None
) -> tuple[list[Tensor], list[Tensor]]:
    """Activities O of every hidden layer and the output, and the signals Δ the hidden units send.

    Returns ``(acts, signals)`` with tensors (S, N, units): ``acts`` per hidden layer then the output
    σ(logits), ``signals`` per noise layer (its output). ``mode="sample"`` runs ``n_samples`` noisy
    passes in one batch (Monte Carlo mode); ``"deterministic"`` one evaluation-mode pass (S = 1).
    """
    acts_mods = [m for m in net.net if isinstance(m, Logistic)]
    noise = noise_layers(net)
    s = 1 if mode == "deterministic" else n_samples
    ctx = evaluation(net) if mode == "deterministic" else mc_mode(net)
    with record_outputs(acts_mods + noise) as out, lend_generator(net, generator), torch.no_grad(), ctx:
        logits = net(x.repeat(s, 1))
    shape = lambda t: t.reshape(s, len(x), -1)  # noqa: E731
    acts = [shape(out[k][-1]) for k in range(len(acts_mods))] + [shape(torch.sigmoid(logits))]
    return acts, [shape(out[len(acts_mods) + k][-1]) for k in range(len(noise))]


SPECS = load_claims(__package__)
MEANS, LEARNING, VARIANCES, AVERAGED = (SPECS["bs-spiking-means"], SPECS["bs-sec101-spiking-learning"],
                                        SPECS["bs-spiking-variances"], SPECS["bs-spiking-eq136-138"])


def _one_seed(cfg: SpikingConfig, ctx: RunContext, seed: int) -> dict[str, Any]:
    """Train the dropout net of one seed, then run its three twins on test inputs."""
    train, test = load_task(cfg.dataset, cfg.n_train, device=cfg.device)
    model, metrics = train_net(ctx, cfg, "dropout", seed, train, test)
    _, spiking_metrics = train_net(ctx, cfg, "spiking", seed, train, test)
    x = test.x[: cfg.n_inputs]
    gen = torch.Generator().manual_seed(seed + 1)
    runs = {
        "spiking": propagate(twin(model, "spiking", cfg.r), x, "sample", cfg.n_samples, gen),
        "dropout": propagate(twin(model, "dropout", cfg.r), x, "sample", cfg.n_samples, gen),
        "deterministic": propagate(twin(model, "dropout", cfg.r), x, "deterministic", 1),
    }
    det = [a[0] for a in runs["deterministic"][0]]
    rows: list[dict[str, Any]] = []
    agree, counted = 0, 0
    for k in range(len(model.linears)):
        row: dict[str, Any] = {"seed": seed, "layer": k + 1 if k < len(cfg.hidden) else "output"}
        for m in ("spiking", "dropout"):
            acts = runs[m][0][k]
            mean = acts.mean(0)
            row[f"mean_abs_err_{m}"] = float((mean - det[k]).abs().mean())
            row[f"mc_stderr_{m}"] = float((acts.std(0) / cfg.n_samples**0.5).mean())
        if k < len(cfg.hidden):
            o_s, d_s = runs["spiking"][0][k], runs["dropout"][0][k]
            var_spike, var_drop = runs["spiking"][1][k].var(0), runs["dropout"][1][k].var(0)
            eo_s, eo_d = o_s.mean(0), d_s.mean(0)
            pred_spike = cfg.r**2 * eo_s * (1 - eo_s)  # eq. 136
            pred_drop = cfg.r * d_s.var(0) + eo_d**2 * cfg.r * (1 - cfg.r)  # eq. 138
            row["eq136_rel_err"] = float((var_spike - pred_spike).abs().sum() / pred_spike.sum())
            row["eq138_rel_err"] = float((var_drop - pred_drop).abs().sum() / pred_drop.sum())
            # Monte Carlo orders the two variances only where spikes are not too rare: the sample variance of n
            # Bernoulli(O) draws has relative SE ≈ 1/√(n·O(1 − O)) (kurtosis ≈ 1/(O(1 − O)) for a rare outcome) and
            # is 0 with probability (1 − O)^n ≈ e^(−nO) (at O = 1e-4, n = 2,000: 0.82), so pairs with fewer than
            # min_spikes expected minority outcomes are not decidable (at 20: relative SE ≤ 0.22, while the true
            # ratio r(1 − O)/(O(1 − r)) is ≥ 5 where O(1 − O) < 20/2,000 and r = 0.5).
            resolvable = cfg.n_samples * eo_d * (1 - eo_d) >= cfg.min_spikes
            decided = ((cfg.r - eo_d).abs() > cfg.tie) & resolvable
            row["unresolvable_fraction"] = float((~resolvable).double().mean())
            predicted = cfg.r > eo_d  # spiking variance larger iff r > O (eqs. 135, 137: r²O(1−O) vs O²r(1−r))
            observed = var_spike > var_drop
            row["order_agreement"] = float((predicted == observed)[decided].double().mean())
            if k == 0:  # O is fixed for a fixed input only in the first hidden layer (no input noise)
                agree += int((predicted == observed)[decided].sum())
                counted += int(decided.sum())
            row["spike_var_larger_fraction"] = float(observed.double().mean())
            row["mean_activity"] = float(eo_d.mean())
        rows.append(row)
    return {"rows": rows, "runs": runs, "det": det, "agree": agree, "counted": counted, "metrics": metrics,
            "spiking_metrics": spiking_metrics, "n_layers": len(model.linears)}


@experiment(
    "bs-spiking",
    paper=PAPER,
    reproduces="§10.1, Fig. 10.2, eqs. 125–138: spiking vs dropout vs deterministic networks, same weights",
    config=SpikingConfig,
    claims=[MEANS, VARIANCES, AVERAGED, LEARNING],
)
def run(cfg: SpikingConfig, ctx: RunContext) -> None:
    per = {s: _one_seed(cfg, ctx, s) for s in ctx.seeds()}
    ctx.table("three_networks", [r for res in per.values() for r in res["rows"]])
    first = per[ctx.seeds()[0]]
    runs, det = first["runs"], first["det"]
    ctx.log(test_acc=[res["metrics"]["test_acc"] for res in per.values()])

    fig, ax = subplots(1, 2, figsize=(10, 3.8))
    out = first["n_layers"] - 1
    for m, marker in (("spiking", "o"), ("dropout", "s")):
        ax[0].scatter(det[out].reshape(-1), runs[m][0][out].mean(0).reshape(-1), s=8, marker=marker, label=m)
    ax[0].plot([0, 1], [0, 1], "k:", lw=1)
    ax[0].set(
        xlabel="deterministic output W (probability)",
        ylabel="Monte Carlo mean output E(O)",
        title="mean outputs vs deterministic propagation",
    )
    ax[0].legend(fontsize=8)
    eo = runs["dropout"][0][0].mean(0).reshape(-1)
    ax[1].scatter(eo, runs["spiking"][1][0].var(0).reshape(-1), s=6, label="spiking: Var Δ")
    ax[1].scatter(eo, runs["dropout"][1][0].var(0).reshape(-1), s=6, label="dropout: Var Δ")
    ax[1].axvline(cfg.r, color="gray", ls=":", label=f"O = r = {cfg.r}")
    ax[1].set(
        xlabel="mean activity E(O), hidden layer 1",
        ylabel="variance of the sent signal",
        title="eqs. 135–138: which network is noisier",
    )
    ax[1].legend(fontsize=8)
    ctx.figure(
        fig,
        "three_networks",
        f"{ctx.paper}, Fig. 10.2 and eqs. 130–138: spiking, dropout and deterministic "
        f"networks with the same trained weights (keep/spike size r = {cfg.r}, {cfg.n_samples} Monte Carlo "
        f"runs on {cfg.n_inputs} test inputs of {cfg.dataset}, seed {ctx.seeds()[0]}).",
        claims=[MEANS.id],
    )

    last = {k: [res["rows"][-1][k] for res in per.values()] for k in ("mean_abs_err_spiking", "mean_abs_err_dropout",
                                                                       "mc_stderr_spiking", "mc_stderr_dropout")}
    ctx.claim(MEANS, [max(a, b) for a, b in zip(last["mean_abs_err_spiking"], last["mean_abs_err_dropout"])],
              measured={**last, "test_acc": [res["metrics"]["test_acc"] for res in per.values()]})
    frac = [res["agree"] / res["counted"] if res["counted"] else None for res in per.values()]
    ctx.check(VARIANCES, all(f is not None and f >= 0.95 for f in frac),
              {"agreement_layer1": frac, "pairs": [res["counted"] for res in per.values()],
               "unresolvable_fraction_by_layer": [[r["unresolvable_fraction"] for r in res["rows"]
                                                   if "unresolvable_fraction" in r] for res in per.values()],
               "agreement_by_layer_reported": [[r["order_agreement"] for r in res["rows"] if "order_agreement" in r]
                                               for res in per.values()]})
    rel = {q: [r[f"{q}_rel_err"] for res in per.values() for r in res["rows"] if "eq136_rel_err" in r]
           for q in ("eq136", "eq138")}
    ctx.check(AVERAGED, max(max(v) for v in rel.values()) <= 0.1, {f"{q}_rel_err": v for q, v in rel.items()})
    acc = {k: [res[m]["test_acc"] for res in per.values()] for k, m in (("dropout", "metrics"),
                                                                         ("spiking", "spiking_metrics"))}
    ctx.log(test_acc_spiking_trained=acc["spiking"])
    ctx.claim(LEARNING, [(1 - s) - (1 - d) for s, d in zip(acc["spiking"], acc["dropout"])],
              regime_met=[min(s, d) >= 0.5 for s, d in zip(acc["spiking"], acc["dropout"])],
              regime_values={"test_acc_dropout": acc["dropout"], "test_acc_spiking": acc["spiking"]},
              regime_reason="a net did not learn (test accuracy < 0.5)",
              measured={"test_acc_dropout": acc["dropout"], "test_acc_spiking": acc["spiking"]})
