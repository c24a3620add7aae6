"""Training: fit loops (GD, SGD, Adam), callbacks, checkpoints, mode contexts."""

from droplab.nn.modes import evaluation, training
from droplab.training.callbacks import RecordMetric, RecordParameters
from droplab.training.loop import OPTIMIZERS, FitResult, TrainConfig, fit, full_loss
from droplab.training.metrics import accuracy

__all__ = [
    "TrainConfig", "FitResult", "fit", "full_loss", "OPTIMIZERS",
    "RecordParameters", "RecordMetric",
    "accuracy", "evaluation", "training",
]
