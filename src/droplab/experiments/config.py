"""Typed, printable experiment configs with named profiles and ``--set key=value`` overrides.

A config is a dataclass whose defaults are the ``quick`` profile (CPU minutes); the class
attribute ``PROFILES`` maps ``"smoke"`` (seconds, for CI) and ``"paper"`` (the papers' own
settings) to the fields they change. :meth:`ExperimentConfig.for_profile` returns only checked
configs: the fields every experiment shares (:data:`COMMON_FIELDS`, the seed, the device) and
then the experiment's own :meth:`~ExperimentConfig.validate`, so a bad value fails before a run
directory is created, also for ``--print-config`` and for every point of a sweep.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from collections.abc import Callable
from typing import Any, ClassVar, TypeVar

import torch

from droplab._checks import check_choice, check_int, check_positive
from droplab.data import NAMES as DATASETS
from droplab.experiments.claims import PROFILE_NAMES, SEEDS_NEEDED

DEVICE_TYPES = ("cpu", "cuda", "mps")
SEED_LIMIT = 2 ** 32  # numpy and scikit-learn seeds must be below it; torch's default is far above


def _count(name: str, value: Any) -> None:
    check_int(name, value, minimum=1)


def _optional_count(name: str, value: Any) -> None:
    if value is not None:
        check_int(name, value, minimum=1)


def _widths(name: str, value: Any) -> None:
    """One width (int) or a non-empty tuple of them."""
    if isinstance(value, tuple):
        if not value:
            raise ValueError(f"{name} must list at least one layer width, got ()")
        for i, w in enumerate(value):
            check_int(f"{name}[{i}]", w, minimum=1)
    else:
        check_int(name, value, minimum=1)


def _dataset(name: str, value: Any) -> None:
    check_choice(name, value, DATASETS)


# Fields that mean the same in every experiment that has them, checked here once.
COMMON_FIELDS: dict[str, Callable[[str, Any], None]] = {
    "lr": check_positive, "gd_lr": check_positive,
    "steps": _count, "epochs": _count, "gd_max_steps": _count,
    "n_train": _optional_count, "n_test": _optional_count, "batch_size": _optional_count, "chunk": _optional_count,
    "n_seeds": _count, "n_directions": _count, "n_samples": _count, "samples": _count, "mc_samples": _count,
    "hidden": _widths, "dataset": _dataset,
    "momentum": lambda name, v: check_positive(name, v, allow_zero=True),
    "warmup": lambda name, v: check_int(name, v, minimum=0),
}


def check_device(name: str, device: str) -> None:
    """``device`` names a torch device type this build and machine have (cpu, cuda[:i], mps)."""
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        raise ValueError(f"{name} must be a torch device such as 'cpu' or 'cuda', got {device!r}") from None
    check_choice(f"{name} type", dev.type, DEVICE_TYPES)
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"{name} {device!r}: this torch build or machine has no CUDA GPU; use 'cpu'")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ValueError(f"{name} {device!r}: only {torch.cuda.device_count()} CUDA device(s) visible")
    if dev.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"{name} {device!r}: MPS is not available on this machine; use 'cpu'")

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
        cfg = cfg.with_overrides(overrides or {})
        cfg.check()
        return cfg

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
        """The experiment's own checks of its field values (one-line ValueErrors); see :meth:`check`."""

    def check(self) -> None:
        """Every check of a config: seed and device, the :data:`COMMON_FIELDS` it has, then :meth:`validate`."""
        check_int("seed", self.seed, minimum=0)
        if self.seed >= SEED_LIMIT:
            raise ValueError(f"seed must be an integer in [0, 2**32), got {self.seed}")
        check_device("device", self.device)
        for f in dataclasses.fields(self):
            if f.name in COMMON_FIELDS:
                COMMON_FIELDS[f.name](f.name, getattr(self, f.name))
        self.validate()

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
            value = tp(text)
        except ValueError:
            raise ValueError(f"--set {key} expects {tp.__name__}, got {text!r}") from None
        if tp is float and not math.isfinite(value):
            raise ValueError(f"--set {key} expects a finite float, got {text!r}")
        return value
    if tp is str:
        return text
    raise ValueError(f"--set {key}: fields of type {tp} cannot be set from the command line")
