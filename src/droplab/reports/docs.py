"""Results blocks in the Markdown docs, regenerated from run directories (``droplab report RUNS --docs DIR``).

A doc marks where a reproduction's verdicts belong with a pair of comments naming experiment ids::

    <!-- droplab:results bs-bounds bs-nwgm-sampling -->
    (generated table)
    <!-- /droplab:results -->

Everything between the two markers is replaced by one row per claim of those experiments, taken from the
runs' ``claims.json``: verdict, claim, the measured estimate with its interval and seeds, the paper's
value and the regime. The docs then quote what a reproduce measured, never numbers typed by hand.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from droplab import _io
from droplab.reports.report import measured_text, regime_text
from droplab.reports.runs import RunRecord

_BLOCK = re.compile(r"(<!-- droplab:results ([^>]*?) -->\n)(.*?)(<!-- /droplab:results -->)", re.S)


def _cell(v: object) -> str:
    return str(v).replace("|", "\\|").replace("\n", " ")


def results_table(runs: Sequence[RunRecord], experiment_ids: Sequence[str]) -> str:
    """Markdown table of the claims of ``experiment_ids`` (in that order) found among ``runs``."""
    by_id = {r.experiment: r for r in runs}
    missing = [e for e in experiment_ids if e not in by_id]
    lines = ["| verdict | claim | measured [95% interval] | paper's value | regime / reason |", "|---|---|---|---|---|"]
    for exp in experiment_ids:
        r = by_id.get(exp)
        for c in (r.claims if r else []):
            if c.get("kind") != "claim":
                continue
            why = " ".join(x for x in (regime_text(c), c.get("reason", "")) if x)
            lines.append("| " + " | ".join(_cell(x) for x in (
                f"**{c['verdict']}**", f"`{c['id']}` {c['statement']}", measured_text(c),
                c.get("paper_value") or "—", why or "—")) + " |")
    runs_used = [by_id[e] for e in experiment_ids if e in by_id]
    profiles = sorted({str(r.meta.get("profile")) for r in runs_used})
    data = sorted({str(r.config.get("dataset")) for r in runs_used if r.config.get("dataset")})
    commits = sorted({(r.environment.get("git_commit") or "")[:10] for r in runs_used} - {""})
    note = (f"*Profile {', '.join(profiles) or '—'}; data {', '.join(data) or '—'}; droplab commit "
            f"{', '.join(commits) or '—'}; regenerate with `droplab report runs/reproduce-quick --docs docs`.*")
    if missing:
        note += f" *Not in these runs: {', '.join(missing)}.*"
    return "\n".join([note, "", *lines]) + "\n"


def update_docs(runs: Sequence[RunRecord], docs_dir: Path) -> list[Path]:
    """Rewrite every results block of the ``*.md`` files in ``docs_dir``; returns the files changed."""
    changed = []
    for path in sorted(Path(docs_dir).glob("*.md")):
        text = path.read_text(encoding="utf-8")
        new = _BLOCK.sub(lambda m: m.group(1) + results_table(runs, m.group(2).split()) + m.group(4), text)
        if new != text:
            _io.write_text(path, new)
            changed.append(path)
    return changed
