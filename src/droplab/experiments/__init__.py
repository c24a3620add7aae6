"""Experiments: one folder per paper; each registers ``run(config, ctx)`` under an id.

Add one by writing a module under ``droplab/experiments/<paper>/`` with a config dataclass
(subclass of :class:`ExperimentConfig`, quick defaults, ``PROFILES`` for smoke/paper) and a
function decorated with :func:`experiment`; it is discovered automatically.
"""

from droplab.experiments.claims import VERDICTS, Claim, verdict_from
from droplab.experiments.config import PROFILE_NAMES, ExperimentConfig
from droplab.experiments.registry import Experiment, all_experiments, experiment, get_experiment
from droplab.experiments.run import RunContext, read_run
from droplab.experiments.runner import reproduce, run_experiment, select

__all__ = [
    "ExperimentConfig", "PROFILE_NAMES",
    "experiment", "Experiment", "all_experiments", "get_experiment",
    "RunContext", "read_run", "run_experiment", "reproduce", "select",
    "Claim", "VERDICTS", "verdict_from",
]
