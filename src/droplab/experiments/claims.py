"""Claims: what a paper says, what was measured, a pre-declared criterion and the verdict."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

VERDICTS = ("reproduced", "not reproduced", "inconclusive")


@dataclass(frozen=True)
class Claim:
    """One claim of a paper, evaluated by a criterion fixed before the measurement.

    ``verdict`` is computed by :func:`verdict_from` from the criterion's outcome, never chosen by
    hand: ``True`` → reproduced, ``False`` → not reproduced, ``None`` (the measurement could not
    decide, e.g. a precondition such as reaching zero loss failed) → inconclusive.
    """

    id: str
    paper: str
    where: str
    statement: str
    criterion: str
    measured: dict[str, Any]
    verdict: str
    experiment: str = ""
    notes: str = field(default="")

    def __post_init__(self) -> None:
        if self.verdict not in VERDICTS:
            raise ValueError(f"verdict must be one of {VERDICTS}, got {self.verdict!r}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def verdict_from(outcome: bool | None) -> str:
    """Map a criterion's outcome to a verdict string."""
    if outcome is None:
        return "inconclusive"
    return "reproduced" if bool(outcome) else "not reproduced"
