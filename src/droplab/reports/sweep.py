"""Aggregating a sweep: mean ± std over seeds per grid point, grid figures, claims over the grid."""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from pathlib import Path
from typing import Any

from droplab import _io
from droplab.experiments.claims import VERDICTS
from droplab.experiments.plotting import subplots
from droplab.reports.report import html_page, markdown
from droplab.reports.runs import RunRecord, load_run
from droplab.sweeps.grid import read_manifest

GRID_RULE = ("over the grid: reproduced iff a strict majority of the points with a decided verdict reproduce it, "
             "not reproduced iff a strict majority do not, inconclusive otherwise")


def _number(v: Any) -> float | None:
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None


def grid_claims(points: list[RunRecord]) -> list[dict[str, Any]]:
    """One record per claim id over all complete points: claims by the majority rule above, checks
    passed only if every point passed them."""
    by_id: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in points:
        for c in r.claims:
            by_id[c["id"]].append(c)
    out = []
    for cid, cs in by_id.items():
        first = cs[0]
        if first.get("kind") == "check":
            verdict = "passed" if all(c["verdict"] == "passed" for c in cs) else "failed"
            out.append({**first, "id": f"{cid} (grid)", "verdict": verdict,
                        "measured": {"passed": sum(c["verdict"] == "passed" for c in cs), "points": len(cs)}})
            continue
        counts = {v: sum(c["verdict"] == v for c in cs) for v in VERDICTS}
        decided = counts["reproduced"] + counts["not reproduced"]
        verdict = "inconclusive"
        if decided and counts["reproduced"] * 2 > decided:
            verdict = "reproduced"
        elif decided and counts["not reproduced"] * 2 > decided:
            verdict = "not reproduced"
        out.append({**first, "id": f"{cid} (grid)", "criterion": f"{first['criterion']} — {GRID_RULE}",
                    "estimate": None, "interval": [None, None], "reason": _fmt_counts(counts, len(cs)),
                    "measured": {**counts, "points": len(cs)}, "verdict": verdict})
    return out


def _fmt_counts(counts: dict[str, int], n: int) -> str:
    return f"over {n} grid points: " + ", ".join(f"{k} {v}" for k, v in counts.items())


def aggregate_rows(axes: dict[str, list[str]], points: list[tuple[dict[str, str], RunRecord]]) -> list[dict[str, Any]]:
    """Mean and std over seeds of every scalar metric, one row per grid point."""
    groups: dict[tuple, list[RunRecord]] = defaultdict(list)
    for overrides, rec in points:
        groups[tuple(overrides.get(k) for k in axes)].append(rec)
    rows = []
    for key, recs in groups.items():
        row: dict[str, Any] = dict(zip(axes, key))
        done = [r for r in recs if r.meta.get("status") == "complete"]
        row["seeds_done"] = f"{len(done)}/{len(recs)}"
        names = [k for k in (done[0].metrics if done else {}) if _number(done[0].metrics[k]) is not None]
        for name in names:
            vals = [_number(r.metrics.get(name)) for r in done]
            vals = [v for v in vals if v is not None and math.isfinite(v)]
            if vals:
                row[f"{name} mean"] = statistics.fmean(vals)
                row[f"{name} std"] = statistics.stdev(vals) if len(vals) > 1 else 0.0
        rows.append(row)
    return rows


def varies(rows: list[dict[str, Any]], metric: str) -> bool:
    """Whether ``metric``'s mean differs between grid points (a constant one gets no figure by default)."""
    return len({r[f"{metric} mean"] for r in rows if f"{metric} mean" in r}) > 1


def grid_figure(axes: dict[str, list[str]], rows: list[dict[str, Any]], metric: str, path: Path) -> bool:
    """Plot ``metric`` (mean ± std over seeds) against the first axis, one line per other-axes value."""
    if not axes or not any(f"{metric} mean" in r for r in rows):
        return False
    first, rest = list(axes)[0], list(axes)[1:]
    fig, ax = subplots(figsize=(5, 3.5))
    lines: dict[tuple, list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        lines[tuple(r[k] for k in rest)].append(r)
    for key, rs in lines.items():
        rs = [r for r in rs if f"{metric} mean" in r]
        try:
            xs = [float(r[first]) for r in rs]
        except ValueError:
            xs = list(range(len(rs)))
        order = sorted(range(len(rs)), key=lambda i: xs[i])
        label = ", ".join(f"{k}={v}" for k, v in zip(rest, key)) or metric
        ax.errorbar([xs[i] for i in order], [rs[i][f"{metric} mean"] for i in order],
                    yerr=[rs[i][f"{metric} std"] for i in order], marker="o", capsize=3, label=label)
    ax.set(xlabel=first, ylabel=f"{metric} (mean ± std over seeds)")
    ax.legend(fontsize=7)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    return True


def write_sweep_report(sweep_dir: Path, out: Path | None = None, metrics: list[str] | None = None) -> tuple[Path, Path]:
    """Write ``report.html`` / ``report.md`` for a sweep: grid table, grid figures, claims over the grid."""
    sweep_dir = Path(sweep_dir)
    out = Path(out or sweep_dir)
    sweep = read_manifest(sweep_dir)
    points = []
    for p in sweep.points:
        path = sweep_dir / "points" / p.name
        rec = load_run(path) if (path / "run.json").is_file() else RunRecord(path, {"status": "missing"})
        points.append((p.overrides, rec))
    rows = aggregate_rows(sweep.axes, points)
    records = [r for _, r in points]
    known = sorted({k[:-5] for r in rows for k in r if k.endswith(" mean")})
    unknown = [m for m in metrics or () if m not in known]
    if unknown:
        raise ValueError(f"--metric {unknown[0]!r} is not a numeric metric of this sweep's complete points; "
                         f"known: {', '.join(known) or 'none yet'}")
    names = metrics or [m for m in known if varies(rows, m)]  # a constant metric has nothing to show
    figures = []
    for name in names:
        rel = f"figures/grid-{len(figures):02d}.png"
        if grid_figure(sweep.axes, rows, name, out / rel):
            figures.append({"name": name, "png": rel, "pdf": "",
                            "caption": f"{name} across the grid ({', '.join(sweep.axes)}), mean ± std over "
                                       f"{sweep.seeds} seed(s)"})
    status = [r.meta.get("status") for r in records]
    summary = RunRecord(out, {"experiment": f"sweep of {sweep.experiment}", "profile": sweep.profile,
                              "status": "complete"},
                        {"axes": sweep.axes, "seeds": sweep.seeds},
                        {"points": len(records), "complete": status.count("complete"),
                         "failed": status.count("failed"), "grid": rows},
                        grid_claims(records), figures)
    _io.write_text(out / "report.md", markdown([summary], out, title=f"droplab sweep report: {sweep.experiment}"))
    _io.write_text(out / "report.html", html_page([summary], title=f"droplab sweep report: {sweep.experiment}"))
    return out / "report.html", out / "report.md"
