"""The report: what was run, a scoreboard per paper, one row per claim, figures beside claims, checks last."""

from __future__ import annotations

import json

import pytest

from droplab.experiments import ClaimSpec, Criterion, ExperimentConfig, RunContext
from droplab.experiments.plotting import subplots
from droplab.reports import write_report

CLAIM = ClaimSpec(id="down", kind="claim", where="Fig. 1", statement="it goes down", quote="it decreases",
                  paper_value="negative slope", criterion=Criterion(quantity="slope", op="<", threshold=0.0),
                  regime="trained to loss ≤ 0.05")
CHECK = ClaimSpec(id="identity", kind="check", where="eq. 2", statement="recursion = enumeration",
                  check="equal to 1e-12")


def make_run(path, exp_id: str, values: list[float] | None, fail: bool = False, met: bool = True) -> None:
    ctx = RunContext(path, exp_id, "quick", ExperimentConfig(), paper="Paper 2024", claims=[CLAIM, CHECK],
                     claims_hash="abc123")
    if fail:
        ctx.fail("RuntimeError: boom")
        return
    fig, ax = subplots()
    ax.plot([0, 1], [1, 0])
    ctx.figure(fig, "curve", "Paper, Fig. 1: a curve", claims=["down"])
    ctx.log(accuracy=0.93, widths=[1.0, 2.0])
    ctx.claim(CLAIM, values or [], regime_met=met, regime_reason="the net reached loss 0.4")
    ctx.check(CHECK, True, {"max_error": 1e-15})
    ctx.finish()


def test_report_scoreboard_claims_then_experiments_then_checks(tmp_path):
    make_run(tmp_path / "a", "exp-a", [-1.0, -1.1, -0.9])
    make_run(tmp_path / "b", "exp-b", [1.0, 1.2, 0.9])
    make_run(tmp_path / "c", "exp-c", [-1.0, -1.1, -0.9], met=False)
    make_run(tmp_path / "d", "exp-d", None, fail=True)
    html_path, md_path = write_report([tmp_path], tmp_path / "out", current_hash="abc123")
    md = md_path.read_text()
    assert md.index("## Scoreboard") < md.index("## Claims") < md.index("## exp-a") < md.index("## Verified")
    assert "| Paper 2024 | 1 | 1 | 1 | 3 | 0 |" in md
    assert "- **profile**: quick" in md and "exp-d" in md and "RuntimeError: boom" in md
    row = next(line for line in md.splitlines() if line.startswith("| **reproduced**"))
    assert "`down`" in row and "negative slope" in row and "(3 seeds)" in row and "[" in row
    assert "not met the net reached loss 0.4" in md
    page = html_path.read_text()
    assert page.index("Scoreboard") < page.index("<h2>Claims</h2>") < page.index("<h2 id='exp-a'>")
    assert page.index("<h2 id='exp-a'>") < page.index("Verified identities")
    assert "data:image/png;base64," in page and "Supports: down." in page and "<details>" in page


def test_report_flags_runs_made_under_another_registry(tmp_path):
    make_run(tmp_path / "a", "exp-a", [-1.0, -1.1, -0.9])
    _, md_path = write_report([tmp_path / "a"], tmp_path / "out", current_hash="zzz999")
    assert "differs from the current registry" in md_path.read_text()


def test_report_rejects_a_non_run_directory(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="is not a droplab run directory"):
        write_report([tmp_path / "empty"], tmp_path / "out")


def test_corrupt_run_json(tmp_path):
    (tmp_path / "r").mkdir()
    (tmp_path / "r" / "run.json").write_text("{not json")
    with pytest.raises(ValueError, match="corrupt run.json"):
        write_report([tmp_path / "r"], tmp_path)
    assert not (tmp_path / "report.html").exists()


@pytest.mark.parametrize("name, content, problem", [
    ("claims.json", '[{"id": "x"}]', "without an id or a known verdict"),
    ("claims.json", "{bad", "is corrupt"),
    ("metrics.json", "[1, 2]", "holds a list, expected a dict"),
])
def test_an_unreadable_run_is_listed_and_the_others_still_render(tmp_path, name, content, problem):
    make_run(tmp_path / "a", "exp-a", [-1.0, -1.1, -0.9])
    make_run(tmp_path / "b", "exp-b", [-1.0, -1.1, -0.9])
    (tmp_path / "b" / name).write_text(content)
    _, md_path = write_report([tmp_path], tmp_path / "out")
    md = md_path.read_text()
    assert problem in md and "| Paper 2024 | 1 |" in md


def test_a_run_json_that_is_a_list_is_listed(tmp_path):
    make_run(tmp_path / "a", "exp-a", [-1.0, -1.1, -0.9])
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "run.json").write_text("[]")
    _, md_path = write_report([tmp_path], tmp_path / "out")
    assert "holds a list, expected an object" in md_path.read_text()


def test_claims_json_round_trip(tmp_path):
    make_run(tmp_path / "a", "exp-a", [-1.0, -1.1, -0.9])
    claim, check = json.loads((tmp_path / "a" / "claims.json").read_text())
    assert claim["kind"] == "claim" and claim["verdict"] == "reproduced" and claim["experiment"] == "exp-a"
    assert {"quote", "criterion", "seeds", "estimate", "interval", "method", "regime", "verdict"} <= set(claim)
    assert claim["regime"]["met"] is True and check["kind"] == "check" and check["verdict"] == "passed"


def test_an_unregistered_claim_is_refused(tmp_path):
    ctx = RunContext(tmp_path / "r", "exp", "quick", ExperimentConfig(), claims=[CHECK])
    with pytest.raises(ValueError, match="down is not registered with experiment exp"):
        ctx.claim(CLAIM, [1.0, 2.0, 3.0])


def test_docs_results_blocks_are_rewritten_from_runs_and_the_rest_kept(tmp_path):
    from droplab.reports import load_run, update_docs

    make_run(tmp_path / "runs" / "a", "exp-a", [-1.0, -1.1, -0.9])
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "x.md").write_text("# X\n\nprose\n<!-- droplab:results exp-a exp-z -->\nstale numbers\n"
                               "<!-- /droplab:results -->\nafter\n")
    (docs / "y.md").write_text("# Y, no block\n")
    runs = [load_run(tmp_path / "runs" / "a")]
    assert update_docs(runs, docs) == [docs / "x.md"]
    text = (docs / "x.md").read_text()
    assert "stale numbers" not in text and text.startswith("# X\n\nprose\n") and text.endswith("after\n")
    row = next(line for line in text.splitlines() if line.startswith("| **reproduced**"))
    assert "`down` it goes down" in row and "(3 seeds)" in row and "negative slope" in row
    assert "Not in these runs: exp-z" in text and "Profile quick" in text
    assert update_docs(runs, docs) == []  # a second pass changes nothing


def test_the_registry_line_names_only_records_whose_criteria_changed(tmp_path):
    make_run(tmp_path / "a", "exp-a", [-1.0, -1.1, -0.9])
    same = [CLAIM.listing("exp-a", "Paper 2024"), CHECK.listing("exp-a", "Paper 2024")]
    _, md_path = write_report([tmp_path / "a"], tmp_path / "out", current_hash="zzz999", current_listing=same)
    assert "every record's statement, criterion and regime equal the current registry's" in md_path.read_text()
    changed = [{**same[0], "regime": "trained to loss ≤ 0.01"}, same[1]]
    _, md_path = write_report([tmp_path / "a"], tmp_path / "out", current_hash="zzz999", current_listing=changed)
    assert "1 record(s) made under criteria that changed since: down" in md_path.read_text()
