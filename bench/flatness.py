"""Definition 2's widths along many directions: one search per threshold vs ``flatness_table``, in one run.

The measurement of ``zzx-flat-minima`` (ZZX Fig. 1(a), Definition 2's Remark): an FNN 784-128-128-10
on the 4,000 ``mnist-5k`` training images, 6 layer-normalized directions, the widths at the pre-factors
1.5, 2 and 3 and at an absolute level. Before: ``interval_flatness`` once per direction and threshold, each
profile searched point by point (bracketing, then bisection). After: ``flatness_table``, the bracketing grid
shared by every threshold and each bisection round one batched call for every open bracket. Prints the
loss evaluations and seconds of both and the largest relative difference of the widths found.

    python bench/flatness.py [n_directions]
"""

import sys
import time

import torch
from torch import nn

from droplab import data as _data
from droplab.landscape import (
    IntervalFlatness,
    filter_normalized_direction,
    flatness_table,
    interval_flatness,
    loss_profile,
)
from droplab.models import FNN


def main(n_directions: int = 6) -> None:
    torch.manual_seed(0)
    train = _data.load("mnist-5k", "train", flat=True)
    x, y = train.x.flatten(1), train.y
    model = FNN([784, 128, 128, 10], "relu")
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    for _ in range(100):  # a few full-batch steps: a minimum of realistic, non-uniform shape
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
    g = torch.Generator().manual_seed(17)
    dirs = [filter_normalized_direction(model, g, "layer") for _ in range(n_directions)]
    loss0 = float(nn.functional.cross_entropy(model(x), y).detach())
    factors, level = (1.5, 2.0, 3.0), 2.5 * loss0
    search = {"radius": 4.0, "tol": 1e-2, "initial": 4.0 / 64}
    print(f"FNN 784-128-128-10, {len(x)} mnist-5k images, {n_directions} directions, factors {factors}, "
          f"level {level:.3f}; torch threads: {torch.get_num_threads()}")

    calls = 0

    def searched(d: list[torch.Tensor], c: float | None) -> IntervalFlatness:
        def profile(delta: float) -> float:  # one loss evaluation per call: the point-by-point search
            nonlocal calls
            calls += 1
            return float(loss_profile(model, nn.functional.cross_entropy, (x, y), d, [delta])[0])
        return interval_flatness(profile, c or 2.0, level=None if c else level, **search)

    t0 = time.perf_counter()
    seq = {c: [searched(d, c) for d in dirs] for c in factors}
    seq[level] = [searched(d, None) for d in dirs]
    t_before = time.perf_counter() - t0

    t0 = time.perf_counter()
    by_factor, by_level = flatness_table(model, nn.functional.cross_entropy, (x, y), dirs, factors, (level,),
                                         **search)
    t_after = time.perf_counter() - t0
    found = [(a, b) for c in factors for a, b in zip(by_factor[c], seq[c])] + list(zip(by_level[level], seq[level]))
    worst = max(abs(a.width - b.width) / b.width for a, b in found)  # float32 sums: batched vs single calls
    print(f"one search per direction and threshold: {calls} loss evaluations, {t_before:.2f} s")
    print(f"flatness_table (shared grid, batched rounds): {t_after:.2f} s")
    print(f"speed-up {t_before / t_after:.2f}x; largest relative difference of the widths: {worst:.1e} "
          f"(the bisection's relative tolerance is {search['tol']})")


if __name__ == "__main__":
    main(*(int(a) for a in sys.argv[1:]))
