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

import ctypes
import importlib.util
import multiprocessing as mp
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any

from droplab import _io
from droplab._checks import check_choice, check_int
from droplab.experiments.run import run_status
from droplab.sweeps.grid import Point, Sweep

BACKENDS = ("local", "ray")
_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


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


_STOP: Any = None  # in a pool worker: the sweep's "Ctrl-C was pressed" event


def _init_worker(parent: int, stop: Any) -> None:
    """Pool worker initializer: die when the sweep process dies; Ctrl-C is the parent's to pass on.

    The worker leaves the terminal's process group (a Ctrl-C there reaches the sweep process
    only) and ignores SIGINT between points; ``stop`` is set by the parent before it passes a
    Ctrl-C on, so a point the worker had not yet begun is skipped.
    """
    global _STOP
    _STOP = stop
    os.setsid()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() != parent:  # the parent died before the prctl took effect
            os._exit(1)
        return

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.2)
        os._exit(1)

    threading.Thread(target=watch, daemon=True).start()


def _run_point_local(*args: Any) -> dict[str, Any]:
    """:func:`run_point` in a pool worker, with Ctrl-C (passed on by the parent) live during the point."""
    signal.signal(signal.SIGINT, signal.default_int_handler)  # before looking at the event: no Ctrl-C is lost
    try:
        if _STOP.is_set():
            return {"status": "skipped"}
        return run_point(*args)
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)


def _local(sweep: Sweep, sweep_dir: Path, todo: list[Point], workers: int, threads: int,
           report: Callable[[Point, dict[str, Any]], None], started: Callable[[Point], None]) -> None:
    """At most ``workers`` points submitted at a time, so a Ctrl-C leaves none queued to start."""
    queue = list(todo)
    running: dict[Future, Point] = {}
    context = mp.get_context("spawn")
    stop = context.Event()

    def new_pool() -> ProcessPoolExecutor:
        return ProcessPoolExecutor(max_workers=workers, mp_context=context, initializer=_init_worker,
                                   initargs=(os.getpid(), stop))

    pool = new_pool()
    try:
        while queue or running:
            while queue and len(running) < workers:
                p = queue.pop(0)
                running[pool.submit(_run_point_local, sweep.experiment, str(point_dir(sweep_dir, p)), sweep.profile,
                                    p.overrides, threads)] = p
                started(p)
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            for fut in finished:
                p = running.pop(fut)
                try:
                    result = fut.result()
                except BrokenProcessPool as exc:  # a worker was killed: this point is lost, rerun by --resume
                    result = {"status": "lost", "error": f"worker died: {exc}"}
                report(p, result)
            if any(isinstance(f.exception(), BrokenProcessPool) for f in finished):
                pool.shutdown(wait=True, cancel_futures=True)  # the others of the broken pool are lost too
                for fut, p in list(running.items()):
                    report(p, {"status": "lost", "error": "worker pool broken"})
                    del running[fut]
                pool = new_pool()
    except KeyboardInterrupt:
        stop.set()  # a point not yet begun is skipped; the running ones checkpoint at their next step and stop
        for child in mp.active_children():
            os.kill(child.pid, signal.SIGINT)
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


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
