"""The experiment registry: ``@experiment(...)`` registers a run function under an id."""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass

from droplab.experiments.config import ExperimentConfig
from droplab.experiments.run import RunContext

RunFn = Callable[[ExperimentConfig, RunContext], None]

_REGISTRY: dict[str, Experiment] = {}


@dataclass(frozen=True)
class Experiment:
    """A registered experiment: its id, paper, what it reproduces, config class and run function."""

    id: str
    paper: str
    reproduces: str
    config: type[ExperimentConfig]
    run: RunFn


def experiment(id: str, *, paper: str, reproduces: str,
               config: type[ExperimentConfig]) -> Callable[[RunFn], RunFn]:
    """Register ``run(config, ctx)`` as experiment ``id``."""

    def register(fn: RunFn) -> RunFn:
        if id in _REGISTRY and _REGISTRY[id].run is not fn:
            raise ValueError(f"experiment id {id!r} is registered twice")
        _REGISTRY[id] = Experiment(id, paper, reproduces, config, fn)
        return fn

    return register


def _discover() -> None:
    import droplab.experiments as pkg

    for info in pkgutil.walk_packages(pkg.__path__, prefix=f"{pkg.__name__}."):
        importlib.import_module(info.name)


def all_experiments() -> list[Experiment]:
    """Every registered experiment, sorted by id (imports every module under experiments/)."""
    _discover()
    return [_REGISTRY[k] for k in sorted(_REGISTRY)]


def get_experiment(id: str) -> Experiment:
    """The experiment registered as ``id``; a one-line error listing the known ids otherwise."""
    known = {e.id: e for e in all_experiments()}
    if id not in known:
        raise ValueError(f"unknown experiment id {id!r}; known: {', '.join(known)}")
    return known[id]
