"""Run directories are data: text from a run's claims and config reaches report.html as text, never as markup."""

from __future__ import annotations

import json

from droplab.reports import write_report

SCRIPT = "<script>alert('x')</script>"


def test_script_in_claims_and_config_is_escaped(tmp_path):
    run = tmp_path / "runs" / "exp"
    run.mkdir(parents=True)
    (run / "run.json").write_text(json.dumps({"experiment": "exp", "profile": "smoke", "status": "complete"}))
    (run / "config.json").write_text(json.dumps({"dataset": SCRIPT, "seed": 0}))
    (run / "metrics.json").write_text(json.dumps({"note": SCRIPT}))
    (run / "figures.json").write_text("[]")
    claim = {"id": "exp-claim", "paper": SCRIPT, "where": SCRIPT, "statement": SCRIPT, "criterion": SCRIPT,
             "measured": {"value": SCRIPT}, "verdict": "reproduced", "experiment": "exp", "notes": SCRIPT}
    (run / "claims.json").write_text(json.dumps([claim]))
    html_path, _ = write_report([run], tmp_path / "out")
    page = html_path.read_text()
    assert "<script" not in page.lower()
    assert page.count("&lt;script&gt;") >= 4  # statement, criterion, measured, config at least
