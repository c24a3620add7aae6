"""The experiment registry: ``@experiment(...)`` registers a run function and its claims under an id.

The claim listing reads each paper package's ``claims.toml`` (:func:`droplab.experiments.claims.file_listing`)
and imports no experiment, so ``droplab claims`` stays fast; a test checks that it equals what the
experiments register.
"""

from __future__ import annotations

import importlib
import importlib.resources
import pkgutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from droplab.experiments.claims import CLAIMS_FILE, ClaimSpec, file_listing, registry_hash

if TYPE_CHECKING:  # the registry itself runs nothing: listing claims imports no torch
    from droplab.experiments.config import ExperimentConfig
    from droplab.experiments.run import RunContext

    RunFn = Callable[[ExperimentConfig, RunContext], None]

_REGISTRY: dict[str, Experiment] = {}


@dataclass(frozen=True)
class Experiment:
    """A registered experiment: id, paper, what it reproduces, config class, run function, and the
    claims and checks it evaluates (registered before any run)."""

    id: str
    paper: str
    reproduces: str
    config: type[ExperimentConfig]
    run: RunFn
    claims: tuple[ClaimSpec, ...] = ()

    def listing(self) -> list[dict[str, Any]]:
        return [c.listing(self.id, self.paper) for c in self.claims]


def experiment(id: str, *, paper: str, reproduces: str, config: type[ExperimentConfig],
               claims: Sequence[ClaimSpec] = ()) -> Callable[[RunFn], RunFn]:
    """Register ``run(config, ctx)`` as experiment ``id`` with its ``claims`` (:class:`ClaimSpec`)."""

    def register(fn: RunFn) -> RunFn:
        if id in _REGISTRY and _REGISTRY[id].run is not fn:
            raise ValueError(f"experiment id {id!r} is registered twice")
        ids = [c.id for c in claims]
        if len(set(ids)) != len(ids):
            raise ValueError(f"experiment {id!r} registers a claim id twice: {ids}")
        _REGISTRY[id] = Experiment(id, paper, reproduces, config, fn, tuple(claims))
        return fn

    return register


def _discover(package: str = "droplab.experiments") -> None:
    for info in pkgutil.walk_packages(importlib.import_module(package).__path__, prefix=f"{package}."):
        importlib.import_module(info.name)


def all_experiments() -> list[Experiment]:
    """Every registered experiment, sorted by id (imports every module under experiments/)."""
    _discover()
    return [_REGISTRY[k] for k in sorted(_REGISTRY)]


def paper_packages() -> list[str]:
    """The paper packages under ``droplab.experiments`` (one per paper), by name."""
    root = importlib.resources.files("droplab.experiments")
    return sorted(f"droplab.experiments.{p.name}" for p in root.iterdir() if (p / "__init__.py").is_file())


def _package_listing(package: str) -> list[dict[str, Any]]:
    """A paper package's registered claims: its ``claims.toml``; for a package whose specs are still
    written in code, what its experiments register (which imports them)."""
    if (importlib.resources.files(package) / CLAIMS_FILE).is_file():
        return file_listing(package)
    _discover(package)
    return [row for e in _REGISTRY.values() if e.run.__module__.startswith(f"{package}.") for row in e.listing()]


def get_experiment(id: str) -> Experiment:
    """The experiment registered as ``id``; a one-line error listing the known ids otherwise."""
    known = {e.id: e for e in all_experiments()}
    if id not in known:
        raise ValueError(f"unknown experiment id {id!r}; known: {', '.join(known)}")
    return known[id]


def claim_listing(ids: Sequence[str] = ()) -> list[dict[str, Any]]:
    """Every registered claim and check (or those of the experiments / claims named in ``ids``),
    in registry order; a one-line error for an id that names neither."""
    # sorted by experiment id, stable: each experiment's claims in the order it registers them
    listing = sorted((row for p in paper_packages() for row in _package_listing(p)), key=lambda r: r["experiment"])
    seen: dict[str, str] = {}
    for row in listing:
        if row["id"] in seen:
            raise ValueError(f"claim id {row['id']!r} is registered by both {seen[row['id']]} and {row['experiment']}")
        seen[row["id"]] = row["experiment"]
    if not ids:
        return listing
    unknown = [i for i in ids if i not in seen and i not in seen.values()]
    if unknown:  # perhaps an experiment that registers no claims
        unknown = [i for i in unknown if i not in {e.id for e in all_experiments()}]
    if unknown:
        raise ValueError(f"unknown claim or experiment id {unknown[0]!r}; `droplab claims` lists them all")
    return [r for r in listing if r["id"] in ids or r["experiment"] in ids]


def claims_hash() -> str:
    """The hash of the whole claim registry (recorded in every run's ``run.json``)."""
    return registry_hash(claim_listing())
