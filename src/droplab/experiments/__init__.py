"""Experiments: one folder per paper; each registers ``run(config, ctx)`` under an id.

Add one by writing a module under ``droplab/experiments/<paper>/`` with a config dataclass
(subclass of :class:`ExperimentConfig`, quick defaults, ``PROFILES`` for smoke/paper) and a
function decorated with :func:`experiment`; it is discovered automatically.
"""

from droplab.experiments.claims import (
    CHECK_VERDICTS,
    KINDS,
    SEEDS_NEEDED,
    VERDICTS,
    ClaimSpec,
    Criterion,
    Record,
    decide,
    interval,
)
from droplab.experiments.config import PROFILE_NAMES, ExperimentConfig
from droplab.experiments.registry import (
    Experiment,
    all_experiments,
    claim_listing,
    claims_hash,
    experiment,
    get_experiment,
)
from droplab.experiments.run import RunContext, read_run
from droplab.experiments.runner import reproduce, run_experiment, select

__all__ = [
    "ExperimentConfig", "PROFILE_NAMES",
    "experiment", "Experiment", "all_experiments", "get_experiment",
    "RunContext", "read_run", "run_experiment", "reproduce", "select",
    "ClaimSpec", "Criterion", "Record", "KINDS", "VERDICTS", "CHECK_VERDICTS", "SEEDS_NEEDED", "decide", "interval",
    "claim_listing", "claims_hash",
]
