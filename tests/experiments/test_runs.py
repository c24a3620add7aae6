"""Run directories: contents, atomic completion, failure records, resume after an interruption."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest

from droplab.experiments import Experiment, ExperimentConfig, RunContext, run_experiment
from droplab.experiments.claims import ClaimSpec


@dataclass
class CountCfg(ExperimentConfig):
    stages: int = 3


CALLS: list[int] = []
INTERRUPT_AT: list[int] = []  # stage indices that raise KeyboardInterrupt (a simulated Ctrl-C)


def counting_run(cfg: CountCfg, ctx: RunContext) -> None:
    values = []
    for i in range(cfg.stages):
        def compute(i=i):
            CALLS.append(i)
            if i in INTERRUPT_AT:
                raise KeyboardInterrupt
            return {"value": float(i * i)}
        values.append(ctx.stage(f"s{i}", compute)["value"])
    ctx.log(total=sum(values))
    ctx.check(SUM, sum(values) == 5, {"total": sum(values)})


SUM = ClaimSpec(id="sum", kind="check", where="here", statement="sum is 5", check="total == 5")
EXP = Experiment("test-count", "none", "counting", CountCfg, counting_run, (SUM,))


def test_run_directory_holds_everything(tmp_path):
    ctx = run_experiment(EXP, tmp_path / "r", profile="smoke")
    names = {p.name for p in (tmp_path / "r").iterdir()}
    assert {"run.json", "config.json", "environment.json", "metrics.json", "metrics.csv", "claims.json",
            "figures.json", "stages"} <= names
    assert json.loads((tmp_path / "r" / "run.json").read_text())["status"] == "complete"
    env = json.loads((tmp_path / "r" / "environment.json").read_text())
    assert {"torch", "seed", "git_commit", "python"} <= set(env)
    (claim,) = json.loads((tmp_path / "r" / "claims.json").read_text())
    assert {"id", "paper", "where", "statement", "criterion", "measured", "verdict"} <= set(claim)
    assert claim["verdict"] == "passed" and claim["kind"] == "check" and ctx.complete


def test_interrupted_run_resumes_without_redoing_finished_stages(tmp_path):
    CALLS.clear()
    INTERRUPT_AT[:] = [2]
    with pytest.raises(KeyboardInterrupt):
        run_experiment(EXP, tmp_path / "r")
    meta = json.loads((tmp_path / "r" / "run.json").read_text())
    assert meta["status"] == "failed" and not (tmp_path / "r" / "claims.json").exists()
    assert CALLS == [0, 1, 2] and sorted(p.name for p in (tmp_path / "r" / "stages").iterdir()) == ["s0.pt", "s1.pt"]
    INTERRUPT_AT.clear()
    with pytest.raises(ValueError, match="already holds a run"):
        run_experiment(EXP, tmp_path / "r")
    with pytest.raises(ValueError, match="different config"):
        run_experiment(EXP, tmp_path / "r", resume=True, overrides={"stages": "4"})
    CALLS.clear()
    ctx = run_experiment(EXP, tmp_path / "r", resume=True)
    assert CALLS == [2] and ctx.metrics["total"] == 5.0 and ctx.complete


def test_complete_run_is_returned_on_resume(tmp_path):
    run_experiment(EXP, tmp_path / "r")
    CALLS.clear()
    ctx = run_experiment(EXP, tmp_path / "r", resume=True)
    assert CALLS == [] and ctx.claims[0].verdict == "passed"  # 0 + 1 + 4 == 5


def test_out_that_is_not_a_run_directory(tmp_path):
    (tmp_path / "stuff.txt").write_text("x")
    with pytest.raises(ValueError, match="exists and is not a droplab run directory"):
        run_experiment(EXP, tmp_path)
