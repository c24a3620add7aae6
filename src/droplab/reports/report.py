"""The report: one self-contained HTML page and its Markdown twin, read by a researcher in a minute.

``write_report(run_dirs, out)`` reads run directories and writes ``out/report.html`` (figures
embedded as base64 PNG) and ``out/report.md`` (figures linked relative to ``out``), in this order:

1. what was run — profiles, data sets, seeds, droplab version and commit, total time, the claim
   registry's hash (flagged per run when it differs from the current registry);
2. a scoreboard per paper — claims reproduced / not reproduced / inconclusive, checks passed / failed;
3. one compact row per claim, grouped by paper — statement, paper location, the paper's value, the
   estimate with its 95% interval, the verdict, the regime (met, or why not);
4. per experiment — its figures beside the claims they support; per-seed values, raw numbers and the
   config folded away;
5. the verified identities (checks), last.

A run that failed, is unfinished or unreadable is listed with the reason; every finished run renders.
"""

from __future__ import annotations

import base64
import html
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from droplab import _io
from droplab.experiments.claims import KINDS
from droplab.reports.runs import ROW_VERDICTS, RunRecord, expand_run_dirs, load_run


# ------------------------------------------------------------------------------------------ content
def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, dict):
        return "; ".join(f"{k} = {_fmt(x)}" for k, x in v.items())
    if isinstance(v, list):
        if len(v) > 8:
            return f"[{', '.join(_fmt(x) for x in v[:8])}, … ({len(v)} values)]"
        return "[" + ", ".join(_fmt(x) for x in v) + "]"
    return "—" if v is None else str(v)


def measured_text(c: dict[str, Any]) -> str:
    """``estimate [lo, hi] (n seeds, method)`` for a claim; the measured dict for a check."""
    if c.get("kind") == "check":
        return _fmt(c.get("measured", {}))
    est, iv = c.get("estimate"), c.get("interval") or [None, None]
    if est is None:
        return "no estimate"
    n = len(c.get("seeds", []))
    span = f" [{_fmt(iv[0])}, {_fmt(iv[1])}]" if iv and iv[0] is not None else " [no interval]"
    unit = "sample estimate" if c.get("method") == "mc-se" else f"{n} seed{'s' * (n != 1)}"
    return f"{_fmt(est)}{span} ({unit})"


def regime_text(c: dict[str, Any]) -> str:
    reg = c.get("regime") or {}
    if not reg:
        return ""
    return "met" if reg.get("met") else "not met"


def _claims(runs: Sequence[RunRecord], kind: str) -> list[dict[str, Any]]:
    return [c for r in runs for c in r.claims if c.get("kind", "claim") == kind]


def scoreboard(runs: Sequence[RunRecord]) -> list[dict[str, Any]]:
    """Per paper: claims by verdict and checks by outcome (records of any other kind, as old runs may hold,
    are not counted)."""
    papers: dict[str, dict[str, Any]] = {}
    for r in runs:
        for c in r.claims:
            if c.get("kind", "claim") not in KINDS or c["verdict"] not in ROW_VERDICTS:
                continue
            papers.setdefault(c.get("paper") or r.experiment, dict.fromkeys(ROW_VERDICTS, 0))[c["verdict"]] += 1
    return [{"paper": p, **counts} for p, counts in sorted(papers.items())]


def stale_records(r: RunRecord, current: Mapping[str, dict[str, Any]] | None) -> list[str]:
    """Ids of ``r``'s records whose registered text (statement, criterion, a claim's regime) differs from
    ``current`` (the registry now, by id) or that it no longer holds; [] without ``current``."""
    if current is None:
        return []
    out = []
    for c in r.claims:
        now = current.get(c["id"])
        if (now is None or now.get("statement") != c.get("statement") or now.get("criterion") != c.get("criterion")
                or (c.get("kind") == "claim" and now.get("regime") != (c.get("regime") or {}).get("required"))):
            out.append(c["id"])
    return out


