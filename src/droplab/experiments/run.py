"""Run directories and the context an experiment writes through.

A run directory holds::

    run.json          id, profile, status ("running" | "complete" | "failed"), times
    config.json       the resolved config
    environment.json  versions, seed, git commit, device
    metrics.json      scalar and small array results (also metrics.csv for flat rows)
    claims.json       the claims and checks with their verdicts (records of experiments/claims.py)
    timing.json       seconds per stage and where its result came from (computed, resumed, shared cache)
    figures/          NAME.png and NAME.pdf, captions in figures.json
    stages/           cached results of finished stages (what ``--resume`` reuses)
    checkpoints/      training checkpoints (resume mid-training)

Every file is written atomically; ``run.json`` says ``complete`` only after everything else is
written, so an interrupted run is never mistaken for a finished one, and its finished stages
are reused by ``--resume``. Nothing is written before the directory is known to be usable (a
writable place, no other process in it, and for ``--resume`` the same experiment, config and
torch thread count); an unfinished run that left no finished work is simply started over.
A run that raised or was stopped by Ctrl-C says ``failed`` with the reason (``traceback.txt``
holds the traceback of an error).
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
import time
import weakref
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import torch
from tqdm.auto import tqdm

from droplab import _io
from droplab.experiments.claims import ClaimSpec, Record, check_record, evaluate
from droplab.experiments.config import ExperimentConfig

T = TypeVar("T")


def _now() -> str:
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")


def _git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5,
                             cwd=Path(__file__).parent)
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def environment(seed: int, device: str) -> dict[str, Any]:
    """Versions, seed, git commit, device and torch thread count of this process."""
    from importlib.metadata import version

    from droplab import __version__

    return {
        "droplab": __version__, "python": sys.version.split()[0], "platform": platform.platform(),
        "torch": torch.__version__, **{lib: version(lib) for lib in ("numpy", "scipy", "scikit-learn", "matplotlib")},
        "torch_threads": torch.get_num_threads(), "seed": seed, "device": device,
        "git_commit": _git_commit(),
    }


def read_run(path: Path) -> Any:
    """Read a run directory's ``run.json`` (a JSON object unless damaged); a one-line error if
    ``path`` is not a run directory or the file is not JSON."""
    path = Path(path)
    meta = path / "run.json"
    if not meta.is_file():
        raise ValueError(f"RUN_DIR {path} is not a droplab run directory (no run.json)")
    try:
        return json.loads(meta.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"RUN_DIR {path} has a corrupt run.json: {exc}") from None


def _meta(path: Path) -> dict[str, Any]:
    """``run.json`` of a run directory this process writes in: a JSON object, else a one-line error."""
    meta = read_run(path)
    if not isinstance(meta, dict):
        raise ValueError(f"{Path(path) / 'run.json'} must hold a JSON object, got {type(meta).__name__}")
    return meta


def run_status(path: Path) -> str | None:
    """The status of the run in ``path`` (``running``, ``complete``, ``failed``); None if there is none."""
    return _meta(path).get("status") if (Path(path) / "run.json").is_file() else None


def read_claims(path: Path) -> list[dict[str, Any]]:
    """Read a run directory's ``claims.json``: a list of records, each with at least ``id`` and
    ``verdict`` (what a report counts); a one-line error naming the file otherwise."""
    file = Path(path) / "claims.json"
    records = _io.read_json(file, list)
    for i, rec in enumerate(records):
        missing = [k for k in ("id", "verdict") if not isinstance(rec, dict) or k not in rec]
        if missing:
            raise ValueError(f"{file}: record {i} has no {' or '.join(missing)}")
    return records


def check_out_dir(path: Path, flag: str = "--out") -> None:
    """``path`` is, or can be made, a directory this process writes in; else a one-line error."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise ValueError(f"{flag} {path} is a file, not a directory")
    existing = path
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise ValueError(f"{flag} {path}: {existing} is a file, so no directory can be made under it")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ValueError(f"{flag} {path}: {existing} is not writable by this user")


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``path`` for the block (no lock where there is no ``flock``)."""
    try:
        import fcntl
    except ImportError:  # not POSIX: no lock
        yield
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        yield


def _lock(owner: object, path: Path) -> Callable[[], None]:
    """Hold the directory ``path`` exclusively (an ``flock`` on it) until the returned release is
    called, ``owner`` is garbage-collected or the process dies; a no-op where there is no ``flock``."""
    try:
        import fcntl
    except ImportError:  # not POSIX: no lock
        return lambda: None
    fd = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        raise ValueError(f"--out {path} is in use by another droplab process; wait for it or stop it") from None
    return weakref.finalize(owner, os.close, fd)


def _has_finished_work(path: Path) -> bool:
    """Whether a run directory holds cached stages or checkpoints (what ``--resume`` reuses)."""
    return any(p.is_file() and not _io.is_temporary(p) for sub in ("stages", "checkpoints")
               for p in (path / sub).rglob("*"))


class RunContext:
    """What an experiment's ``run(config, ctx)`` writes through: metrics, figures, claims, stages."""

    def __init__(self, path: Path, experiment_id: str, profile: str, config: ExperimentConfig,
                 *, resume: bool = False, progress: bool = True, paper: str = "",
                 claims: Iterable[ClaimSpec] = (), claims_hash: str = "", cache: Path | None = None) -> None:
        self.path = Path(path)
        self.experiment_id = experiment_id
        self.profile = profile
        self.config = config
        self.show_progress = progress
        self.paper = paper
        self.specs = {c.id: c for c in claims}
        self.claims_hash = claims_hash
        self.cache = Path(cache) if cache is not None else self.path / "stages" / "shared"
        self.metrics: dict[str, Any] = {}
        self.claims: list[Record] = []
        self.figures: list[dict[str, str]] = []
        self.timing: list[dict[str, Any]] = []
        self._started, self._cpu = time.monotonic(), time.process_time()
        self._open(resume)

    # ---------------------------------------------------------------- lifecycle
    def _open(self, resume: bool) -> None:
        cfg = _io.to_jsonable(self.config.to_dict())
        check_out_dir(self.path)
        self._release: Callable[[], None] = lambda: None
        if (self.path / "run.json").exists():
            self._release = _lock(self, self.path)
            try:
                if self._continue(resume, cfg):
                    return
            except BaseException:
                self.close()
                raise
        elif self.path.exists() and any(not _io.is_temporary(p) for p in self.path.iterdir()):
            raise ValueError(f"--out {self.path} exists and is not a droplab run directory; choose an empty path")
        else:
            self.path.mkdir(parents=True, exist_ok=True)
            self._release = _lock(self, self.path)
        self._write_meta("running")  # first: a directory killed from here on is a run with nothing to reuse
        _io.write_json(self.path / "config.json", cfg)
        _io.write_json(self.path / "environment.json", environment(self.config.seed, self.config.device))

    def _continue(self, resume: bool, cfg: dict[str, Any]) -> bool:
        """Check an existing run directory; True if it is complete (its outputs are loaded)."""
        meta = _meta(self.path)
        status = meta.get("status")
        if status != "complete" and not _has_finished_work(self.path):
            for p in self.path.iterdir():  # an attempt that left nothing to reuse: start over
                shutil.rmtree(p) if p.is_dir() else p.unlink()
            return False
        if not resume:
            raise ValueError(f"--out {self.path} already holds a run ({status}); "
                             "pass --resume to continue it or choose another --out")
        old = _io.read_json(self.path / "config.json", dict)
        if meta.get("experiment") != self.experiment_id or old != cfg:
            raise ValueError(f"--resume: {self.path} holds experiment {meta.get('experiment')!r} "
                             "with a different config; resume with the same id, profile and --set values")
        if status == "complete":
            self._load_outputs()
            return True
        env = self.path / "environment.json"
        threads = _io.read_json(env, dict).get("torch_threads") if env.is_file() else None
        if threads is not None and threads != torch.get_num_threads():
            raise ValueError(f"--resume: {self.path} was started with {threads} torch thread(s), this process has "
                             f"{torch.get_num_threads()}; float sums depend on it, so resume with --threads {threads}")
        # the time already spent counts: run.json's seconds are the run's, over all its sessions
        self._started -= float(meta.get("elapsed_s") or 0)
        self._cpu -= float(meta.get("cpu_s") or 0)
        return False

    def close(self) -> None:
        """Release the run directory (its lock); done by :func:`run_experiment` when it returns."""
        self._release()

    @property
    def complete(self) -> bool:
        return run_status(self.path) == "complete"

    def _load_outputs(self) -> None:
        self.metrics = _io.read_json(self.path / "metrics.json", dict)
        self.claims = [Record(**c) for c in read_claims(self.path)]
        self.figures = _io.read_json(self.path / "figures.json", list)

    def _write_meta(self, status: str, error: str | None = None) -> None:
        meta = {"experiment": self.experiment_id, "profile": self.profile, "status": status, "updated": _now(),
                "elapsed_s": round(time.monotonic() - self._started, 1),
                "cpu_s": round(time.process_time() - self._cpu, 1), "torch_threads": torch.get_num_threads(),
                "claims_hash": self.claims_hash}
        if error:
            meta["error"] = error
        _io.write_json(self.path / "run.json", meta)

    def finish(self) -> None:
        """Write metrics, claims and figure index, then mark the run complete (last write)."""
        _io.write_json(self.path / "metrics.json", self.metrics)
        flat = {k: v for k, v in self.metrics.items() if isinstance(v, (int, float, str, bool))}
        _io.write_csv(self.path / "metrics.csv", [{"metric": k, "value": v} for k, v in flat.items()])
        _io.write_json(self.path / "claims.json", [c.to_dict() for c in self.claims])
        _io.write_json(self.path / "figures.json", self.figures)
        _io.write_json(self.path / "timing.json", self.timing)
        (self.path / "traceback.txt").unlink(missing_ok=True)  # of an earlier, failed attempt
        self._write_meta("complete")

    def fail(self, error: str, traceback: str | None = None) -> None:
        """Mark the run ``failed`` with a one-line ``error``; keep ``traceback`` in ``traceback.txt``."""
        if traceback is not None:
            _io.write_text(self.path / "traceback.txt", traceback)
        self._write_meta("failed", error)

    # ---------------------------------------------------------------- outputs
    def log(self, **values: Any) -> None:
        """Record named results (scalars, lists, small arrays)."""
        self.metrics.update(_io.to_jsonable(values))

    def table(self, name: str, rows: list[dict[str, Any]]) -> None:
        """Record a table as ``NAME.csv`` and under ``metrics[NAME]``."""
        _io.write_csv(self.path / f"{name}.csv", rows)
        self.metrics[name] = _io.to_jsonable(rows)

    def figure(self, fig: Any, name: str, caption: str, claims: Iterable[str] = ()) -> None:
        """Save a matplotlib figure as PNG and PDF with its caption (which names the paper figure it mirrors
        and the data actually used) and the ids of the claims it supports (shown beside them)."""
        import io as _stdio

        for ext in ("png", "pdf"):
            buf = _stdio.BytesIO()
            fig.savefig(buf, format=ext, dpi=110, bbox_inches="tight")
            _io.write_bytes(self.path / "figures" / f"{name}.{ext}", buf.getvalue())
        self.figures = [f for f in self.figures if f["name"] != name]
        self.figures.append({"name": name, "png": f"figures/{name}.png", "pdf": f"figures/{name}.pdf",
                             "caption": caption, "claims": list(claims)})

    def seeds(self) -> list[int]:
        """The independent seeds of this run: ``seed, seed + 1, …`` (``n_seeds`` of them)."""
        return [self.config.seed + i for i in range(self.config.n_seeds)]

    def _spec(self, spec: ClaimSpec, kind: str) -> ClaimSpec:
        if self.specs.get(spec.id) is not spec:
            raise ValueError(f"{spec.id} is not registered with experiment {self.experiment_id}: pass it in "
                             "@experiment(..., claims=[...]) so `droplab claims` lists it before any run")
        if spec.kind != kind:
            raise ValueError(f"{spec.id} is registered as a {spec.kind}, not a {kind}")
        return spec

    def _record(self, rec: Record) -> Record:
        self.claims = [x for x in self.claims if x.id != rec.id] + [rec]
        return rec

    def claim(self, spec: ClaimSpec, values: Iterable[float], *, seeds: Iterable[int] | None = None,
              regime_met: bool | Iterable[bool] = True, regime_values: dict[str, Any] | None = None,
              regime_reason: str = "", se: float | None = None, measured: dict[str, Any] | None = None) -> Record:
        """Evaluate registered claim ``spec`` on per-seed ``values`` (default seeds: :meth:`seeds`), or on
        one Monte Carlo estimate with standard error ``se``; the verdict comes from the one decision rule."""
        spec = self._spec(spec, "claim")
        values = [float(v) for v in values]
        seeds = list(seeds) if seeds is not None else self.seeds()[:len(values)]
        met = regime_met if isinstance(regime_met, bool) else list(regime_met)
        return self._record(evaluate(spec, experiment=self.experiment_id, paper=self.paper, profile=self.profile,
                                     values=values, seeds=seeds, regime_met=met,
                                     regime_values=_io.to_jsonable(regime_values or {}), regime_reason=regime_reason,
                                     se=se, measured=_io.to_jsonable(measured or {})))

    def check(self, spec: ClaimSpec, passed: bool, measured: dict[str, Any] | None = None) -> Record:
        """Record registered check ``spec`` (an identity or implementation property): passed or failed."""
        spec = self._spec(spec, "check")
        return self._record(check_record(spec, experiment=self.experiment_id, paper=self.paper, passed=bool(passed),
                                         measured=_io.to_jsonable(measured or {})))

    # ---------------------------------------------------------------- resumable work
    def stage(self, name: str, compute: Callable[[], T]) -> T:
        """Run ``compute`` once: its result (tensors, numbers, lists, dicts) is cached in ``stages/``.

        On ``--resume`` a finished stage is loaded instead of recomputed (``weights_only=True``).
        """
        return self._cached(self.path / "stages" / f"{name}.pt", name, compute, "resumed")

    def shared_stage(self, name: str, key: dict[str, Any], compute: Callable[[], T]) -> T:
        """Like :meth:`stage`, but cached under the hash of ``key`` (everything that determines the result)
        in the shared cache, so two experiments of one ``reproduce`` that need it compute it once."""
        text = json.dumps(_io.to_jsonable(key), sort_keys=True)
        digest = hashlib.sha256(text.encode()).hexdigest()[:32]
        return self._cached(self.cache / f"{digest}.pt", name, compute, "shared cache", shared=True)

    def _cached(self, path: Path, name: str, compute: Callable[[], T], found: str, shared: bool = False) -> T:
        start = time.monotonic()
        # a lock per shared result: a parallel reproduce's second experiment that needs it waits for the first
        with _file_lock(path.with_name(path.name + ".lock")) if shared else contextlib.nullcontext():
            if path.is_file():
                result, source = _io.torch_load(path), found
            else:
                result, source = compute(), "computed"
                _io.torch_save(path, result)
        self.timing.append({"stage": name, "source": source, "seconds": round(time.monotonic() - start, 2)})
        return result

    def checkpoint_path(self, name: str) -> Path:
        """Where a training loop named ``name`` keeps its resumable checkpoint."""
        return self.path / "checkpoints" / f"{name}.pt"

    def progress(self, iterable: Iterable[T], desc: str, total: int | None = None) -> Iterable[T]:
        """A progress bar over ``iterable`` (silent when progress is off or not a terminal)."""
        return tqdm(iterable, desc=f"{self.experiment_id}: {desc}", total=total, leave=False,
                    disable=None if self.show_progress else True)

    def generator(self, offset: int = 0) -> torch.Generator:
        """A CPU generator seeded from the config's seed plus ``offset`` (one per random stream)."""
        return torch.Generator().manual_seed(self.config.seed * 1_000_003 + offset)
