"""Configurations of Zhang, Zhou & Xu 2024, Fig. 1 (``zzx-flat-minima*``): the FNN of Fig. 1(a) and the
VGG-9, ResNet-20 and transformer of Fig. 1(b–d), each with its smoke, quick and paper profiles."""

from __future__ import annotations

from dataclasses import dataclass

from droplab._checks import check_choice, check_int, check_positive, check_probability
from droplab.experiments.config import ExperimentConfig
from droplab.landscape import GRANULARITIES
from droplab.training import TrainConfig

MODELS = ("fnn", "vgg9", "resnet20", "transformer")


@dataclass
class FlatMinimaConfig(ExperimentConfig):
    """Fig. 1(a): the FNN. ``keep`` has one keep probability per hidden layer (FNN) or one for all
    noise layers (CNNs). ``level=None`` compares the nets at 2 × the larger of their two minima."""

    model: str = "fnn"
    dataset: str = "mnist-5k"
    n_train: int | None = None
    n_test: int | None = None
    pool: int = 1  # average-pool images pool × pool (a CPU-sized input; Dataset.pooled)
    hidden: tuple[int, ...] = (128, 128)
    width: float = 1.0
    keep: tuple[float, ...] = (0.8, 0.5)
    optimizer: str = "adam"
    lr: float = 1e-3
    momentum: float = 0.0
    nesterov: bool = False
    milestones: tuple[int, ...] = ()
    warmup: int = 0
    steps: int = 1500
    batch_size: int | None = 128
    chunk: int | None = None
    amp: bool = False
    stop_loss: float = 1e-3
    n_directions: int = 6
    granularity: str = "layer"
    also_granularity: str | None = "filter"
    factors: tuple[float, ...] = (1.5, 2.0, 3.0)
    plot_radius: float = 1.0
    radius: float = 4.0
    tol: float = 1e-2  # relative bisection tolerance of each width end (interval_flatness)
    profile_points: int = 21
    level: float | None = 0.5
    near_zero: float | None = 0.05
    min_gap: float | None = None

    PROFILES = {
        "smoke": {"hidden": (32, 32), "steps": 150, "lr": 1e-2, "n_directions": 2, "profile_points": 9,
                  "n_train": 300},
        "paper": {"dataset": "mnist", "hidden": (1024, 1024), "lr": 1e-4, "steps": 20000, "tol": 1e-3,
                  "profile_points": 41, "n_directions": 20},
    }

    def validate(self) -> None:
        check_choice("model", self.model, MODELS)
        if self.model == "fnn" and len(self.keep) != len(self.hidden):
            raise ValueError(f"keep must give one keep probability per hidden layer ({len(self.hidden)}), "
                             f"got {self.keep}")
        if self.model != "fnn" and len(self.keep) != 1:
            raise ValueError(f"keep must give one keep probability for model {self.model!r}, got {self.keep}")
        for i, q in enumerate(self.keep):
            check_probability(f"keep[{i}]", q, low_open=True, high_open=False)
        check_choice("granularity", self.granularity, GRANULARITIES)
        if self.also_granularity is not None:
            check_choice("also_granularity", self.also_granularity, GRANULARITIES)
        if not self.factors or any(not c > 1 for c in self.factors):
            raise ValueError(f"factors must be Definition 2 pre-factors > 1, got {self.factors}")
        check_int("profile_points", self.profile_points, minimum=3)
        check_int("pool", self.pool, minimum=1)
        for name in ("radius", "plot_radius", "tol") + (("level",) if self.level is not None else ()) + \
                (("near_zero",) if self.near_zero is not None else ()):
            check_positive(name, getattr(self, name))
        train_config(self).validate()


@dataclass
class NetFlatMinimaConfig(FlatMinimaConfig):
    """The fields Figs. 1(b–d) share: one noise layer kind (a single keep), full batch, widths of whole
    filters (one per output channel or row, §5), Definition 2's factor 2 along 4 directions; and the
    CNNs' (b, c) CPU-sized training, 300 GD steps on 512 CIFAR images (the transformer sets its own)."""

    n_train: int | None = 512
    keep: tuple[float, ...] = (0.8,)
    optimizer: str = "gd"
    steps: int = 300
    batch_size: int | None = None
    granularity: str = "filter"
    also_granularity: str | None = None
    factors: tuple[float, ...] = (2.0,)
    n_directions: int = 4


