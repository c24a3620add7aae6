"""Running a sweep's points: a local process pool (default) or tasks on a Ray cluster.

Both backends run :func:`run_point` — an ordinary ``run_experiment`` into the point's run
directory, with ``resume=True`` so a point interrupted earlier reuses its finished stages — and
stream results back as they finish. A point that raises is recorded (``run.json`` says
``failed``, ``traceback.txt`` holds the traceback) and the others go on. Nothing here
schedules: the pool is :class:`concurrent.futures.ProcessPoolExecutor`, the cluster is Ray's.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import time
import traceback
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any

from droplab import _io
from droplab._checks import check_choice, check_int
from droplab.sweeps.grid import Point, Sweep

BACKENDS = ("local", "ray")
# CPU/GPU per task by profile (a GPU when the point's device is cuda).
TASK_CPUS = {"smoke": 1, "quick": 1, "paper": 4}


def point_dir(sweep_dir: Path, point: Point) -> Path:
    return Path(sweep_dir) / "points" / point.name


def point_status(sweep_dir: Path, point: Point) -> str:
    """``complete``, ``failed``, ``running`` (interrupted) or ``missing``."""
    meta = point_dir(sweep_dir, point) / "run.json"
    if not meta.is_file():
        return "missing"
    return json.loads(meta.read_text()).get("status", "missing")


def run_point(experiment: str, path: str, profile: str, overrides: dict[str, str], threads: int) -> dict[str, Any]:
    """Run one point (in a worker); never raises for a failing experiment, reports it instead."""
    import torch

    from droplab.experiments.runner import run_experiment

    torch.set_num_threads(threads)
    start = time.perf_counter()
    try:
        run_experiment(experiment, Path(path), profile=profile, overrides=overrides, resume=True, progress=False)
        return {"status": "complete", "seconds": time.perf_counter() - start}
    except Exception as exc:  # recorded, and the other points go on
        _io.write_text(Path(path) / "traceback.txt", traceback.format_exc())
        return {"status": "failed", "error": f"{type(exc).__name__}: {exc}", "seconds": time.perf_counter() - start}


class Progress:
    """One progress display for the whole sweep and a machine-readable ``progress.json``."""

    def __init__(self, sweep_dir: Path, total: int, done: int, show: bool) -> None:
        from tqdm.auto import tqdm

        self.path = Path(sweep_dir) / "progress.json"
        self.total, self.done, self.failed, self.running = total, done, 0, 0
        self.start = time.time()
        self.fresh = 0
        self.bar = tqdm(total=total, initial=done, desc="sweep", unit="point", disable=None if show else True)
        self.write()

    def started(self, n: int) -> None:
        self.running += n
        self.write()

    def finished(self, status: str) -> None:
        self.running -= 1
        self.fresh += 1
        if status == "complete":
            self.done += 1
        else:
            self.failed += 1
        self.bar.update(1)
        self.bar.set_postfix(running=self.running, failed=self.failed)
        self.write()

    def write(self) -> None:
        elapsed = time.time() - self.start
        left = self.total - self.done - self.failed
        eta = elapsed / self.fresh * left if self.fresh else None
        _io.write_json(self.path, {"total": self.total, "done": self.done, "failed": self.failed,
                                   "running": self.running, "pending": left - self.running,
                                   "elapsed_s": elapsed, "eta_s": eta})

    def close(self) -> None:
        self.bar.close()


def _threads(workers: int) -> int:
    return max(1, (os.cpu_count() or 1) // workers)


def _local(sweep: Sweep, sweep_dir: Path, todo: list[Point], workers: int,
           report: Callable[[Point, dict[str, Any]], None], started: Callable[[int], None]) -> None:
    threads = _threads(workers)
    with ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("spawn")) as pool:
        futures = {pool.submit(run_point, sweep.experiment, str(point_dir(sweep_dir, p)), sweep.profile,
                               p.overrides, threads): p for p in todo}
        started(min(workers, len(todo)))
        try:
            for fut in as_completed(futures):
                p = futures[fut]
                try:
                    result = fut.result()
                except BrokenProcessPool as exc:  # a worker was killed: this point is lost, rerun by --resume
                    result = {"status": "lost", "error": f"worker died: {exc}"}
                report(p, result)
        except KeyboardInterrupt:
            for f in futures:
                f.cancel()
            raise


def _ray(sweep: Sweep, sweep_dir: Path, todo: list[Point], workers: int, address: str | None,
         report: Callable[[Point, dict[str, Any]], None], started: Callable[[int], None]) -> None:
    try:
        import ray
    except ImportError:
        raise ValueError("--backend ray needs Ray: pip install 'droplab[ray]'") from None
    started_here = not ray.is_initialized()
    if started_here:
        if address:
            ray.init(address=address, log_to_driver=False)
        else:
            ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False)
    try:
        cpus = TASK_CPUS[sweep.profile]
        refs = {}
        for p in todo:
            gpus = 1 if p.overrides.get("device", "cpu").startswith("cuda") else 0
            task = ray.remote(num_cpus=cpus, num_gpus=gpus, max_retries=1)(run_point)
            refs[task.remote(sweep.experiment, str(point_dir(sweep_dir, p)), sweep.profile, p.overrides,
                             cpus)] = p
        started(min(len(todo), workers))
        pending = list(refs)
        while pending:
            ready, pending = ray.wait(pending, num_returns=1)
            p = refs[ready[0]]
            try:
                result = ray.get(ready[0])
            except ray.exceptions.RayError as exc:  # a lost node or worker: rerun by --resume
                result = {"status": "lost", "error": f"{type(exc).__name__}: {exc}"}
            report(p, result)
    finally:
        if started_here:
            ray.shutdown()


def run_sweep(sweep: Sweep, sweep_dir: Path, *, workers: int = 1, backend: str = "local",
              address: str | None = None, progress: bool = True) -> dict[str, str]:
    """Run every point of ``sweep`` that is not complete; return ``{point name: status}``."""
    check_choice("--backend", backend, BACKENDS)
    check_int("--workers", workers, minimum=1)
    if address and backend != "ray":
        raise ValueError("--address is only for --backend ray")
    statuses = {p.name: point_status(sweep_dir, p) for p in sweep.points}
    todo = [p for p in sweep.points if statuses[p.name] != "complete"]
    prog = Progress(sweep_dir, len(sweep.points), len(sweep.points) - len(todo), progress)

    def report(p: Point, result: dict[str, Any]) -> None:
        statuses[p.name] = result["status"]
        prog.finished(result["status"])
        if prog.running < workers and prog.done + prog.failed + prog.running < prog.total:
            prog.started(1)

    try:
        if todo and backend == "local":
            _local(sweep, sweep_dir, todo, workers, report, prog.started)
        elif todo:
            _ray(sweep, sweep_dir, todo, workers, address, report, prog.started)
    finally:
        prog.close()
    return statuses
