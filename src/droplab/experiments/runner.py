"""Running experiments: one into a run directory, or every registered one (``reproduce``)."""

from __future__ import annotations

import json
import shutil
import time
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

from droplab import _io
from droplab._checks import check_int
from droplab._pool import run_parallel
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


def _run_task(exp_id: str, path: str, profile: str, overrides: dict[str, str] | None, cache: str,
              threads: int) -> dict[str, Any]:
    """One experiment of a reproduce, in a pool worker or in-process; never raises for a failing one."""
    torch.set_num_threads(threads)
    t0 = time.monotonic()
    try:
        run_experiment(exp_id, Path(path), profile=profile, overrides=overrides, resume=True, progress=False,
                       cache=Path(cache))
    except Exception as exc:  # recorded in run.json / traceback.txt; the others go on
        return {"status": "failed", "error": _one_line(exc), "seconds": time.monotonic() - t0}
    return {"status": "complete", "seconds": time.monotonic() - t0}


REFERENCE_DURATIONS = Path(__file__).with_name("durations.json")


def _durations(path: Path) -> dict[str, dict[str, float]]:
    """Seconds per experiment, by profile, stored at ``path``; empty if it is missing or unreadable."""
    try:
        return {p: {k: float(v) for k, v in d.items()} for p, d in json.loads(path.read_text()).items()}
    except (OSError, ValueError, AttributeError, TypeError):
        return {}


def _estimates(out: Path, profile: str) -> dict[str, float]:
    """Seconds each experiment is expected to take, the order of a parallel reproduce (longest first):
    the last reproduce into ``out`` (``out/.cache/durations.json``), else the reference machine's
    (``durations.json`` beside this module: the README's timed run on 2 cores), else none (registry
    order)."""
    return {**_durations(REFERENCE_DURATIONS).get(profile, {}),
            **_durations(out / ".cache" / "durations.json").get(profile, {})}


def reproduce(out: Path, *, profile: str = "quick", only: Sequence[str] = (), fresh: bool = False,
              progress: bool = True, overrides: dict[str, str] | None = None,
              log: Callable[[str], None] | None = None, workers: int = 1) -> tuple[list[Path], list[str]]:
    """Run every selected experiment into ``out/ID``; return (run dirs, ids that failed).

    A rerun resumes: complete experiments are reused, unfinished ones continue from their finished
    stages; ``fresh=True`` deletes the selected experiments' run directories and the shared stage
    cache ``out/.cache`` first. Every config is checked before anything runs. With ``workers`` > 1
    the experiments run side by side in worker processes (each with this process's torch thread
    count, so every result equals the sequential run's), longest first by the last measured times;
    a training shared by two experiments is computed once (the second waits for the first). A
    failing experiment is recorded (``run.json`` says ``failed``, ``traceback.txt`` holds the
    traceback) and the others still run. ``log`` gets one line per experiment started and
    finished: ``[k/N]``, its outcome, the running ones and an ETA.
    """
    check_int("workers", workers, minimum=1)
    out = Path(out)
    exps = select(only)
    for exp in exps:  # every config and directory is checked before the first file is written
        exp.config.for_profile(profile, overrides)
        check_out_dir(out / exp.id)
        if fresh and (out / exp.id).exists() and not (out / exp.id / "run.json").is_file():
            raise ValueError(f"--fresh: {out / exp.id} is not a droplab run directory; not deleting it")
    estimate = _estimates(out, profile)   # before --fresh deletes the cache that holds the last durations
    if fresh:
        shutil.rmtree(out / ".cache", ignore_errors=True)
        for exp in exps:
            shutil.rmtree(out / exp.id, ignore_errors=True)
    say = log or (lambda line: None)
    index = {e.id: k for k, e in enumerate(exps, 1)}
    todo = sorted((e for e in exps if run_status(out / e.id) != "complete"), key=lambda e: -estimate.get(e.id, 0.0))
    for e in exps:
        if e not in todo:
            say(f"[{index[e.id]}/{len(exps)}] {e.id}: reused (complete earlier)")
    failed: list[str] = []
    running: dict[str, float] = {}
    measured: dict[str, float] = {}
    start = time.monotonic()

    def eta() -> str:
        elapsed = f"elapsed {_duration(time.monotonic() - start)}"
        left = [e.id for e in todo if e.id not in measured and e.id not in failed]
        if not left:
            return elapsed
        mean = sum(measured.values()) / len(measured) if measured else None
        guess = [estimate.get(i, mean) for i in left]
        if any(g is None for g in guess):
            return elapsed
        return f"{elapsed}, ETA {_duration(sum(guess) / min(workers, len(left)))}"  # type: ignore[arg-type]

    def started(exp_id: str) -> None:
        running[exp_id] = time.monotonic()
        say(f"[{index[exp_id]}/{len(exps)}] {exp_id}: started (running {len(running)}; {eta()})")

    def report(exp_id: str, result: dict[str, Any]) -> None:
        seconds = time.monotonic() - running.pop(exp_id, time.monotonic())
        tag = f"[{index[exp_id]}/{len(exps)}] {exp_id}"
        if result["status"] == "complete":
            measured[exp_id] = seconds
            say(f"{tag}: complete in {_duration(seconds)} ({len(measured) + len(exps) - len(todo)}/{len(exps)} "
                f"done; {eta()})")
        else:
            failed.append(exp_id)
            tb = out / exp_id / "traceback.txt"
            where = f"; traceback in {tb}" if tb.is_file() else ""
            say(f"{tag}: {result['status'].upper()} after {_duration(seconds)}: {result.get('error', '')}{where}")

    threads = torch.get_num_threads()
    tasks = [(e.id, (e.id, str(out / e.id), profile, overrides, str(out / ".cache"), threads)) for e in todo]
    try:
        if workers == 1:
            for key, args in tasks:
                started(key)
                report(key, _run_task(*args))
        else:
            run_parallel(_run_task, tasks, workers, started, report)
    finally:
        torch.set_num_threads(threads)
        if measured:
            stored = _durations(out / ".cache" / "durations.json")
            stored[profile] = {**stored.get(profile, {}), **measured}
            _io.write_json(out / ".cache" / "durations.json", stored)
    dirs = [out / e.id for e in exps if (out / e.id / "run.json").is_file()]
    return dirs, failed
