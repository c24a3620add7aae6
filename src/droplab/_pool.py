"""A local process pool whose workers die with their parent and stop cleanly on Ctrl-C.

Used by sweeps (grid points) and ``reproduce`` (experiments). Workers are spawned (no forked
torch state), leave the terminal's process group, and are killed when the parent dies
(``kill -9`` included; Linux ``PR_SET_PDEATHSIG``, elsewhere a thread watching the parent).
Ctrl-C reaches the parent alone: it submits nothing more, sets a stop event (a task not yet
begun is skipped) and passes the Ctrl-C to the running tasks, which stop at their next
checkpoint. At most ``workers`` tasks are submitted at a time, so none sits queued to start.
"""

from __future__ import annotations

import ctypes
import multiprocessing as mp
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Hashable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Any

_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
_STOP: Any = None  # in a pool worker: the parent's "Ctrl-C was pressed" event


def _init_worker(parent: int, stop: Any) -> None:
    """Pool worker initializer: die when the parent dies; Ctrl-C is the parent's to pass on."""
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


def _call(fn: Callable[..., dict[str, Any]], *args: Any) -> dict[str, Any]:
    """``fn(*args)`` in a pool worker, with Ctrl-C (passed on by the parent) live during the task."""
    signal.signal(signal.SIGINT, signal.default_int_handler)  # before looking at the event: no Ctrl-C is lost
    try:
        if _STOP.is_set():
            return {"status": "skipped"}
        return fn(*args)
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)


def run_parallel(fn: Callable[..., dict[str, Any]], tasks: Sequence[tuple[Hashable, tuple[Any, ...]]], workers: int,
                 started: Callable[[Hashable], None], report: Callable[[Hashable, dict[str, Any]], None]) -> None:
    """Run ``fn(*args)`` for each ``(key, args)`` of ``tasks`` in order, ``workers`` at a time.

    ``fn`` must be a module-level function returning a dict with ``status``; ``started(key)`` and
    ``report(key, result)`` are called in the parent. A killed worker loses its task (and those
    of the same broken pool): they are reported ``lost`` and the pool is renewed.
    """
    queue = list(tasks)
    running: dict[Future, Hashable] = {}
    context = mp.get_context("spawn")
    stop = context.Event()

    def new_pool() -> ProcessPoolExecutor:
        return ProcessPoolExecutor(max_workers=workers, mp_context=context, initializer=_init_worker,
                                   initargs=(os.getpid(), stop))

    pool = new_pool()
    try:
        while queue or running:
            while queue and len(running) < workers:
                key, args = queue.pop(0)
                running[pool.submit(_call, fn, *args)] = key
                started(key)
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            for fut in finished:
                key = running.pop(fut)
                try:
                    result = fut.result()
                except BrokenProcessPool as exc:  # a worker was killed: this task is lost, rerun by --resume
                    result = {"status": "lost", "error": f"worker died: {exc}"}
                report(key, result)
            if any(isinstance(f.exception(), BrokenProcessPool) for f in finished):
                pool.shutdown(wait=True, cancel_futures=True)  # the others of the broken pool are lost too
                for fut, key in list(running.items()):
                    report(key, {"status": "lost", "error": "worker pool broken"})
                    del running[fut]
                pool = new_pool()
    except KeyboardInterrupt:
        stop.set()  # a task not yet begun is skipped; the running ones checkpoint at their next step and stop
        for child in mp.active_children():
            os.kill(child.pid, signal.SIGINT)
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