def header(runs: Sequence[RunRecord], current_hash: str | None,
           current: Mapping[str, dict[str, Any]] | None = None) -> list[tuple[str, str]]:
    """(label, value) lines saying what was run; ``current`` (the registry now, by id) lets the registry line
    say which records, if any, were made under criteria that changed since."""
    def distinct(values: Any) -> str:
        vals = sorted({str(v) for v in values if v not in (None, "")})
        return ", ".join(vals) if vals else "—"

    envs = [r.environment for r in runs]
    elapsed = sum(float(r.meta.get("elapsed_s") or 0) for r in runs)
    seeds = [len(c.get("seeds", [])) for c in _claims(runs, "claim") if c.get("method") != "mc-se"]
    hashes = {r.meta.get("claims_hash") for r in runs if r.meta.get("claims_hash")}
    hash_line = distinct(h[:12] for h in hashes)
    stale = [i for r in runs for i in stale_records(r, current)]
    if current is not None and hashes and stale:
        hash_line += f" — {len(stale)} record(s) made under criteria that changed since: {', '.join(stale)}"
    elif current is not None and hashes and (len(hashes) > 1 or current_hash not in hashes):
        hash_line += (" — runs made under several registries, but every record's statement, criterion and regime "
                      "equal the current registry's")
    elif len(hashes) > 1:
        hash_line += " — runs were made with different claim registries (see each run's section)"
    elif current_hash and hashes and current_hash not in hashes:
        hash_line += f" — differs from the current registry ({current_hash[:12]}): criteria changed since"
    status = [r.meta.get("status") for r in runs]
    return [
        ("profile", distinct(r.meta.get("profile") for r in runs)),
        ("data sets", distinct(r.config.get("dataset") for r in runs)),
        ("seeds per claim", f"{min(seeds)}–{max(seeds)}" if seeds else "—"),
        ("droplab", distinct(e.get("droplab") for e in envs) + ", commit " + distinct(
            (e.get("git_commit") or "")[:10] for e in envs)),
        ("torch threads", distinct(e.get("torch_threads") for e in envs)),
        ("runs", f"{len(runs)} ({status.count('complete')} complete)"),
        ("total time", f"{elapsed / 60:.1f} min of run time (sum over runs)"),
        ("claim registry", hash_line),
    ]


# ------------------------------------------------------------------------------------------- html
_CSS = """body{font-family:system-ui,sans-serif;max-width:1300px;margin:1.5em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:0.6em 0;font-size:0.88em}td,th{border:1px solid #ddd;padding:3px 7px;
vertical-align:top;text-align:left}th{background:#f3f3f3}.v{font-weight:600;white-space:nowrap}
.reproduced,.passed{background:#dff3df}.not-reproduced,.failed{background:#f9dcdc}.inconclusive{background:#f6efd2}
img{max-width:100%}figure{margin:0.8em 0}figcaption{font-size:0.85em;color:#555}
.muted{color:#666;font-size:0.85em}details{margin:0.4em 0}summary{cursor:pointer;color:#245}
.score td{text-align:center}.score td:first-child{text-align:left}h2{border-bottom:1px solid #ccc;margin-top:1.6em}
code{font-size:0.9em}"""


def _e(v: Any) -> str:
    return html.escape(str(v), quote=True)


def _claim_row_html(c: dict[str, Any]) -> str:
    cls = c["verdict"].replace(" ", "-")
    reg = regime_text(c)
    why = c.get("reason") or ""
    sub = f" <span class='muted'>(substitute data: {_e(c['substitute'])})</span>" if c.get("substitute") else ""
    return (f"<tr class='{cls}'><td class='v'>{_e(c['verdict'])}</td>"
            f"<td><a href='#{_e(c.get('experiment', ''))}'><code>{_e(c['id'])}</code></a><br>{_e(c['statement'])}{sub}"
            f"</td><td>{_e(c.get('where', ''))}</td><td>{_e(c.get('paper_value') or '—')}</td>"
            f"<td>{_e(measured_text(c))}</td><td>{_e(reg)}{'<br>' if reg and why else ''}"
            f"<span class='muted'>{_e(why)}</span></td></tr>")


_CLAIM_HEAD = ("<tr><th>verdict</th><th>claim</th><th>where</th><th>paper's value</th>"
               "<th>measured: estimate [95% interval]</th><th>regime / reason</th></tr>")


def _details_html(c: dict[str, Any]) -> str:
    rows = [("criterion", c.get("criterion", "")), ("quote", c.get("quote", "")), ("method", c.get("method", "")),
            ("seeds", _fmt(c.get("seeds", []))), ("per-seed values", _fmt(c.get("values", []))),
            ("regime required", (c.get("regime") or {}).get("required", "")),
            ("regime measured", _fmt((c.get("regime") or {}).get("values", {}))),
            ("other measurements", _fmt(c.get("measured", {})))]
    body = "".join(f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in rows if v not in ("", "[]", "—"))
    return (f"<details><summary><code>{_e(c['id'])}</code>: {_e(c['verdict'])} — criterion and per-seed values"
            f"</summary><table>{body}</table></details>")


