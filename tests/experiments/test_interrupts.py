"""Ctrl-C then ``--resume`` gives the uninterrupted run's results bit for bit, wherever the Ctrl-C
lands: at chosen training steps (a real SIGINT sent from inside the step) and at an arbitrary
moment (a real SIGINT sent to a subprocess). A rejected run leaves nothing behind."""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from droplab.cli import entry
from droplab.training import loop

EXP = "zzx-flat-minima"
# Two trainings of 10 steps (20 gradient steps in all), then the flatness measurements and figures.
TINY = ["--profile", "smoke", "--no-progress", "--set", "steps=10", "--set", "n_train=60", "--set", "hidden=8,8",
        "--set", "profile_points=5", "--set", "n_directions=1"]


def _entry(*args: str) -> tuple[int, list[str]]:
    """The console entry in this process: (exit code, stderr lines)."""
    err = io.StringIO()
    with pytest.MonkeyPatch.context() as mp, contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        mp.setattr(sys, "argv", ["droplab", *args])
        try:
            entry()
            code = 0
        except SystemExit as exc:
            code = exc.code or 0
    return code, [line for line in err.getvalue().splitlines() if line.strip()]


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> dict:
    """A rejected ``--set lr=-1 --out D``, then the valid run into the same D."""
    d = tmp_path_factory.mktemp("ref") / "D"
    rejected = _entry("run", EXP, *TINY, "--set", "lr=-1", "--out", str(d))
    left = d.exists()
    accepted = _entry("run", EXP, *TINY, "--out", str(d))
    return {"rejected": rejected, "left": left, "accepted": accepted, "metrics": (d / "metrics.json").read_bytes(),
            "dir": d}


def test_a_rejected_run_leaves_nothing_and_the_directory_stays_usable(reference):
    code, err = reference["rejected"]
    assert code == 2 and err == ["error: lr must be finite and > 0, got -1.0"]
    assert not reference["left"]
    assert reference["accepted"][0] == 0
    env = json.loads((reference["dir"] / "environment.json").read_text())
    assert env["torch_threads"] == 1  # the default thread count, recorded


@pytest.mark.parametrize("at", [4, 16], ids=["first-training", "second-training"])
def test_ctrl_c_at_a_training_step_then_resume_is_the_uninterrupted_run(reference, tmp_path, monkeypatch, at):
    calls = []
    backward = loop._backward

    def interrupted_backward(*args, **kwargs):
        calls.append(1)
        if len(calls) == at:  # mid-step: before this step's forward pass draws its masks
            os.kill(os.getpid(), signal.SIGINT)
        return backward(*args, **kwargs)

    monkeypatch.setattr(loop, "_backward", interrupted_backward)
    d = tmp_path / "D"
    code, err = _entry("run", EXP, *TINY, "--out", str(d))
    assert code == 130 and len(err) == 1 and err[0].startswith("interrupted:")
    meta = json.loads((d / "run.json").read_text())
    assert meta["status"] == "failed" and "interrupted" in meta["error"]
    saved = {p.stem: torch.load(p, weights_only=True)["steps"] for p in (d / "checkpoints").iterdir()}
    assert at - 10 * (len(saved) - 1) in saved.values()  # the step Ctrl-C arrived in was finished and saved
    monkeypatch.setattr(loop, "_backward", backward)
    assert _entry("run", EXP, *TINY, "--out", str(d), "--resume")[0] == 0
    assert (d / "metrics.json").read_bytes() == reference["metrics"]


def test_ctrl_c_at_any_moment_then_resume_is_the_uninterrupted_run(reference, tmp_path):
    d = tmp_path / "D"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.Popen([sys.executable, "-m", "droplab.cli", "run", EXP, *TINY, "--out", str(d)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)
    deadline = time.time() + 120
    while not (d / "run.json").is_file() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)  # somewhere in training, measuring or plotting: the result must not depend on it
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr
    assert stderr.strip().startswith("interrupted:") and len(stderr.strip().splitlines()) == 1
    assert _entry("run", EXP, *TINY, "--out", str(d), "--resume")[0] == 0
    assert (d / "metrics.json").read_bytes() == reference["metrics"]
