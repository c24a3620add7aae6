"""Wall-time speed-up of the local sweep pool with 2 workers over 1 worker, on the same grid, in one run.

    python bench/sweep_speedup.py [--points 8]

Every point runs with one torch thread (the default of ``droplab run``, so a point's results equal
the standalone run's); the speed-up comes from running points side by side on the cores.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from droplab.sweeps import make_sweep, parse_axes, run_sweep, write_manifest


def timed(workers: int, lrs: list[str], root: Path) -> float:
    sw = make_sweep("zzx-flat-minima", parse_axes([f"lr={','.join(lrs)}"]), profile="smoke",
                    base={"n_directions": "1", "steps": "100"})
    out = root / f"w{workers}"
    write_manifest(out, sw, resume=False)
    start = time.perf_counter()
    statuses = run_sweep(sw, out, workers=workers, progress=False, threads=1)
    assert all(s == "complete" for s in statuses.values()), statuses
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--points", type=int, default=8)
    args = parser.parse_args()
    lrs = [f"{0.01 * (1 + i / 10):.4f}" for i in range(args.points)]
    with tempfile.TemporaryDirectory() as tmp:
        one = timed(1, lrs, Path(tmp))
        two = timed(2, lrs, Path(tmp))
    print(f"sweep of {args.points} smoke points: 1 worker {one:.1f} s, 2 workers {two:.1f} s, "
          f"speed-up {one / two:.2f}x")


if __name__ == "__main__":
    main()
