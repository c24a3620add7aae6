"""Running a sweep's points: a local process pool (default) or tasks on a Ray cluster.

Both backends run :func:`run_point` — an ordinary ``run_experiment`` into the point's run
directory, with ``resume=True`` so a point interrupted earlier reuses its finished stages, and
with the torch thread count of the process that started the sweep (as ``droplab run`` would
use, so a point equals the same run standalone) — and stream results back as they finish. A
point that raises is recorded (``run.json`` says ``failed``, ``traceback.txt`` holds the
traceback) and the others go on. Nothing here schedules: the pool is
:class:`concurrent.futures.ProcessPoolExecutor`, the cluster is Ray's.

Local workers die with the sweep process (``kill -9`` included; Linux ``PR_SET_PDEATHSIG``,
elsewhere a thread watching the parent). Ctrl-C reaches the sweep process alone; it starts no
further point and passes the Ctrl-C to the running points, which checkpoint at their next
training step and stop (``run.json`` says why; ``--resume`` continues them).
"""

from __future__ import annotations

import importlib.util
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from droplab import _io
from droplab._checks import check_choice, check_int
from droplab._pool import run_parallel
from droplab.experiments.run import run_status
from droplab.sweeps.grid import Point, Sweep

BACKENDS = ("local", "ray")


def point_dir(sweep_dir: Path, point: Point) -> Path:
    return Path(sweep_dir) / "points" / point.name


def point_status(sweep_dir: Path, point: Point) -> str:
    """``complete``, ``failed`` (or interrupted), ``running`` (killed) or ``missing``."""
    return run_status(point_dir(sweep_dir, point)) or "missing"


def run_point(experiment: str, path: str, profile: str, overrides: dict[str, str], threads: int) -> dict[str, Any]:
    """Run one point (in a worker); never raises for a failing experiment, reports it instead."""
    import torch

    from droplab.experiments.runner import run_experiment

    torch.set_num_threads(threads)
    start = time.perf_counter()
    try:
        run_experiment(experiment, Path(path), profile=profile, overrides=overrides, resume=True, progress=False)
        return {"status": "complete", "seconds": time.perf_counter() - start}
    except Exception as exc:  # recorded (run.json, traceback.txt), and the other points go on
        return {"status": "failed", "error": f"{type(exc).__name__}: {exc}", "seconds": time.perf_counter() - start}


class Progress:
    """One progress display for the whole sweep and a machine-readable ``progress.json``.

    Without a terminal (the bar is hidden) one line per finished point goes to stderr instead.
    """

    def __init__(self, sweep_dir: Path, total: int, done: int, show: bool) -> None:
        from tqdm.auto import tqdm

        self.path = Path(sweep_dir) / "progress.json"
        self.total, self.done, self.failed, self.running = total, done, 0, 0
        self.state = "running"
        self.start = time.time()
        self.fresh = 0
        self.bar = tqdm(total=total, initial=done, desc="sweep", unit="point", disable=None if show else True)
        self.lines = show and self.bar.disable
        self.write()

    def started(self) -> None:
        self.running += 1
        self.write()

    def finished(self, name: str, status: str) -> None:
        self.running -= 1
        self.fresh += 1
        if status == "complete":
            self.done += 1
        else:
            self.failed += 1
        self.bar.update(1)
        self.bar.set_postfix(running=self.running, failed=self.failed)
        self.write()
        if self.lines:
            eta = self.eta()
            print(f"[{self.done + self.failed}/{self.total}] point {name}: {status}"
                  + (f" (ETA {eta:.0f} s)" if eta else ""), file=sys.stderr, flush=True)

    def eta(self) -> float | None:
        left = self.total - self.done - self.failed
        return (time.time() - self.start) / self.fresh * left if self.fresh else None

    def write(self) -> None:
        left = self.total - self.done - self.failed
        _io.write_json(self.path, {"state": self.state, "total": self.total, "done": self.done,
                                   "failed": self.failed, "running": self.running, "pending": left - self.running,
                                   "elapsed_s": time.time() - self.start, "eta_s": self.eta()})

    def close(self, state: str) -> None:
        """Final state: ``finished`` or ``interrupted`` (nothing runs any more)."""
        self.state, self.running = state, 0
        self.write()
        self.bar.close()


