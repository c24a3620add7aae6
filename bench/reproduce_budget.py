"""Where the time of ``droplab reproduce`` goes: wall and CPU seconds per experiment, share of the total.

    python bench/reproduce_budget.py [REPRODUCE_DIR]          # read a finished reproduce (default runs/reproduce-quick)
    python bench/reproduce_budget.py --run [--profile smoke]   # run one first (into a temporary folder)

Each run directory's ``run.json`` holds ``elapsed_s`` (wall) and ``cpu_s`` (CPU of its process, all
threads); ``timing.json`` says which stages came from the shared cache (trained once per reproduce).
With parallel workers the wall total of the reproduce is less than the sum of the experiments' walls.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def budget(root: Path) -> list[dict]:
    rows = []
    for run in sorted(p for p in root.iterdir() if (p / "run.json").is_file()):
        meta = json.loads((run / "run.json").read_text())
        timing = json.loads((run / "timing.json").read_text()) if (run / "timing.json").is_file() else []
        rows.append({"experiment": meta.get("experiment", run.name), "status": meta.get("status"),
                     "wall_s": float(meta.get("elapsed_s") or 0), "cpu_s": float(meta.get("cpu_s") or 0),
                     "shared": sum(t["source"] == "shared cache" for t in timing),
                     "computed": sum(t["source"] == "computed" for t in timing)})
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("root", nargs="?", default="runs/reproduce-quick")
    ap.add_argument("--run", action="store_true", help="run a reproduce first, into a temporary folder")
    ap.add_argument("--profile", default="smoke")
    args = ap.parse_args()
    root = Path(args.root)
    wall = None
    if args.run:
        root = Path(tempfile.mkdtemp(prefix="droplab-budget-"))
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "droplab.cli", "reproduce", "--profile", args.profile, "--out",
                        str(root), "--no-progress"], check=True)
        wall = time.perf_counter() - start
    if not root.is_dir():
        sys.exit(f"{root} is not a reproduce directory; pass one, or --run")
    rows = sorted(budget(root), key=lambda r: -r["wall_s"])
    total_wall = sum(r["wall_s"] for r in rows) or 1.0
    total_cpu = sum(r["cpu_s"] for r in rows)
    print(f"{'experiment':<30} {'wall s':>8} {'CPU s':>8} {'share':>6}  stages computed / from shared cache")
    for r in rows:
        print(f"{r['experiment']:<30} {r['wall_s']:8.1f} {r['cpu_s']:8.1f} {100 * r['wall_s'] / total_wall:5.1f}%"
              f"  {r['computed']} / {r['shared']}" + ("" if r["status"] == "complete" else f"  ({r['status']})"))
    print(f"{'sum over experiments':<30} {total_wall:8.1f} {total_cpu:8.1f}")
    if wall is not None:
        print(f"reproduce wall time (parallel workers overlap experiments): {wall:.1f} s")


if __name__ == "__main__":
    main()
