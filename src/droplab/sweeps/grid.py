"""Sweep grids: the Cartesian product of ``key=v1,v2,...`` axes and seeds, and the sweep manifest.

A sweep directory holds ``sweep.json`` (the manifest: experiment, profile, axes, seeds and
every point's overrides), ``progress.json`` (machine-readable progress) and ``points/NNNN/``,
each an ordinary run directory. Point folders are numbered; their configs live in the
manifest and in each run's ``config.json``, never in a folder name.
"""

from __future__ import annotations

import itertools
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from droplab import _io
from droplab.experiments.registry import get_experiment
from droplab.experiments.run import check_out_dir


@dataclass(frozen=True)
class Point:
    """One grid point: its folder name and the ``--set`` overrides (seed included)."""

    name: str
    overrides: dict[str, str]


@dataclass(frozen=True)
class Sweep:
    """A sweep's manifest."""

    experiment: str
    profile: str
    axes: dict[str, list[str]]
    seeds: int
    points: list[Point]

    def to_dict(self) -> dict[str, Any]:
        return {"experiment": self.experiment, "profile": self.profile, "axes": self.axes, "seeds": self.seeds,
                "points": [asdict(p) for p in self.points]}


def parse_axes(grid: list[str]) -> dict[str, list[str]]:
    """Parse ``["keep=0.5,0.8", "lr=0.1"]`` into ``{"keep": ["0.5", "0.8"], "lr": ["0.1"]}``.

    A value holding commas (a tuple field) is written with ``;`` between tuple items:
    ``hidden=32;32,64;64``.
    """
    axes: dict[str, list[str]] = {}
    for item in grid:
        if "=" not in item:
            raise ValueError(f"--grid expects key=v1,v2,..., got {item!r}")
        key, values = item.split("=", 1)
        key = key.strip()
        vals = [v.strip().replace(";", ",") for v in values.split(",") if v.strip()]
        if not key or not vals:
            raise ValueError(f"--grid expects key=v1,v2,..., got {item!r}")
        if key in axes:
            raise ValueError(f"--grid key {key!r} is given twice")
        axes[key] = vals
    return axes


def make_sweep(experiment: str, axes: dict[str, list[str]], *, seeds: int = 1, profile: str = "quick",
               base: dict[str, str] | None = None) -> Sweep:
    """The Cartesian product of ``axes`` × seeds 0..seeds−1, validated against the config type."""
    if not isinstance(seeds, int) or seeds < 1:
        raise ValueError(f"--seeds must be an integer >= 1, got {seeds!r}")
    if "seed" in axes:
        raise ValueError("--grid seed=... is not allowed; use --seeds N")
    exp = get_experiment(experiment)
    keys = list(axes)
    points = []
    for i, (combo, seed) in enumerate(itertools.product(itertools.product(*axes.values()), range(seeds))):
        overrides = {**(base or {}), **dict(zip(keys, combo)), "seed": str(seed)}
        exp.config.for_profile(profile, overrides)  # checks: bad values fail before anything runs
        points.append(Point(f"{i:04d}", overrides))
    return Sweep(experiment, profile, axes, seeds, points)


def write_manifest(path: Path, sweep: Sweep, resume: bool) -> None:
    """Create the sweep directory, or check that ``--resume`` continues the same sweep."""
    path = Path(path)
    check_out_dir(path)
    manifest = path / "sweep.json"
    if manifest.is_file():
        if not resume:
            raise ValueError(f"--out {path} already holds a sweep; pass --resume to continue it")
        if read_manifest(path).to_dict() != sweep.to_dict():
            raise ValueError(f"--resume: {path} holds a different sweep (experiment, grid, seeds or profile differ)")
        return
    if path.exists() and any(path.iterdir()):
        raise ValueError(f"--out {path} exists and is not a sweep directory; choose an empty path")
    _io.write_json(manifest, sweep.to_dict())


def read_manifest(path: Path) -> Sweep:
    """Read ``sweep.json``; a one-line error if ``path`` is not a sweep directory."""
    manifest = Path(path) / "sweep.json"
    if not manifest.is_file():
        raise ValueError(f"SWEEP_DIR {path} is not a droplab sweep directory (no sweep.json)")
    d = _io.read_json(manifest, dict)
    try:
        return Sweep(d["experiment"], d["profile"], d["axes"], d["seeds"], [Point(**p) for p in d["points"]])
    except (KeyError, TypeError) as exc:
        raise ValueError(f"{manifest} is not a droplab sweep manifest: {type(exc).__name__}: {exc}") from None
