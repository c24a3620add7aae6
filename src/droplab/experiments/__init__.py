"""Experiments: one folder per paper; each registers ``run(config, ctx)`` under an id.

Add one by writing a module under ``droplab/experiments/<paper>/`` with a config dataclass
(subclass of :class:`ExperimentConfig`, quick defaults, ``PROFILES`` for smoke/paper) and a
function decorated with :func:`experiment`; it is discovered automatically. Its claims and checks
are data in the package's ``claims.toml`` (:func:`load_claims`).

The names below are imported on first use, so listing the registered claims imports no torch.
"""

from __future__ import annotations

from droplab._lazy import lazy_exports

__all__, __getattr__ = lazy_exports(__name__, {
    "droplab.experiments.config": ("ExperimentConfig",),
    "droplab.experiments.registry": ("experiment", "Experiment", "all_experiments", "get_experiment",
                                     "claim_listing", "claims_hash"),
    "droplab.experiments.run": ("RunContext", "read_run"),
    "droplab.experiments.runner": ("run_experiment", "reproduce", "select"),
    "droplab.experiments.claims": ("PROFILE_NAMES", "ClaimSpec", "Criterion", "Record", "KINDS", "VERDICTS",
                                   "CHECK_VERDICTS", "SEEDS_NEEDED", "decide", "interval", "load_claims"),
})