@dataclass
class UngatedFlatMinimaConfig(NetFlatMinimaConfig):
    """Figs. 1(c, d): the paper's nets do not reach a small training loss, so no near-zero gate; the two nets
    are compared at 2 × the larger minimum (``level=None``) once the plain net overfits by ``min_gap``."""

    level: float | None = None
    near_zero: float | None = None
    min_gap: float | None = 0.1


@dataclass
class VGG9FlatMinimaConfig(NetFlatMinimaConfig):
    """Fig. 1(b): VGG-9, dropout (keep 0.8) after each pooling layer, GD with Nesterov momentum,
    lr 0.1 divided by 10 at 150, 225 and 275 of 300 epochs on the first 2,048 CIFAR-10 images."""

    model: str = "vgg9"
    width: float = 0.125
    lr: float = 0.1
    momentum: float = 0.9
    nesterov: bool = True
    milestones: tuple[int, ...] = (150, 225, 275)

    PROFILES = {
        "smoke": {"steps": 10, "milestones": (5,), "n_directions": 1, "profile_points": 5, "n_train": 16,
                  "n_test": 16},
        "paper": {"dataset": "cifar10", "n_train": 2048, "width": 1.0, "n_directions": 20},
    }


@dataclass
class ResNetFlatMinimaConfig(UngatedFlatMinimaConfig):
    """Fig. 1(c): ResNet-20, dropout (keep 0.8) after the convolutions, GD at lr 0.01 for 1,200 epochs on
    all 50,000 CIFAR-100 training images (App. A). The paper's nets do not reach a small training loss,
    so no near-zero gate, and the two nets are compared at 2 × the larger minimum (``level=None``).
    ``quick`` average-pools the images to 14×14 (a CPU-sized input, as ``zzx-noise-resnet20``: a step
    costs 5.8× less than at 28×28) and keeps the paper's 1,200 full-batch steps: after 300, the
    dropout nets were still below the regime."""

    model: str = "resnet20"
    pool: int = 2
    width: float = 0.25
    lr: float = 0.05
    steps: int = 1200

    PROFILES = {
        "smoke": {"steps": 10, "n_directions": 1, "profile_points": 5, "n_train": 16, "n_test": 16},
        "paper": {"dataset": "cifar100", "n_train": None, "pool": 1, "width": 1.0, "lr": 0.01, "chunk": 2500,
                  "n_directions": 20},
    }


@dataclass
class TransformerFlatMinimaConfig(UngatedFlatMinimaConfig):
    """Fig. 1(d): the App. A transformer (d_model 50, d_k = d_v = 20, d_ff 256, 4 heads, 3 layers),
    dropout (keep 0.9) on sub-layer outputs and embedding sums, full-batch Adam with the warm-up
    schedule of Vaswani et al. (4,000 warm-up steps, 10,000 steps) on the first 2,048 Multi30k pairs,
    cross-entropy with label smoothing 0.1. ``quick`` runs on the generated ``reversal`` task. Like
    ResNet-20, the paper's nets do not reach a small loss: no near-zero gate, ``level=None``."""

    model: str = "transformer"
    dataset: str = "reversal"
    n_train: int | None = 128
    keep: tuple[float, ...] = (0.9,)
    optimizer: str = "adam"
    lr: float = 3e-3
    warmup: int = 100
    steps: int = 300

    PROFILES = {
        "smoke": {"steps": 20, "warmup": 5, "n_directions": 2, "profile_points": 9, "n_train": 64},
        "paper": {"dataset": "multi30k", "n_train": 2048, "lr": 50 ** -0.5 * 4000 ** -0.5, "warmup": 4000,
                  "steps": 10000, "n_directions": 20},
    }


def train_config(cfg: FlatMinimaConfig) -> TrainConfig:
    return TrainConfig(optimizer=cfg.optimizer, lr=cfg.lr, steps=cfg.steps, batch_size=cfg.batch_size,
                       momentum=cfg.momentum, nesterov=cfg.nesterov, milestones=cfg.milestones, warmup=cfg.warmup,
                       chunk=cfg.chunk, amp=cfg.amp, stop_loss=cfg.stop_loss, eval_every=50, seed=cfg.seed)
