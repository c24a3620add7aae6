"""The command line: list, run, report, data, and one-line errors for bad input."""

from __future__ import annotations

import subprocess
import sys

import pytest
from click.testing import CliRunner

from droplab.cli import main


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


@pytest.mark.parametrize("args,message", [
    (["run", "nope"], "error: unknown experiment id 'nope'; known: "),
    (["run", "zzx-flat-minima", "--set", "depth=3"], "error: --set key 'depth' is not a field"),
    (["run", "zzx-flat-minima", "--set", "steps=many"], "error: --set steps expects int, got 'many'"),
    (["run", "zzx-flat-minima", "--set", "keep=1.5,0.5", "--profile", "smoke"],
     "error: keep[0] must be in (0, 1], got 1.5"),
    (["report", "."], "is not a droplab run directory"),
    (["data", "mnist"], "missing train-images-idx3-ubyte"),
    (["reproduce", "--only", "xyz"], "error: --only xyz matches no experiment"),
])
def test_bad_input_is_one_line(tmp_path, args, message):
    env_args = ["--data-dir", str(tmp_path)] + args
    res = cli(*env_args, cwd=tmp_path)
    assert res.returncode != 0
    lines = [line for line in res.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and message in lines[0], res.stderr
    assert not (tmp_path / "runs").exists()  # nothing half-written left behind
