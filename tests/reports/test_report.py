"""The report: claims table first, every run's figures and numbers, failed runs shown honestly."""

from __future__ import annotations

import json

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

from droplab.experiments import ExperimentConfig, RunContext  # noqa: E402
from droplab.reports import write_report  # noqa: E402


def make_run(path, exp_id: str, outcome: bool | None, fail: bool = False) -> None:
    ctx = RunContext(path, exp_id, "smoke", ExperimentConfig())
    if fail:
        ctx.fail("RuntimeError: boom")
        return
    fig, ax = plt.subplots()
    ax.plot([0, 1], [1, 0])
    ctx.figure(fig, "curve", "Paper, Fig. 1: a curve")
    ctx.log(accuracy=0.93, widths=[1.0, 2.0])
    ctx.claim(id=f"{exp_id}-claim", paper="Paper 2024", where="Fig. 1", statement="it goes down",
              criterion="last < first", measured={"first": 1, "last": 0}, outcome=outcome)
    ctx.finish()


def test_report_has_the_claims_table_first(tmp_path):
    make_run(tmp_path / "a", "exp-a", True)
    make_run(tmp_path / "b", "exp-b", False)
    make_run(tmp_path / "c", "exp-c", None, fail=True)
    html_path, md_path = write_report([tmp_path], tmp_path / "out")
    md = md_path.read_text()
    first_section = md.index("## Claims")
    assert first_section < md.index("## exp-a")
    table = md[first_section: md.index("## exp-a")]
    row = "| exp-a-claim | Paper 2024 | Fig. 1 | it goes down | last < first | first = 1; last = 0 | **reproduced** |"
    assert row in table
    assert "**not reproduced**" in table and "run failed: RuntimeError: boom" in table
    assert "accuracy | 0.93" in md and "![curve](" in md
    page = html_path.read_text()
    assert page.index("<h2>Claims</h2>") < page.index("<h2 id='exp-a'>")
    assert "data:image/png;base64," in page and "it goes down" in page
    counts = md.splitlines()[2]
    assert counts == "Verdicts: 1 reproduced, 1 not reproduced, 1 inconclusive"


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


def test_claims_json_round_trip(tmp_path):
    make_run(tmp_path / "a", "exp-a", True)
    (claim,) = json.loads((tmp_path / "a" / "claims.json").read_text())
    assert claim["verdict"] == "reproduced" and claim["experiment"] == "exp-a"
