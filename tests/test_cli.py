"""The command line: list, run, report, data, and one-line errors for bad input."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from droplab.cli import main
from droplab.experiments import get_experiment
from droplab.sweeps import make_sweep, parse_axes, write_manifest

# A flat-minima run small enough for tests (seconds).
TINY = ["--profile", "smoke", "--no-progress", "--set", "steps=10", "--set", "n_train=60", "--set", "hidden=8,8",
        "--set", "profile_points=5", "--set", "n_directions=1"]
TINY_SETS = {"steps": "10", "n_train": "60", "hidden": "8,8", "profile_points": "5", "n_directions": "1"}


def invoke(*args: str):
    return CliRunner().invoke(main, list(args), standalone_mode=True, catch_exceptions=True)


def cli(*args: str, cwd=None) -> subprocess.CompletedProcess:
    """Run the real console entry point (one-line errors and exit codes)."""
    return subprocess.run([sys.executable, "-m", "droplab.cli", *args], capture_output=True, text=True, cwd=cwd)


def test_list_starts_each_line_with_the_id():
    out = invoke("list").output.splitlines()
    assert any(line.startswith("zzx-flat-minima ") and "Zhang, Zhou & Xu" in line for line in out)


def test_run_then_report(tmp_path):
    res = invoke("run", "zzx-flat-minima", "--profile", "smoke", "--out", str(tmp_path / "run"), "--no-progress",
                 "--set", "n_directions=1")
    assert res.exit_code == 0, res.output
    assert "zzx-fig1a-flatter" in res.output and (tmp_path / "run" / "report.html").is_file()
    res = invoke("report", str(tmp_path / "run"), "--out", str(tmp_path / "rep"))
    assert res.exit_code == 0 and (tmp_path / "rep" / "report.md").is_file()


def test_print_config():
    res = invoke("run", "zzx-flat-minima", "--profile", "paper", "--print-config")
    assert "dataset = 'mnist'" in res.output and "hidden = (1024, 1024)" in res.output


def test_bad_input_is_one_line_from_the_console_script(tmp_path):
    res = cli("run", "nope", cwd=tmp_path)
    assert res.returncode == 2 and res.stderr.strip().splitlines() == [
        res.stderr.strip()] and "error: unknown experiment id 'nope'; known: " in res.stderr


# ------------------------------------------------------------------ the bad-input table
def _config_dict(sets: dict[str, str]) -> dict:
    cfg = get_experiment("zzx-flat-minima").config.for_profile("smoke", sets)
    return json.loads(json.dumps(cfg.to_dict()))


def _run_dir(path: Path, status: str, *, config: bool | str = True, threads: int = 1, finished_work: bool = True,
             **files: str) -> None:
    """A run directory as an earlier attempt left it."""
    path.mkdir(parents=True)
    (path / "run.json").write_text(json.dumps({"experiment": "zzx-flat-minima", "profile": "smoke", "status": status}))
    if config is True:
        (path / "config.json").write_text(json.dumps(_config_dict(TINY_SETS)))
    elif config:
        (path / "config.json").write_text(config)
    (path / "environment.json").write_text(json.dumps({"torch_threads": threads}))
    if finished_work:
        (path / "stages").mkdir()
        (path / "stages" / "train_plain.pt").write_bytes(b"x")
    for name, text in files.items():
        (path / name.replace("_json", ".json")).write_text(text)


def _sweep_dir(path: Path) -> None:
    write_manifest(path, make_sweep("zzx-flat-minima", parse_axes(["lr=0.01"]), profile="smoke", base=TINY_SETS),
                   resume=False)
    point = path / "points" / "0000"
    _run_dir(point, "complete", metrics_json=json.dumps({"test_acc": 0.5}), claims_json="[]", figures_json="[]")


SETUPS = {
    "file": lambda t: (t / "afile").write_text("x"),
    "readonly": lambda t: (t / "ro").mkdir(mode=0o555),
    "stuff": lambda t: (t / "D").mkdir() or (t / "D" / "notes.txt").write_text("mine"),
    "no config": lambda t: _run_dir(t / "D", "failed", config=False),
    "corrupt config": lambda t: _run_dir(t / "D", "failed", config="{not json"),
    "complete": lambda t: _run_dir(t / "D", "complete", metrics_json="{}", claims_json="[]", figures_json="[]"),
    "corrupt metrics": lambda t: _run_dir(t / "D", "complete", metrics_json="{oops", claims_json="[]",
                                          figures_json="[]"),
    "claims without verdict": lambda t: _run_dir(t / "D", "complete", metrics_json="{}", figures_json="[]",
                                                 claims_json=json.dumps([{"id": "c"}])),
    "threads": lambda t: _run_dir(t / "D", "failed", threads=7),
    "list run.json": lambda t: (t / "D").mkdir() or (t / "D" / "run.json").write_text("[1, 2]"),
    "sweep": lambda t: _sweep_dir(t / "S"),
}

RUN = ["run", "zzx-flat-minima", *TINY]
CASES = [  # (id, setup, args, message)
    # unknown names and types
    ("unknown id", None, ["run", "nope"], "error: unknown experiment id 'nope'; known: "),
    ("unknown key", None, ["run", "zzx-flat-minima", "--set", "depth=3"], "error: --set key 'depth' is not a field"),
    ("int type", None, ["run", "zzx-flat-minima", "--set", "steps=many"], "error: --set steps expects int, got 'many'"),
    ("probability", None, ["run", "zzx-flat-minima", "--set", "keep=1.5,0.5", "--profile", "smoke"],
     "error: keep[0] must be in (0, 1], got 1.5"),
    ("not a run dir", None, ["report", "."], "is not a droplab run directory"),
    ("missing data", None, ["data", "mnist"], "missing train-images-idx3-ubyte"),
    ("only", None, ["reproduce", "--only", "xyz"], "error: --only xyz matches no experiment"),
    ("dataset name", None, [*RUN, "--set", "dataset=nope"], "dataset must be one of"),
    ("granularity", None, [*RUN, "--set", "granularity=pixel"], "granularity must be one of"),
    # devices
    ("no cuda", None, [*RUN, "--device", "cuda"], "device 'cuda': this torch build or machine has no CUDA GPU"),
    ("device foo", None, [*RUN, "--set", "device=foo"], "device must be a torch device such as 'cpu' or 'cuda'"),
    ("device meta", None, [*RUN, "--device", "meta"], "device type must be one of 'cpu', 'cuda', 'mps'"),
    # values out of their domain, before anything is written
    ("n_directions=0", None, [*RUN, "--set", "n_directions=0"], "n_directions must be an integer >= 1, got 0"),
    ("seed 1e20", None, [*RUN, "--set", "seed=1e20"], "--set seed expects int, got '1e20'"),
    ("seed 10**20", None, [*RUN, "--set", "seed=100000000000000000000"], "seed must be an integer in [0, 2**32)"),
    ("seed -1", None, [*RUN, "--set", "seed=-1"], "seed must be an integer >= 0, got -1"),
    ("lr=-1", None, [*RUN, "--set", "lr=-1"], "lr must be finite and > 0, got -1.0"),
    ("lr=nan", None, [*RUN, "--set", "lr=nan"], "--set lr expects a finite float, got 'nan'"),
    ("steps=0", None, [*RUN, "--set", "steps=0"], "steps must be an integer >= 1, got 0"),
    ("level=-1", None, [*RUN, "--set", "level=-1"], "level must be finite and > 0, got -1.0"),
    ("profile_points=1", None, [*RUN, "--set", "profile_points=1"], "profile_points must be an integer >= 3, got 1"),
    ("empty hidden", None, [*RUN, "--set", "hidden=", "--set", "keep="], "hidden must list at least one layer width"),
    ("empty keep", None, [*RUN, "--set", "keep="], "keep must give one keep probability per hidden layer (2)"),
    ("n_train=0", None, [*RUN, "--set", "n_train=0"], "n_train must be an integer >= 1, got 0"),
    ("gd with batches", None, [*RUN, "--set", "optimizer=gd", "--set", "batch_size=10"],
     "batch_size must be None for optimizer 'gd'"),
    ("print keep=1.5", None, ["run", "zzx-flat-minima", "--print-config", "--set", "keep=1.5,1.5"],
     "keep[0] must be in (0, 1], got 1.5"),
    ("print lr=-3", None, ["run", "zzx-flat-minima", "--print-config", "--set", "lr=-3"], "lr must be finite and > 0"),
    ("print steps=-10", None, ["run", "zzx-flat-minima", "--print-config", "--set", "steps=-10"],
     "steps must be an integer >= 1, got -10"),
    # command-line syntax (click's usage errors, in one line too)
    ("threads=0", None, ["--threads", "0", *RUN], "Invalid value for '--threads'"),
    ("unknown option", None, [*RUN, "--bogus"], "No such option '--bogus'"),
    ("bad profile", None, ["run", "zzx-flat-minima", "--profile", "fast"], "Invalid value for '--profile'"),
    ("set without =", None, [*RUN, "--set", "lr"], "expected key=value, got 'lr'"),
    # places
    ("out under a file", "file", [*RUN, "--out", "afile/x"], "afile is a file, so no directory can be made under it"),
    ("out is a file", "file", [*RUN, "--out", "afile"], "Directory 'afile' is a file"),
    ("out unwritable", "readonly", [*RUN, "--out", "ro/x"], "ro is not writable by this user"),
    ("out not a run", "stuff", [*RUN, "--out", "D"], "--out D exists and is not a droplab run directory"),
    ("run over a complete run", "complete", [*RUN, "--out", "D"], "--out D already holds a run (complete)"),
    ("resume without config.json", "no config", [*RUN, "--out", "D", "--resume"], "D/config.json is missing"),
    ("resume corrupt config.json", "corrupt config", [*RUN, "--out", "D", "--resume"],
     "D/config.json is not readable JSON"),
    ("resume corrupt metrics.json", "corrupt metrics", [*RUN, "--out", "D", "--resume"],
     "D/metrics.json is not readable JSON"),
    ("claims without verdict", "claims without verdict", [*RUN, "--out", "D", "--resume"],
     "D/claims.json: record 0 has no verdict"),
    ("resume other config", "complete", [*RUN, "--out", "D", "--resume", "--set", "lr=0.5"],
     "--resume: D holds experiment 'zzx-flat-minima' with a different config"),
    ("resume other threads", "threads", [*RUN, "--out", "D", "--resume"],
     "D was started with 7 torch thread(s), this process has 1; float sums depend on it"),
    ("run.json a list", "list run.json", [*RUN, "--out", "D", "--resume"],
     "D/run.json must hold a JSON object, got list"),
    # sweeps
    ("sweep metric", "sweep", ["report", "S", "--metric", "nope"],
     "--metric 'nope' is not a numeric metric of this sweep's complete points; known: test_acc"),
    ("sweep grid value", None, ["sweep", "zzx-flat-minima", "--grid", "lr=0.1,-1", "--out", "S2"],
     "lr must be finite and > 0, got -1.0"),
    ("sweep workers", None, ["sweep", "zzx-flat-minima", "--grid", "lr=0.1", "--workers", "0", "--out", "S2"],
     "--workers must be an integer >= 1, got 0"),
    ("sweep address", None, ["sweep", "zzx-flat-minima", "--grid", "lr=0.1", "--address", "ray://h:1", "--out", "S2"],
     "--address is only for --backend ray"),
    ("ray client", None, ["sweep", "zzx-flat-minima", "--grid", "lr=0.1", "--backend", "ray", "--address", "ray://h:1",
                          "--out", "S2"], "needs Ray's client: pip install 'ray[client]'"),
    ("sweep out under a file", "file", ["sweep", "zzx-flat-minima", "--grid", "lr=0.1", "--out", "afile/S"],
     "afile is a file, so no directory can be made under it"),
    ("sweep seeds", None, ["sweep", "zzx-flat-minima", "--grid", "lr=0.1", "--seeds", "0", "--out", "S2"],
     "--seeds must be an integer >= 1"),
    ("reproduce device", None, ["reproduce", "--only", "zzx-flat", "--device", "cuda"],
     "device 'cuda': this torch build or machine has no CUDA GPU"),
]


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("setup,args,message", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_is_one_line(tmp_path, monkeypatch, droplab, setup, args, message):
    if "cuda" in args and torch.cuda.is_available():
        pytest.skip("this machine has a CUDA GPU")
    if "ray://h:1" in args and "--backend" in args and importlib.util.find_spec("grpc") is not None:
        pytest.skip("Ray's client is installed")
    if setup == "readonly" and os.geteuid() == 0:
        pytest.skip("root writes anywhere")
    monkeypatch.chdir(tmp_path)
    if setup:
        SETUPS[setup](tmp_path)
    before = _tree(tmp_path)
    code, _, err = droplab("--data-dir", str(tmp_path), *args)
    assert code != 0
    assert len(err) == 1 and message in err[0], err
    assert _tree(tmp_path) == before  # nothing written, nothing half-written left behind
