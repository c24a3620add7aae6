"""``reproduce`` run again: complete experiments are reused, unfinished ones resume from their
finished stages, ``--fresh`` starts over; one line per experiment started and finished."""

from __future__ import annotations

import re
from dataclasses import dataclass

import pytest

from droplab.experiments import Experiment, ExperimentConfig, RunContext, runner


@dataclass
class StagesCfg(ExperimentConfig):
    stages: int = 3


CALLS: list[tuple[str, int]] = []
FAIL: set[tuple[str, int]] = set()


def staged(exp_id: str):
    def run(cfg: StagesCfg, ctx: RunContext) -> None:
        total = 0.0
        for i in range(cfg.stages):
            def compute(i=i):
                CALLS.append((exp_id, i))
                if (exp_id, i) in FAIL:
                    raise ValueError(f"stage {i} failed on purpose")
                return {"v": float(i)}
            total += ctx.stage(f"s{i}", compute)["v"]
        ctx.log(total=total)
    return run


EXPS = [Experiment(i, "none", "stages", StagesCfg, staged(i)) for i in ("t-a", "t-b")]


@pytest.fixture
def two_experiments(monkeypatch, tmp_path):
    monkeypatch.setattr(runner, "all_experiments", lambda: EXPS)
    monkeypatch.chdir(tmp_path)
    CALLS.clear()
    FAIL.clear()


def test_reproduce_again_reuses_complete_and_resumes_unfinished_experiments(two_experiments, droplab, tmp_path):
    FAIL.add(("t-b", 1))
    code, _, err = droplab("reproduce", "--profile", "smoke", "--no-progress")
    assert code == 1 and CALLS == [("t-a", 0), ("t-a", 1), ("t-a", 2), ("t-b", 0), ("t-b", 1)]
    assert re.fullmatch(r"\[1/2\] t-a: started \(elapsed \d+s\)", err[0])
    assert re.fullmatch(r"\[1/2\] t-a: complete in \d+s \(elapsed \d+s, ETA \d+s\)", err[1])
    assert re.fullmatch(r"\[2/2\] t-b: started \(elapsed \d+s, ETA \d+s\)", err[2])
    assert err[3].startswith("[2/2] t-b: FAILED after") and err[3].endswith(
        "ValueError: stage 1 failed on purpose; traceback in runs/reproduce-smoke/t-b/traceback.txt")
    assert err[4] == ("Error: 1 experiment(s) failed: t-b; their run.json and traceback.txt say why; "
                      "rerun to retry them (finished work is kept)") and len(err) == 5
    run_json = tmp_path / "runs" / "reproduce-smoke" / "t-a" / "run.json"
    written = run_json.stat().st_mtime_ns

    FAIL.clear()
    CALLS.clear()
    code, out, err = droplab("reproduce", "--profile", "smoke", "--no-progress")
    assert code == 0 and CALLS == [("t-b", 1), ("t-b", 2)]  # t-a reused, t-b resumed after its finished stage
    assert err[0] == "[1/2] t-a: reused (complete earlier) (elapsed 0s)" and err[2].startswith("[2/2] t-b: complete")
    assert "report: runs/reproduce-smoke/report.html" in out
    assert run_json.stat().st_mtime_ns == written
    assert not (tmp_path / "runs" / "reproduce-smoke" / "t-b" / "traceback.txt").exists()  # of the failed attempt

    CALLS.clear()
    assert droplab("reproduce", "--profile", "smoke", "--no-progress")[0] == 0 and CALLS == []
    assert droplab("reproduce", "--profile", "smoke", "--no-progress", "--fresh")[0] == 0 and len(CALLS) == 6


def test_fresh_deletes_only_run_directories(two_experiments, droplab, tmp_path):
    (tmp_path / "R" / "t-a").mkdir(parents=True)
    (tmp_path / "R" / "t-a" / "mine.txt").write_text("keep")
    code, _, err = droplab("reproduce", "--out", "R", "--fresh")
    assert code == 2 and err == ["error: --fresh: R/t-a is not a droplab run directory; not deleting it"]
    assert (tmp_path / "R" / "t-a" / "mine.txt").is_file() and CALLS == []
