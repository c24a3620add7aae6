"""Typed configs: profiles and ``--set key=value`` overrides parsed by field type."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from droplab.experiments import ExperimentConfig


@dataclass
class Cfg(ExperimentConfig):
    width: int = 8
    lr: float = 0.1
    widths: tuple[int, ...] = (4, 4)
    n: int | None = None
    name: str = "digits"
    flag: bool = False
    PROFILES = {"smoke": {"width": 2}, "paper": {"width": 1200, "n": 10_000}}


def test_profiles_change_only_their_fields():
    assert Cfg.for_profile("quick").width == 8
    assert Cfg.for_profile("smoke").width == 2 and Cfg.for_profile("smoke").lr == 0.1
    assert Cfg.for_profile("paper").n == 10_000


def test_overrides_are_parsed_by_type():
    cfg = Cfg.for_profile("smoke", {"width": "5", "lr": "1e-3", "widths": "1,2,3", "n": "none",
                                    "flag": "true", "name": "mnist1d", "seed": "7"})
    assert (cfg.width, cfg.lr, cfg.widths, cfg.n, cfg.flag, cfg.name, cfg.seed) == \
        (5, 1e-3, (1, 2, 3), None, True, "mnist1d", 7)
    assert "width = 5" in cfg.describe()


@pytest.mark.parametrize("profile,overrides,match", [
    ("fast", {}, "profile must be one of smoke, quick, paper"),
    ("quick", {"depth": "3"}, "--set key 'depth' is not a field of Cfg; known keys: seed, n_seeds, device, width"),
    ("quick", {"width": "wide"}, "--set width expects int, got 'wide'"),
    ("quick", {"flag": "maybe"}, "--set flag expects a bool"),
    ("quick", {"widths": "1,x"}, "--set widths expects int"),
])
def test_bad_overrides(profile, overrides, match):
    with pytest.raises(ValueError, match=match):
        Cfg.for_profile(profile, overrides)
