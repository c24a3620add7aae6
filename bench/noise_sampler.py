"""Vectorized vs naive gradient sampler (ZZX §3.4.2) on the paper's setup, ratios from one run.

FNN 784-50-50-10, dropout (keep 0.8) after hidden layer 2, 10,000 examples (MNIST if its files are
in $DROPLAB_DATA, else random data of that shape), block = the 50×50 weight + bias (D = 2,550).
Prints ms per draw, where the time goes (drawing masks vs arithmetic), the speed-up, and the largest
difference between the two methods' samples (same seed: they must agree draw for draw).

    python bench/noise_sampler.py [n_vectorized] [n_loop]
"""

import sys
import time

import torch
from torch import nn

from droplab import data as _data
from droplab.models import FNN
from droplab.noise_structure import gradient_samples


def main(n_vec: int = 256, n_loop: int = 16) -> None:
    torch.manual_seed(0)
    try:
        train = _data.load("mnist", "train", n=10000, flat=True)
        x, y, source = train.x.float(), train.y, "MNIST"
    except Exception as err:  # noqa: BLE001 - the bench falls back to random data of the same shape
        x, y, source = torch.randn(10000, 784), torch.randint(0, 10, (10000,)), f"random data ({type(err).__name__})"
    model = FNN([784, 50, 50, 10], dropout={2: 0.2})
    block = ["net.2.weight", "net.2.bias"]
    ce = nn.functional.cross_entropy
    print(f"data: {source}, {tuple(x.shape)}; torch threads: {torch.get_num_threads()}")
    results = {}
    for method, n in (("vectorized", n_vec), ("loop", n_loop)):
        timings: dict[str, float] = {}
        t0 = time.perf_counter()
        s = gradient_samples(model, ce, (x, y), n, block, generator=torch.Generator().manual_seed(0), method=method,
                             timings=timings)
        total = time.perf_counter() - t0
        results[method] = (s.samples, total / n)
        print(f"{method:>10}: {1e3 * total / n:7.2f} ms/draw  (masks {1e3 * timings['masks'] / n:.2f}, "
              f"arithmetic {1e3 * timings['arithmetic'] / n:.2f})")
    diff = (results["vectorized"][0][:n_loop] - results["loop"][0]).abs().max().item()
    print(f"speed-up vectorized / loop: {results['loop'][1] / results['vectorized'][1]:.1f}x; "
          f"max |difference| over {n_loop} common draws: {diff:.2e}")


if __name__ == "__main__":
    main(*[int(a) for a in sys.argv[1:]])