def _local(sweep: Sweep, sweep_dir: Path, todo: list[Point], workers: int, threads: int,
           report: Callable[[Point, dict[str, Any]], None], started: Callable[[Point], None]) -> None:
    """The points in droplab's process pool (:func:`droplab._pool.run_parallel`)."""
    tasks = [(p, (sweep.experiment, str(point_dir(sweep_dir, p)), sweep.profile, p.overrides, threads)) for p in todo]
    run_parallel(run_point, tasks, workers, started, report)


def _ray(sweep: Sweep, sweep_dir: Path, todo: list[Point], workers: int, threads: int, address: str | None,
         report: Callable[[Point, dict[str, Any]], None], started: Callable[[Point], None]) -> None:
    try:
        import ray
    except ImportError:
        raise ValueError("--backend ray needs Ray: pip install 'droplab[ray]'") from None
    started_here = not ray.is_initialized()
    if started_here:
        if address:
            ray.init(address=address, log_to_driver=False)
        else:
            ray.init(num_cpus=workers * threads, include_dashboard=False, log_to_driver=False)
    try:
        refs = {}
        for p in todo:
            gpus = 1 if p.overrides.get("device", "cpu").startswith("cuda") else 0
            task = ray.remote(num_cpus=threads, num_gpus=gpus, max_retries=1)(run_point)
            refs[task.remote(sweep.experiment, str(point_dir(sweep_dir, p)), sweep.profile, p.overrides,
                             threads)] = p
        launched = min(workers, len(todo))  # what the progress shows as running: Ray schedules the rest
        for p in todo[:launched]:
            started(p)
        pending = list(refs)
        try:
            while pending:
                ready, pending = ray.wait(pending, num_returns=1)
                p = refs[ready[0]]
                try:
                    result = ray.get(ready[0])
                except ray.exceptions.RayError as exc:  # a lost node or worker: rerun by --resume
                    result = {"status": "lost", "error": f"{type(exc).__name__}: {exc}"}
                report(p, result)
                if launched < len(todo):
                    started(todo[launched])
                    launched += 1
        except KeyboardInterrupt:
            for ref in pending:  # a running task gets a KeyboardInterrupt, a queued one never starts
                ray.cancel(ref)
            raise
    finally:
        if started_here:
            ray.shutdown()


def check_options(*, workers: int, backend: str, address: str | None, threads: int = 1) -> None:
    """The backend options of :func:`run_sweep`, checked (before a sweep directory is written)."""
    check_choice("--backend", backend, BACKENDS)
    check_int("--workers", workers, minimum=1)
    check_int("--threads", threads, minimum=1)
    if address and backend != "ray":
        raise ValueError("--address is only for --backend ray")
    if backend == "ray" and importlib.util.find_spec("ray") is None:
        raise ValueError("--backend ray needs Ray: pip install 'droplab[ray]'")
    if backend == "ray" and address and address.startswith("ray://") and importlib.util.find_spec("grpc") is None:
        raise ValueError(f"--address {address} needs Ray's client: pip install 'ray[client]'")


def run_sweep(sweep: Sweep, sweep_dir: Path, *, workers: int = 1, backend: str = "local",
              address: str | None = None, progress: bool = True, threads: int | None = None) -> dict[str, str]:
    """Run every point of ``sweep`` that is not complete; return ``{point name: status}``.

    Each point runs with ``threads`` torch threads (default: this process's count).
    """
    import torch

    threads = torch.get_num_threads() if threads is None else threads
    check_options(workers=workers, backend=backend, address=address, threads=threads)
    statuses = {p.name: point_status(sweep_dir, p) for p in sweep.points}
    todo = [p for p in sweep.points if statuses[p.name] != "complete"]
    prog = Progress(sweep_dir, len(sweep.points), len(sweep.points) - len(todo), progress)

    def report(p: Point, result: dict[str, Any]) -> None:
        statuses[p.name] = result["status"]
        prog.finished(p.name, result["status"])

    state = "interrupted"
    try:
        if todo and backend == "local":
            _local(sweep, sweep_dir, todo, workers, threads, report, lambda p: prog.started())
        elif todo:
            _ray(sweep, sweep_dir, todo, workers, threads, address, report, lambda p: prog.started())
        state = "finished"
    finally:
        prog.close(state)
    return statuses
