"""The report: one self-contained HTML page and a Markdown file, the claims table first.

``write_report(run_dirs, out)`` reads finished run directories (and notes failed or
incomplete ones) and writes ``out/report.html`` (figures embedded as base64 PNG) and
``out/report.md`` (figures linked relative to ``out``).
"""

from __future__ import annotations

import base64
import html
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from droplab import _io
from droplab.experiments.run import read_run


@dataclass
class RunRecord:
    """What the report needs of one run directory."""

    path: Path
    meta: dict[str, Any]
    config: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    claims: list[dict[str, Any]] = field(default_factory=list)
    figures: list[dict[str, str]] = field(default_factory=list)


def _read_json(path: Path, default: Any) -> Any:
    return json.loads(path.read_text()) if path.is_file() else default


def load_run(path: Path) -> RunRecord:
    """Read one run directory (a one-line error if it is not one)."""
    path = Path(path)
    meta = read_run(path)
    rec = RunRecord(path, meta, _read_json(path / "config.json", {}))
    if meta.get("status") == "complete":
        rec.metrics = _read_json(path / "metrics.json", {})
        rec.claims = _read_json(path / "claims.json", [])
        rec.figures = _read_json(path / "figures.json", [])
    return rec


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, dict):
        return "; ".join(f"{k} = {_fmt(x)}" for k, x in v.items())
    if isinstance(v, list):
        if len(v) > 8:
            return f"[{', '.join(_fmt(x) for x in v[:8])}, … ({len(v)} values)]"
        return "[" + ", ".join(_fmt(x) for x in v) + "]"
    return str(v)


def _scalars(metrics: dict[str, Any]) -> list[tuple[str, str]]:
    return [(k, _fmt(v)) for k, v in metrics.items() if isinstance(v, (int, float, str, bool)) or
            (isinstance(v, list) and len(v) <= 8 and all(isinstance(x, (int, float)) for x in v))]


def _tables(metrics: dict[str, Any]) -> list[tuple[str, list[str], list[list[str]]]]:
    """Metrics that are tables (non-empty lists of flat dicts): (name, columns, rows)."""
    out = []
    for name, v in metrics.items():
        if isinstance(v, list) and v and all(isinstance(r, dict) for r in v):
            cols: list[str] = []
            for r in v:
                cols += [k for k in r if k not in cols]
            out.append((name, cols, [[_fmt(r.get(c, "")) for c in cols] for r in v[:200]]))
    return out


def _claim_rows(runs: Sequence[RunRecord]) -> list[dict[str, Any]]:
    rows = []
    for r in runs:
        if r.meta.get("status") != "complete":
            rows.append({"id": r.meta.get("experiment", r.path.name), "paper": "", "where": "",
                         "statement": f"run {r.meta.get('status')}: {r.meta.get('error', 'not finished')}",
                         "criterion": "", "measured": {}, "verdict": "inconclusive"})
        rows += r.claims
    return rows