def html_page(runs: Sequence[RunRecord], title: str = "droplab reproduction report",
              current_hash: str | None = None, current: Mapping[str, dict[str, Any]] | None = None) -> str:
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{_e(title)}</title>"
             f"<style>{_CSS}</style></head><body><h1>{_e(title)}</h1>"]
    parts.append("<table>" + "".join(f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>"
                                     for k, v in header(runs, current_hash, current)) + "</table>")
    board = scoreboard(runs)
    if board:
        parts.append("<h2>Scoreboard</h2><p class='muted'>Claims are statements of a paper a measurement could "
                     "contradict; checks are identities that can fail only through a bug and are not counted as "
                     "reproductions.</p><table class='score'><tr><th>paper</th><th>claims reproduced</th>"
                     "<th>not reproduced</th><th>inconclusive</th><th>checks passed</th><th>checks failed</th></tr>")
        for b in board:
            cells = [b["reproduced"], b["not reproduced"], b["inconclusive"], b["passed"], b["failed"]]
            classes = ["reproduced", "not-reproduced", "inconclusive", "passed", "failed"]
            parts.append(f"<tr><td>{_e(b['paper'])}</td>" + "".join(
                f"<td class='{c if n else ''}'>{n}</td>" for c, n in zip(classes, cells)) + "</tr>")
        parts.append("</table>")
    claims = _claims(runs, "claim")
    if claims:
        parts.append("<h2>Claims</h2>")
        for paper in sorted({c.get("paper", "") for c in claims}):
            parts.append(f"<h3>{_e(paper)}</h3><table>{_CLAIM_HEAD}" + "".join(
                _claim_row_html(c) for c in claims if c.get("paper", "") == paper) + "</table>")
    bad = [r for r in runs if r.meta.get("status") != "complete" or r.problem]
    if bad:
        parts.append("<h2>Runs not shown in full</h2><table><tr><th>run</th><th>status</th><th>why</th></tr>" + "".join(
            f"<tr class='inconclusive'><td>{_e(r.experiment)}</td><td>{_e(r.meta.get('status'))}</td>"
            f"<td>{_e(r.problem or r.meta.get('error', 'not finished'))}</td></tr>" for r in bad) + "</table>")
    for r in runs:
        parts.append(_experiment_html(r, current_hash, current))
    checks = _claims(runs, "check")
    if checks:
        parts.append("<h2>Verified identities (checks)</h2><p class='muted'>Each proves the code, not the paper."
                     "</p><table><tr><th>outcome</th><th>check</th><th>where</th><th>what must hold</th>"
                     "<th>measured</th></tr>" + "".join(
                         f"<tr class='{_e(c['verdict'])}'><td class='v'>{_e(c['verdict'])}</td><td><code>{_e(c['id'])}"
                         f"</code><br>{_e(c['statement'])}</td><td>{_e(c.get('where', ''))}</td>"
                         f"<td>{_e(c.get('criterion', ''))}</td><td>{_e(measured_text(c))}</td></tr>"
                         for c in checks) + "</table>")
    parts.append("</body></html>")
    return "\n".join(parts)


def _experiment_html(r: RunRecord, current_hash: str | None, current: Mapping[str, dict[str, Any]] | None) -> str:
    exp = r.experiment
    env = r.environment
    h = r.meta.get("claims_hash") or ""
    stale = stale_records(r, current)
    if current is not None:
        flag = f" (made under criteria that changed since: {', '.join(stale)})" if stale else ""
    else:
        flag = " (claim registry differs from the current one)" if current_hash and h and h != current_hash else ""
    parts = [f"<h2 id='{_e(exp)}'>{_e(exp)}</h2><p class='muted'>run directory <code>{_e(r.path)}</code>, profile "
             f"{_e(r.meta.get('profile'))}, data {_e(r.config.get('dataset', '—'))}, status {_e(r.meta.get('status'))}"
             f", {_e(r.meta.get('elapsed_s', '?'))} s, {_e(env.get('torch_threads', '?'))} torch thread(s), "
             f"registry {_e(h[:12] or '—')}{_e(flag)}</p>"]
    own = [c for c in r.claims if c.get("kind") != "check"]
    if own:
        parts.append(f"<table>{_CLAIM_HEAD}" + "".join(_claim_row_html(c) for c in own) + "</table>")
    for f in r.figures:
        png = r.path / f["png"]
        if png.is_file():
            b64 = base64.b64encode(png.read_bytes()).decode()
            supports = f" Supports: {', '.join(f['claims'])}." if f.get("claims") else ""
            parts.append(f"<figure><img src='data:image/png;base64,{b64}' alt='{_e(f['name'])}'>"
                         f"<figcaption>{_e(f['caption'])}{_e(supports)}</figcaption></figure>")
    parts += [_details_html(c) for c in own]
    scal = _scalars(r.metrics)
    tables = _tables(r.metrics)
    if scal or tables:
        body = ""
        if scal:
            body += "<table>" + "".join(f"<tr><td>{_e(k)}</td><td>{_e(v)}</td></tr>" for k, v in scal) + "</table>"
        for name, cols, rows in tables:
            body += (f"<p><b>{_e(name)}</b></p><table><tr>" + "".join(f"<th>{_e(c)}</th>" for c in cols) + "</tr>"
                     + "".join("<tr>" + "".join(f"<td>{_e(x)}</td>" for x in row) + "</tr>" for row in rows)
                     + "</table>")
        parts.append(f"<details><summary>raw numbers</summary>{body}</details>")
    if r.config:
        parts.append("<details><summary>config</summary><pre>" + _e(json.dumps(r.config, indent=2)) +
                     "</pre></details>")
    return "\n".join(parts)


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


