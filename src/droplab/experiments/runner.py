"""Running experiments: one into a run directory, or every registered one (``reproduce``)."""

from __future__ import annotations

import traceback
from collections.abc import Sequence
from pathlib import Path

import torch

from droplab.experiments.registry import Experiment, all_experiments, claims_hash, get_experiment
from droplab.experiments.run import RunContext


def run_experiment(exp: Experiment | str, out: Path, *, profile: str = "quick",
                   overrides: dict[str, str] | None = None, resume: bool = False,
                   progress: bool = True, cache: Path | None = None) -> RunContext:
    """Run ``exp`` into ``out``; with ``resume`` reuse the finished stages of an earlier attempt.

    A run that raises (or is interrupted) is marked ``failed`` in ``run.json`` and re-raises; a
    complete run given ``resume=True`` is returned as is. ``cache`` is the shared stage cache
    (:meth:`RunContext.shared_stage`); by default the run keeps its own.
    """
    if isinstance(exp, str):
        exp = get_experiment(exp)
    config = exp.config.for_profile(profile, overrides)
    config.validate()
    ctx = RunContext(out, exp.id, profile, config, resume=resume, progress=progress, paper=exp.paper,
                     claims=exp.claims, claims_hash=claims_hash(), cache=cache)
    if ctx.complete:
        return ctx
    torch.manual_seed(config.seed)
    try:
        exp.run(config, ctx)
    except BaseException as exc:
        ctx.fail("".join(traceback.format_exception_only(type(exc), exc)).strip() or type(exc).__name__)
        raise
    ctx.finish()
    return ctx


def select(only: Sequence[str] = ()) -> list[Experiment]:
    """The registered experiments whose id starts with one of ``only`` (all if empty)."""
    exps = all_experiments()
    if not only:
        return exps
    chosen = [e for e in exps if any(e.id == o or e.id.startswith(o) for o in only)]
    if not chosen:
        raise ValueError(f"--only {', '.join(only)} matches no experiment; known: "
                         f"{', '.join(e.id for e in exps)}")
    return chosen


def reproduce(out: Path, *, profile: str = "quick", only: Sequence[str] = (), resume: bool = False,
              progress: bool = True, overrides: dict[str, str] | None = None) -> tuple[list[Path], list[str]]:
    """Run every selected experiment into ``out/ID``; return (run dirs, ids that failed).

    A failing experiment is recorded (its run.json says ``failed`` with the error) and the
    others still run; finished experiments are skipped on ``resume``.
    """
    out = Path(out)
    dirs, failed = [], []
    for exp in select(only):
        path = out / exp.id
        try:
            run_experiment(exp, path, profile=profile, overrides=overrides, resume=resume, progress=progress,
                           cache=out / ".cache")
        except KeyboardInterrupt:
            raise
        except Exception:
            failed.append(exp.id)
            traceback.print_exc()
        dirs.append(path)
    return dirs, failed
