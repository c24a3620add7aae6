"""Running experiments: one into a run directory, or every registered one (``reproduce``)."""

from __future__ import annotations

import shutil
import time
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path

import torch

from droplab.experiments.registry import Experiment, all_experiments, claims_hash, get_experiment
from droplab.experiments.run import RunContext, check_out_dir, run_status


def run_experiment(exp: Experiment | str, out: Path, *, profile: str = "quick",
                   overrides: dict[str, str] | None = None, resume: bool = False,
                   progress: bool = True, cache: Path | None = None) -> RunContext:
    """Run ``exp`` into ``out``; with ``resume`` reuse the finished stages of an earlier attempt.

    The config is checked before anything is written. A run that raises or is stopped by Ctrl-C
    is marked ``failed`` in ``run.json`` with the reason (``traceback.txt`` beside it for an
    error) and the exception is re-raised; a complete run given ``resume=True`` is returned as is.
    ``cache`` is the shared stage cache (:meth:`RunContext.shared_stage`); by default the run
    keeps its own.
    """
    if isinstance(exp, str):
        exp = get_experiment(exp)
    config = exp.config.for_profile(profile, overrides)
    ctx = RunContext(out, exp.id, profile, config, resume=resume, progress=progress, paper=exp.paper,
                     claims=exp.claims, claims_hash=claims_hash(), cache=cache)
    try:
        if ctx.complete:
            return ctx
        torch.manual_seed(config.seed)
        try:
            exp.run(config, ctx)
        except KeyboardInterrupt:
            ctx.fail("interrupted (Ctrl-C); --resume continues it")
            raise
        except BaseException as exc:
            ctx.fail(_one_line(exc), traceback.format_exc())
            raise
        ctx.finish()
        return ctx
    finally:
        ctx.close()


def _one_line(exc: BaseException) -> str:
    return "".join(traceback.format_exception_only(type(exc), exc)).strip().splitlines()[-1] or type(exc).__name__


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


def _duration(seconds: float) -> str:
    m, s = divmod(round(seconds), 60)
    return f"{m // 60}h{m % 60:02d}m" if m >= 60 else f"{m}m{s:02d}s" if m else f"{s}s"


def reproduce(out: Path, *, profile: str = "quick", only: Sequence[str] = (), fresh: bool = False,
              progress: bool = True, overrides: dict[str, str] | None = None,
              log: Callable[[str], None] | None = None) -> tuple[list[Path], list[str]]:
    """Run every selected experiment into ``out/ID``; return (run dirs, ids that failed).

    A rerun resumes: complete experiments are reused, unfinished ones continue from their finished
    stages; ``fresh=True`` deletes the selected experiments' run directories and the shared stage
    cache ``out/.cache`` first. Every config
    is checked before anything runs. A failing experiment is recorded (``run.json`` says
    ``failed``, ``traceback.txt`` holds the traceback) and the others still run. ``log`` gets one
    line per experiment started and finished: ``[k/N]``, its outcome, and an ETA from the
    experiments computed so far.
    """
    out = Path(out)
    exps = select(only)
    for exp in exps:  # every config and directory is checked before the first file is written
        exp.config.for_profile(profile, overrides)
        check_out_dir(out / exp.id)
        if fresh and (out / exp.id).exists() and not (out / exp.id / "run.json").is_file():
            raise ValueError(f"--fresh: {out / exp.id} is not a droplab run directory; not deleting it")
    if fresh:
        shutil.rmtree(out / ".cache", ignore_errors=True)
    say = log or (lambda line: None)
    dirs, failed, computed = [], [], []
    start = time.monotonic()

    def eta(done: int) -> str:
        elapsed = f"elapsed {_duration(time.monotonic() - start)}"
        if not computed or done == len(exps):
            return elapsed
        return f"{elapsed}, ETA {_duration(sum(computed) / len(computed) * (len(exps) - done))}"

    for k, exp in enumerate(exps, 1):
        path, tag = out / exp.id, f"[{k}/{len(exps)}] {exp.id}"
        if fresh and path.exists():
            shutil.rmtree(path)
        reused = run_status(path) == "complete"
        if not reused:
            say(f"{tag}: started ({eta(k - 1)})")
        t0, t0_wall = time.monotonic(), time.time()
        try:
            run_experiment(exp, path, profile=profile, overrides=overrides, resume=True, progress=progress,
                           cache=out / ".cache")
        except Exception as exc:
            failed.append(exp.id)
            tb = path / "traceback.txt"
            where = f"; traceback in {tb}" if tb.is_file() and tb.stat().st_mtime >= t0_wall - 1 else ""
            say(f"{tag}: FAILED after {_duration(time.monotonic() - t0)}: {_one_line(exc)}{where}")
        else:
            if not reused:
                computed.append(time.monotonic() - t0)
            what = "reused (complete earlier)" if reused else f"complete in {_duration(computed[-1])}"
            say(f"{tag}: {what} ({eta(k)})")
        if (path / "run.json").is_file():
            dirs.append(path)
    return dirs, failed