# --------------------------------------------------------------------------------------- markdown
def _md(v: Any) -> str:
    return str(v).replace("|", "\\|").replace("\n", " ")


def markdown(runs: Sequence[RunRecord], out: Path, title: str = "droplab reproduction report",
             current_hash: str | None = None, current: Mapping[str, dict[str, Any]] | None = None) -> str:
    lines = [f"# {title}", ""] + [f"- **{k}**: {_md(v)}" for k, v in header(runs, current_hash, current)] + [""]
    board = scoreboard(runs)
    if board:
        lines += ["## Scoreboard", "", "| paper | claims reproduced | not reproduced | inconclusive | checks passed "
                  "| checks failed |", "|---|---|---|---|---|---|"]
        lines += [f"| {_md(b['paper'])} | {b['reproduced']} | {b['not reproduced']} | {b['inconclusive']} | "
                  f"{b['passed']} | {b['failed']} |" for b in board]
    claims = _claims(runs, "claim")
    if claims:
        lines += ["", "## Claims", "", "| verdict | claim | statement | where | paper's value | measured | regime / "
                  "reason |", "|---|---|---|---|---|---|---|"]
        for c in claims:
            why = " ".join(x for x in (regime_text(c), c.get("reason", "")) if x)
            lines.append("| " + " | ".join(_md(x) for x in (
                f"**{c['verdict']}**", f"`{c['id']}`", c["statement"], c.get("where", ""), c.get("paper_value") or "—",
                measured_text(c), why)) + " |")
    for r in runs:
        shown = r.meta.get("status") == "complete" and not r.problem
        why = "." if shown else f": {r.problem or r.meta.get('error', '')}"
        lines += ["", f"## {r.experiment}", "", f"Run directory `{r.path}`, profile `{r.meta.get('profile')}`, "
                  f"status `{r.meta.get('status')}`{why}", ""]
        for f in r.figures:
            rel = os.path.relpath(r.path / f["png"], out)
            supports = f" Supports: {', '.join(f['claims'])}." if f.get("claims") else ""
            lines += [f"![{f['name']}]({rel})", "", f"*{f['caption']}*{supports}", ""]
        for c in r.claims:
            if c.get("kind") == "claim":
                lines.append(f"- `{c['id']}` per-seed values {_fmt(c.get('values', []))} (seeds "
                             f"{_fmt(c.get('seeds', []))}); criterion: {c.get('criterion', '')}")
        scal = _scalars(r.metrics)
        if scal:
            lines += ["", "| metric | value |", "|---|---|"] + [f"| {_md(k)} | {_md(v)} |" for k, v in scal]
        for name, cols, rows in _tables(r.metrics):
            lines += ["", f"**{name}**", "", "| " + " | ".join(map(_md, cols)) + " |", "|" + "---|" * len(cols)]
            lines += ["| " + " | ".join(map(_md, row)) + " |" for row in rows]
    checks = _claims(runs, "check")
    if checks:
        lines += ["", "## Verified identities (checks)", "", "| outcome | check | where | what must hold | measured |",
                  "|---|---|---|---|---|"]
        lines += ["| " + " | ".join(_md(x) for x in (c["verdict"], f"`{c['id']}` {c['statement']}", c.get("where", ""),
                                                       c.get("criterion", ""), measured_text(c))) + " |"
                  for c in checks]
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------------------------ files
def write_report(run_dirs: Sequence[Path], out: Path, current_hash: str | None = None,
                 current_listing: Sequence[dict[str, Any]] | None = None) -> tuple[Path, Path]:
    """Write ``out/report.html`` and ``out/report.md`` for ``run_dirs``; return both paths. ``current_hash``
    (the registry's hash now) flags runs made under other criteria; ``current_listing`` (the registry now,
    as ``droplab claims --json`` lists it) narrows the flag to the records whose criteria changed."""
    current = {row["id"]: row for row in current_listing} if current_listing is not None else None
    runs = [load_run(p) for p in expand_run_dirs(run_dirs)]
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    html_path, md_path = out / "report.html", out / "report.md"
    _io.write_text(md_path, markdown(runs, out, current_hash=current_hash, current=current))
    _io.write_text(html_path, html_page(runs, current_hash=current_hash, current=current))
    return html_path, md_path
