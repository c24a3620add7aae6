"""Sweeps: a 2×2×2 grid completes, survives a kill (its workers die with it) and resumes losslessly,
stops promptly on Ctrl-C, records failing points, gives the same results as the standalone runs
(same thread count) and on the local pool as on a local Ray instance."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from droplab.experiments import run_experiment
from droplab.reports import write_sweep_report
from droplab.sweeps import make_sweep, parse_axes, read_manifest, run_sweep, write_manifest

EXP = "zzx-flat-minima"
BASE = {"n_directions": "1", "steps": "40", "profile_points": "5", "n_train": "150"}
GRID = ["lr=0.01,0.003", "granularity=filter,layer"]  # 2 × 2 axes × 2 seeds = 8 points


def sweep_cmd(out: Path, *extra: str) -> list[str]:
    args = [sys.executable, "-m", "droplab.cli", "sweep", EXP, "--profile", "smoke", "--seeds", "2",
            "--workers", "2", "--out", str(out), "--no-progress"]
    for g in GRID:
        args += ["--grid", g]
    for k, v in BASE.items():
        args += ["--set", f"{k}={v}"]
    return args + list(extra)


def results(sweep_dir: Path) -> dict[str, dict]:
    return {p.name: json.loads((p / "claims.json").read_text())[0]["measured"]
            for p in sorted((sweep_dir / "points").iterdir())}


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("ref") / "sweep"
    subprocess.run(sweep_cmd(out), check=True, capture_output=True)
    return out


def test_grid_completes_with_manifest_progress_and_report(reference):
    sw = read_manifest(reference)
    assert len(sw.points) == 8 and sw.axes == {"lr": ["0.01", "0.003"], "granularity": ["filter", "layer"]}
    assert {p.overrides["seed"] for p in sw.points} == {"0", "1"}
    progress = json.loads((reference / "progress.json").read_text())
    assert progress["done"] == 8 and progress["failed"] == 0 and progress["running"] == 0
    md = (reference / "report.md").read_text()
    assert "zzx-fig1a-flatter (grid)" in md and "test_acc_dropout mean" in md and "seeds_done" in md


def children(pid: int) -> set[int]:
    """Live processes whose parent is ``pid`` (Linux /proc)."""
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid and fields[0] != "Z":
            found.add(int(stat.parent.name))
    return found


def alive(pids: set[int]) -> set[int]:
    out = set()
    for pid in pids:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z":
            out.add(pid)
    return out


def start_sweep(out: Path, done: int, resume: bool = False) -> tuple[subprocess.Popen, set[int]]:
    """Start the sweep and wait until ``done`` points are complete; return it and its workers."""
    proc = subprocess.Popen(sweep_cmd(out, *(["--resume"] if resume else [])), stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 900  # a hang guard for a loaded machine, not a timing claim: it returns at `done`
    while time.time() < deadline:
        prog = out / "progress.json"
        if prog.is_file() and json.loads(prog.read_text())["done"] >= done:
            return proc, children(proc.pid)
        time.sleep(0.2)
    proc.kill()
    raise AssertionError(f"the sweep did not complete {done} point(s) within the hang guard")


def wait_gone(pids: set[int]) -> set[int]:
    deadline = time.time() + 30  # a hang guard, not a timing claim
    while alive(pids) and time.time() < deadline:
        time.sleep(0.05)
    return alive(pids)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_interrupted_then_killed_sweep_resumes_without_rerunning_finished_points(reference, tmp_path):
    out = tmp_path / "sweep"
    # Ctrl-C (to the sweep process alone, as `kill -INT` does): no pending point starts, the workers
    # stop, progress.json says what is done and that nothing runs.
    proc, workers = start_sweep(out, done=1)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=600)  # a hang guard
    assert proc.returncode == 130 and stderr.strip().startswith("interrupted:"), stderr
    assert wait_gone(workers) == set()
    progress = json.loads((out / "progress.json").read_text())
    status = {p.name: json.loads((p / "run.json").read_text()) for p in (out / "points").iterdir()
              if (p / "run.json").is_file()}
    complete = [n for n, m in status.items() if m["status"] == "complete"]
    stopped = [n for n, m in status.items() if m["status"] != "complete"]
    assert progress["state"] == "interrupted" and progress["running"] == 0
    assert progress["done"] == len(complete) and progress["pending"] == 8 - len(complete) - progress["failed"]
    assert len(stopped) <= 2  # only the points running at the Ctrl-C (2 workers): no pending point started
    assert all(status[n]["status"] == "running" or "interrupted" in status[n]["error"] for n in stopped)

    # kill -9 of the sweep process alone (resumed): its workers die with it.
    proc, workers = start_sweep(out, done=len(complete) + 2, resume=True)
    assert len(workers) >= 2  # the pool's workers (and multiprocessing's resource tracker)
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate()
    assert wait_gone(workers) == set()
    finished = {p.name: (p / "run.json").stat().st_mtime_ns for p in (out / "points").iterdir()
                if (p / "run.json").is_file() and json.loads((p / "run.json").read_text())["status"] == "complete"}
    assert 2 <= len(finished) < 8
    subprocess.run(sweep_cmd(out, "--resume"), check=True, capture_output=True)
    for name, mtime in finished.items():  # untouched: not rerun
        assert (out / "points" / name / "run.json").stat().st_mtime_ns == mtime
    assert results(out) == results(reference)


def test_a_point_equals_the_same_run_standalone(reference, tmp_path):
    """Same default thread count for a sweep point (a worker) and a run (here, this process)."""
    point = read_manifest(reference).points[0]
    env = json.loads((reference / "points" / point.name / "environment.json").read_text())
    assert env["torch_threads"] == 1
    run_experiment(EXP, tmp_path / "run", profile="smoke", overrides=point.overrides, progress=False)
    assert (tmp_path / "run" / "metrics.json").read_bytes() == \
        (reference / "points" / point.name / "metrics.json").read_bytes()


def test_failing_point_is_recorded_and_the_rest_complete(tmp_path, monkeypatch):
    monkeypatch.setenv("DROPLAB_DATA", str(tmp_path / "no-data"))  # mnist files absent: those points fail
    sw = make_sweep(EXP, parse_axes(["dataset=digits,mnist"]), profile="smoke", base=BASE)
    out = tmp_path / "sweep"
    write_manifest(out, sw, resume=False)
    statuses = run_sweep(sw, out, workers=2, progress=False)
    assert statuses == {"0000": "complete", "0001": "failed"}
    tb = (out / "points" / "0001" / "traceback.txt").read_text()
    assert "missing train-images-idx3-ubyte" in tb
    html, md = write_sweep_report(out)
    assert "| points | 2 |" in md.read_text() and "| failed | 1 |" in md.read_text()


def test_ray_backend_gives_the_same_results(reference, tmp_path):
    pytest.importorskip("ray", reason="the ray extra is not installed")
    out = tmp_path / "sweep"
    subprocess.run(sweep_cmd(out, "--backend", "ray"), check=True, capture_output=True)
    assert results(out) == results(reference)


@pytest.mark.parametrize("grid,kwargs,match", [
    (["lr"], {}, "--grid expects key=v1,v2"),
    (["lr=0.1", "lr=0.2"], {}, "--grid key 'lr' is given twice"),
    (["seed=1,2"], {}, "use --seeds N"),
    (["depth=1,2"], {}, "--set key 'depth' is not a field"),
    (["lr=fast"], {}, "--set lr expects float"),
    (["lr=0.1"], {"seeds": 0}, "--seeds must be an integer >= 1"),
])
def test_bad_grids(grid, kwargs, match):
    with pytest.raises(ValueError, match=match):
        make_sweep(EXP, parse_axes(grid), **kwargs)


def test_resume_of_a_different_sweep_is_refused(tmp_path):
    out = tmp_path / "s"
    write_manifest(out, make_sweep(EXP, parse_axes(["lr=0.1"]), profile="smoke"), resume=False)
    with pytest.raises(ValueError, match="already holds a sweep"):
        write_manifest(out, make_sweep(EXP, parse_axes(["lr=0.1"]), profile="smoke"), resume=False)
    with pytest.raises(ValueError, match="holds a different sweep"):
        write_manifest(out, make_sweep(EXP, parse_axes(["lr=0.2"]), profile="smoke"), resume=True)


def test_constant_metrics_get_no_grid_figure_by_default():
    from droplab.reports.sweep import varies

    rows = [{"lr": "0.1", "acc mean": 0.9, "n mean": 100.0}, {"lr": "0.2", "acc mean": 0.8, "n mean": 100.0}]
    assert varies(rows, "acc") and not varies(rows, "n")
