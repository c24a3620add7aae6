"""Run-directory lifecycle: one process per directory, attempts that left nothing to reuse start
over, a directory killed while being created stays usable, claims files are checked on reading."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest

from droplab.experiments import Experiment, ExperimentConfig, RunContext, run_experiment
from droplab.experiments.run import read_claims


@dataclass
class Cfg(ExperimentConfig):
    value: float = 1.0


def fails_at_once(cfg: Cfg, ctx: RunContext) -> None:
    raise RuntimeError("broken before any stage")


def logs(cfg: Cfg, ctx: RunContext) -> None:
    ctx.log(value=ctx.stage("s", lambda: {"v": cfg.value})["v"])


BROKEN = Experiment("t-broken", "none", "fails", Cfg, fails_at_once)
GOOD = Experiment("t-broken", "none", "logs", Cfg, logs)


def test_a_directory_is_written_by_one_process_at_a_time(tmp_path):
    first = RunContext(tmp_path / "r", "t", "smoke", Cfg())
    with pytest.raises(ValueError, match="is in use by another droplab process"):
        RunContext(tmp_path / "r", "t", "smoke", Cfg(), resume=True)
    first.close()
    RunContext(tmp_path / "r", "t", "smoke", Cfg(), resume=True).close()


def test_a_failed_attempt_without_finished_work_is_started_over(tmp_path):
    with pytest.raises(RuntimeError, match="broken before any stage"):
        run_experiment(BROKEN, tmp_path / "r")
    meta = json.loads((tmp_path / "r" / "run.json").read_text())
    assert meta["status"] == "failed" and meta["error"] == "RuntimeError: broken before any stage"
    assert "Traceback" in (tmp_path / "r" / "traceback.txt").read_text()
    ctx = run_experiment(GOOD, tmp_path / "r", overrides={"value": "2.5"})  # no --resume, another config: fine
    assert ctx.complete and ctx.metrics == {"value": 2.5}
    assert not (tmp_path / "r" / "traceback.txt").exists()


def test_a_directory_killed_while_being_created_is_usable(tmp_path):
    (tmp_path / "r").mkdir()
    (tmp_path / "r" / ".config.json.0123456789ab.tmp").write_text("{")  # left by a kill -9 mid-write
    assert run_experiment(GOOD, tmp_path / "r").complete
    (tmp_path / "s").mkdir()
    (tmp_path / "s" / "run.json").write_text(json.dumps({"experiment": "t-broken", "status": "running"}))
    assert run_experiment(GOOD, tmp_path / "s").complete  # run.json written, then killed: nothing to reuse


def test_claims_are_records_with_id_and_verdict(tmp_path):
    (tmp_path / "claims.json").write_text(json.dumps([{"id": "a", "verdict": "reproduced"}, {"id": "b"}]))
    with pytest.raises(ValueError, match="claims.json: record 1 has no verdict"):
        read_claims(tmp_path)
    (tmp_path / "claims.json").write_text(json.dumps({"id": "a"}))
    with pytest.raises(ValueError, match="claims.json must hold a JSON array, got dict"):
        read_claims(tmp_path)


def test_a_resumed_run_counts_the_seconds_of_its_earlier_sessions(tmp_path):
    first = RunContext(tmp_path / "r", "t", "smoke", Cfg())
    first.stage("s", lambda: {"v": 1.0})
    first.close()
    meta_path = tmp_path / "r" / "run.json"
    meta = json.loads(meta_path.read_text())
    meta.update(elapsed_s=100.0, cpu_s=90.0)  # as an earlier, interrupted session would have left it
    meta_path.write_text(json.dumps(meta))
    second = RunContext(tmp_path / "r", "t", "smoke", Cfg(), resume=True)
    second.finish()
    meta = json.loads(meta_path.read_text())
    assert meta["status"] == "complete" and meta["elapsed_s"] >= 100.0 and meta["cpu_s"] >= 90.0