def verdict_counts(runs: Sequence[RunRecord]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for c in _claim_rows(runs):
        counts[c["verdict"]] = counts.get(c["verdict"], 0) + 1
    return counts


def markdown(runs: Sequence[RunRecord], out: Path) -> str:
    lines = ["# droplab reproduction report", ""]
    counts = verdict_counts(runs)
    lines += ["Verdicts: " + ", ".join(f"{v} {k}" for k, v in counts.items()), "", "## Claims", "",
              "| claim | paper | where | statement | criterion | measured | verdict |",
              "|---|---|---|---|---|---|---|"]
    for c in _claim_rows(runs):
        cells = [c["id"], c["paper"], c["where"], c["statement"], c["criterion"], _fmt(c["measured"]),
                 f"**{c['verdict']}**"]
        lines.append("| " + " | ".join(str(x).replace("|", "\\|").replace("\n", " ") for x in cells) + " |")
    for r in runs:
        exp = r.meta.get("experiment", r.path.name)
        lines += ["", f"## {exp}", "", f"Run directory `{r.path}`, profile `{r.meta.get('profile')}`, "
                  f"status `{r.meta.get('status')}`.", ""]
        for f in r.figures:
            rel = os.path.relpath(r.path / f["png"], out)
            lines += [f"![{f['name']}]({rel})", "", f"*{f['caption']}*", ""]
        scal = _scalars(r.metrics)
        if scal:
            lines += ["| metric | value |", "|---|---|"] + [f"| {k} | {v} |" for k, v in scal]
        for name, cols, rows in _tables(r.metrics):
            lines += ["", f"**{name}**", "", "| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
            lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


_CSS = """body{font-family:system-ui,sans-serif;max-width:1200px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:1em 0;font-size:0.9em}td,th{border:1px solid #ccc;padding:4px 8px;
vertical-align:top}th{background:#f3f3f3}.reproduced{background:#e3f6e3}.not-reproduced{background:#fbe3e3}
.inconclusive{background:#f6f1dc}img{max-width:100%}figcaption{font-size:0.9em;color:#555}"""


def html_page(runs: Sequence[RunRecord]) -> str:
    e = html.escape
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>droplab report</title>"
             f"<style>{_CSS}</style></head><body><h1>droplab reproduction report</h1>"]
    counts = verdict_counts(runs)
    parts.append("<p>Verdicts: " + ", ".join(f"{v} {e(k)}" for k, v in counts.items()) + "</p>")
    parts.append("<h2>Claims</h2><table><tr><th>claim</th><th>paper</th><th>where</th><th>statement</th>"
                 "<th>criterion</th><th>measured</th><th>verdict</th></tr>")
    for c in _claim_rows(runs):
        cls = c["verdict"].replace(" ", "-")
        parts.append(f"<tr class='{cls}'><td>{e(c['id'])}</td><td>{e(c['paper'])}</td><td>{e(c['where'])}</td>"
                     f"<td>{e(c['statement'])}</td><td>{e(c['criterion'])}</td><td>{e(_fmt(c['measured']))}</td>"
                     f"<td><b>{e(c['verdict'])}</b></td></tr>")
    parts.append("</table>")
    for r in runs:
        exp = r.meta.get("experiment", r.path.name)
        parts.append(f"<h2 id='{e(exp)}'>{e(exp)}</h2><p>Run directory <code>{e(str(r.path))}</code>, profile "
                     f"<code>{e(str(r.meta.get('profile')))}</code>, status <code>{e(str(r.meta.get('status')))}"
                     "</code>.</p>")
        for f in r.figures:
            png = r.path / f["png"]
            if png.is_file():
                b64 = base64.b64encode(png.read_bytes()).decode()
                parts.append(f"<figure><img src='data:image/png;base64,{b64}' alt='{e(f['name'])}'>"
                             f"<figcaption>{e(f['caption'])}</figcaption></figure>")
        scal = _scalars(r.metrics)
        if scal:
            parts.append("<table><tr><th>metric</th><th>value</th></tr>" +
                         "".join(f"<tr><td>{e(k)}</td><td>{e(v)}</td></tr>" for k, v in scal) + "</table>")
        for name, cols, rows in _tables(r.metrics):
            parts.append(f"<p><b>{e(name)}</b></p><table><tr>" + "".join(f"<th>{e(c)}</th>" for c in cols) +
                         "</tr>" + "".join("<tr>" + "".join(f"<td>{e(x)}</td>" for x in row) + "</tr>"
                                           for row in rows) + "</table>")
        if r.config:
            parts.append("<details><summary>config</summary><pre>" +
                         e(json.dumps(r.config, indent=2)) + "</pre></details>")
    parts.append("</body></html>")
    return "\n".join(parts)


def expand_run_dirs(paths: Sequence[Path]) -> list[Path]:
    """Run directories among ``paths``: each path is a run directory or a folder of them."""
    found: list[Path] = []
    for p in map(Path, paths):
        if (p / "run.json").is_file():
            found.append(p)
            continue
        children = sorted(c for c in p.iterdir() if (c / "run.json").is_file()) if p.is_dir() else []
        if not children:
            raise ValueError(f"RUN_DIR {p} is not a droplab run directory nor a folder of run directories")
        found += children
    return found


def write_report(run_dirs: Sequence[Path], out: Path) -> tuple[Path, Path]:
    """Write ``out/report.html`` and ``out/report.md`` for ``run_dirs``; return both paths."""
    runs = [load_run(p) for p in expand_run_dirs(run_dirs)]
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    html_path, md_path = out / "report.html", out / "report.md"
    _io.write_text(md_path, markdown(runs, out))
    _io.write_text(html_path, html_page(runs))
    return html_path, md_path
