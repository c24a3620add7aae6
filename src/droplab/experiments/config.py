"""Typed, printable experiment configs with named profiles and ``--set key=value`` overrides.

A config is a dataclass whose defaults are the ``quick`` profile (CPU minutes); the class
attribute ``PROFILES`` maps ``"smoke"`` (seconds, for CI) and ``"paper"`` (the papers' own
settings) to the fields they change.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any, ClassVar, TypeVar

from droplab.experiments.claims import SEEDS_NEEDED

PROFILE_NAMES = ("smoke", "quick", "paper")

C = TypeVar("C", bound="ExperimentConfig")


@dataclasses.dataclass
class ExperimentConfig:
    """Base of every experiment config: the first seed, how many independent seeds (each trains and
    measures from scratch; claims need :data:`~droplab.experiments.claims.SEEDS_NEEDED`), the device."""

    seed: int = 0
    n_seeds: int = 3
    device: str = "cpu"

    PROFILES: ClassVar[dict[str, dict[str, Any]]] = {}

    @classmethod
    def for_profile(cls: type[C], profile: str = "quick", overrides: dict[str, str] | None = None) -> C:
        """Build the config of ``profile`` then apply string ``overrides`` parsed by field type."""
        if profile not in PROFILE_NAMES:
            raise ValueError(f"profile must be one of {', '.join(PROFILE_NAMES)}; got {profile!r}")
        defaults = {"n_seeds": SEEDS_NEEDED[profile]}
        cfg = dataclasses.replace(cls(), **{**defaults, **cls.PROFILES.get(profile, {})})
        return cfg.with_overrides(overrides or {})

    def with_overrides(self: C, overrides: dict[str, str]) -> C:
        """Return a copy with ``{key: "text"}`` values parsed to each field's declared type."""
        hints = typing.get_type_hints(type(self))
        names = [f.name for f in dataclasses.fields(self)]
        changes = {}
        for key, text in overrides.items():
            if key not in names:
                raise ValueError(f"--set key {key!r} is not a field of {type(self).__name__}; "
                                 f"known keys: {', '.join(names)}")
            changes[key] = parse_value(key, text, hints[key])
        return dataclasses.replace(self, **changes)

    def validate(self) -> None:
        """Check field values (one-line ValueErrors); called before a run directory is created."""

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def describe(self) -> str:
        """One ``key = value`` line per field (what ``droplab run --print-config`` shows)."""
        return "\n".join(f"{k} = {v!r}" for k, v in self.to_dict().items())


def parse_value(key: str, text: str, tp: Any) -> Any:
    """Parse ``text`` into type ``tp`` (bool, int, float, str, tuples/lists of those, Optional)."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if text.lower() in ("none", "null") and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        errors = []
        for a in inner:
            try:
                return parse_value(key, text, a)
            except ValueError as exc:
                errors.append(str(exc))
        raise ValueError(errors[0])
    if origin in (tuple, list):
        elem = args[0] if args else str
        items = [s.strip() for s in text.split(",") if s.strip()]
        parsed = [parse_value(key, s, elem) for s in items]
        return tuple(parsed) if origin is tuple else parsed
    if tp is bool:
        low = text.lower()
        if low in ("1", "true", "yes", "on"):
            return True
        if low in ("0", "false", "no", "off"):
            return False
        raise ValueError(f"--set {key} expects a bool (true/false), got {text!r}")
    if tp in (int, float):
        try:
            return tp(text)
        except ValueError:
            raise ValueError(f"--set {key} expects {tp.__name__}, got {text!r}") from None
    if tp is str:
        return text
    raise ValueError(f"--set {key}: fields of type {tp} cannot be set from the command line")
