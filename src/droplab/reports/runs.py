"""Run directories as the report reads them: one :class:`RunRecord` per directory, unreadable files named
in one line (``problem``) so that the report still renders every other run."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from droplab.experiments.claims import CHECK_VERDICTS, VERDICTS
from droplab.experiments.run import read_run

ROW_VERDICTS = (*VERDICTS, *CHECK_VERDICTS)


@dataclass
class RunRecord:
    """What the report needs of one run directory; ``problem`` says why it cannot be shown in full."""

    path: Path
    meta: dict[str, Any]
    config: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    claims: list[dict[str, Any]] = field(default_factory=list)
    figures: list[dict[str, Any]] = field(default_factory=list)
    environment: dict[str, Any] = field(default_factory=dict)
    problem: str = ""

    @property
    def experiment(self) -> str:
        return str(self.meta.get("experiment", self.path.name))


def _read_json(path: Path, default: Any, kind: type) -> Any:
    """A JSON file of type ``kind`` (``default`` if absent); a one-line ValueError naming the file otherwise."""
    if not path.is_file():
        return default
    try:
        value = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path} is corrupt: {exc}") from None
    if not isinstance(value, kind):
        raise ValueError(f"{path} holds a {type(value).__name__}, expected a {kind.__name__}")
    return value


def _valid_claims(path: Path) -> list[dict[str, Any]]:
    claims = _read_json(path, [], list)
    for c in claims:
        if not isinstance(c, dict) or c.get("verdict") not in ROW_VERDICTS or "id" not in c:
            raise ValueError(f"{path} has a record without an id or a known verdict ({', '.join(ROW_VERDICTS)})")
    return claims


def load_run(path: Path) -> RunRecord:
    """Read one run directory. Not a run directory → one-line ValueError; a run whose files are unreadable
    comes back with ``problem`` set, so the report still renders the others."""
    path = Path(path)
    meta = read_run(path)
    if not isinstance(meta, dict):
        return RunRecord(path, {"experiment": path.name, "status": "unreadable"},
                         problem=f"{path / 'run.json'} holds a {type(meta).__name__}, expected an object")
    rec = RunRecord(path, meta)
    try:
        rec.config = _read_json(path / "config.json", {}, dict)
        rec.environment = _read_json(path / "environment.json", {}, dict)
        if meta.get("status") == "complete":
            rec.metrics = _read_json(path / "metrics.json", {}, dict)
            rec.claims = _valid_claims(path / "claims.json")
            rec.figures = _read_json(path / "figures.json", [], list)
    except ValueError as exc:
        rec.problem, rec.claims = str(exc), []
    return rec


def expand_run_dirs(paths: Sequence[Path]) -> list[Path]:
    """Run directories among ``paths``: each path is a run directory or a folder of them."""
    found: list[Path] = []
    for p in map(Path, paths):
        if (p / "run.json").is_file():
            found.append(p)
            continue
        children = sorted(c for c in p.iterdir() if (c / "run.json").is_file()) if p.is_dir() else []
        if not children:
            raise ValueError(f"RUN_DIR {p} is not a droplab run directory nor a folder of run directories")
        found += children
    return found
