"""Vectorized vs naive gradient sampler (ZZX §3.4.2) on the paper's setup, ratios from one run.

FNN 784-50-50-10, dropout (keep 0.8) after hidden layer 2, 10,000 examples (MNIST if its files are
in $DROPLAB_DATA, else random data of that shape), block = the 50×50 weight + bias (D = 2,550).
Prints ms per draw, where the time goes (drawing masks vs arithmetic), the speed-up, and the largest
difference between the two methods' samples (same seed: they must agree draw for draw). Times are
given as wall clock and as this process's CPU time; on a shared, loaded machine the CPU-time ratio
is the meaningful one (run with OMP_NUM_THREADS=1 there). Both methods are warmed up first.

Where the floor is: per draw the vectorized path does the contraction Σ_i δ_i ã_iᵀ (2·n·50·51 ≈ 51
MFLOP), two products with the 50×10 last layer (≈ 20 MFLOP) and a few elementwise passes over the
(n, 50) masks; the loop also runs the whole forward, whose first layer alone is 2·n·784·50 ≈ 784
MFLOP. So the speed-up is bounded by about 12× from FLOPs alone. The textbook loop below also
computes the first layer's weight gradient (another 784 MFLOP, ≈ 1.65 GFLOP per draw in all), so
against it the FLOP ratio is about 23×: a 20× speed-up would need the vectorized path's small
GEMMs, elementwise passes and mask generation to run as efficiently as the loop's large GEMMs.

The floor printed at the end is the vectorized sampler's own: its three matrix products per draw
(2n(k·m + 2·m·C) ≈ 71 MFLOP: the contraction, the logits, δ = P V) at the GEMM rate of a 1024² product
measured in the same run, plus its 500,000 masks per draw at the mask generator's rate measured in
the same run; the ratio is the sampler's time per draw over it (elementwise passes, softmax, Python
and memory traffic are what it does above the floor).

Last, the mask generator alone (``droplab.nn.laws.bernoulli_noise``, 32-bit integers from
numpy's PCG64 in parallel threads, compared with a threshold) against ``torch.rand`` + compare and
``torch.bernoulli_``, on the (16·n, 50) masks of one chunk.

A third timing is the textbook loop a user writes without droplab: the model in training mode,
one ``loss.backward()`` per draw with the layer drawing its own masks (``torch.rand`` < keep), the
block's gradients copied out. It draws other masks than the two methods above (same law, other
stream), so only its time is compared.

    python bench/noise_sampler.py [n_vectorized] [n_loop] [chunk]
"""

import sys
import time

import torch
from torch import nn

from droplab import data as _data
from droplab.models import FNN
from droplab.nn.laws import bernoulli_noise
from droplab.noise_structure import gradient_samples


def main(n_vec: int = 256, n_loop: int = 16, chunk: int = 16) -> None:
    torch.manual_seed(0)
    try:
        train = _data.load("mnist", "train", n=10000, flat=True)
        x, y, source = train.x.float(), train.y, "MNIST"
    except Exception as err:  # noqa: BLE001 - the bench falls back to random data of the same shape
        x, y, source = torch.randn(10000, 784), torch.randint(0, 10, (10000,)), f"random data ({type(err).__name__})"
    model = FNN([784, 50, 50, 10], dropout={2: 0.2})
    block = ["net.2.weight", "net.2.bias"]
    ce = nn.functional.cross_entropy
    print(f"data: {source}, {tuple(x.shape)}; torch threads: {torch.get_num_threads()}; chunk {chunk}")
    results = {}
    for method in ("vectorized", "loop"):  # warm-up: torch.func's first call sets up its dispatch (≈ 1 s)
        gradient_samples(model, ce, (x, y), 2, block, generator=torch.Generator().manual_seed(1), method=method,
                         chunk=2)
    for method, n in (("vectorized", n_vec), ("loop", n_loop)):
        timings: dict[str, float] = {}
        t0, c0 = time.perf_counter(), time.process_time()
        s = gradient_samples(model, ce, (x, y), n, block, generator=torch.Generator().manual_seed(0), method=method,
                             chunk=chunk, timings=timings)
        wall, cpu = (time.perf_counter() - t0) / n, (time.process_time() - c0) / n
        results[method] = (s.samples, wall, cpu)
        print(f"{method:>10}: wall {1e3 * wall:7.2f} ms/draw, cpu {1e3 * cpu:7.2f} ms/draw  (cpu: masks "
              f"{1e3 * timings['masks_cpu'] / n:.2f}, arithmetic {1e3 * timings['arithmetic_cpu'] / n:.2f})")
    params = dict(model.named_parameters())
    model.train()
    textbook = []
    t0, c0 = time.perf_counter(), time.process_time()
    for _ in range(n_loop):
        model.zero_grad(set_to_none=True)
        ce(model(x), y).backward()
        textbook.append(torch.cat([params[k].grad.reshape(-1) for k in block]))
    wall_t, cpu_t = (time.perf_counter() - t0) / n_loop, (time.process_time() - c0) / n_loop
    print(f"  textbook: wall {1e3 * wall_t:7.2f} ms/draw, cpu {1e3 * cpu_t:7.2f} ms/draw  (autograd per draw, "
          "the layer's own masks)")
    vec, loop = results["vectorized"], results["loop"]
    diff = (vec[0][:n_loop] - loop[0]).abs().max().item()
    scale = loop[0].abs().max().item()
    print(f"speed-up vectorized / loop: {loop[2] / vec[2]:.1f}x cpu time, {loop[1] / vec[1]:.1f}x wall; "
          f"max |difference| over {n_loop} common draws: {diff:.2e} (largest |entry| {scale:.2e})")
    print(f"speed-up vectorized / textbook loop: {cpu_t / vec[2]:.1f}x cpu time, {wall_t / vec[1]:.1f}x wall")
    shape, keep = (chunk * len(x), 50), 0.8
    g = torch.Generator().manual_seed(0)
    masks = {
        "droplab bernoulli_noise": lambda: bernoulli_noise(shape, 1 - keep, generator=g),
        "torch.rand < keep": lambda: (torch.rand(shape, generator=g) < keep).float().div_(keep),
        "torch.bernoulli_": lambda: torch.empty(shape).bernoulli_(keep, generator=g).div_(keep),
    }
    best = {name: _best(fn) for name, fn in masks.items()}
    ref = best["droplab bernoulli_noise"]
    print(f"masks of one chunk ({chunk} draws), cpu ms per draw: " + ", ".join(
        f"{name} {1e3 * t[1] / chunk:.2f} ({t[1] / ref[1]:.1f}x)" for name, t in best.items()))
    # the floor: the vectorized sampler's matrix products at the GEMM rate plus its masks at the generator's rate
    n_ex, k, m, c = len(x), 51, 50, 10
    flops = 2 * n_ex * (k * m + 2 * m * c)       # Σ_i δ_i ã_iᵀ, logits h Vᵀ, δ = P V: per draw
    side = 1024
    a, b = torch.randn(side, side), torch.randn(side, side)
    gemm = _best(lambda: a @ b)
    rate = (2 * side ** 3 / gemm[0], 2 * side ** 3 / gemm[1])
    floor = tuple(flops / r + t / chunk for r, t in zip(rate, ref))
    print(f"floor per draw: {flops / 1e6:.0f} MFLOP at the GEMM rate ({side}² product: {rate[1] / 1e9:.1f} GFLOP/s "
          f"cpu, {rate[0] / 1e9:.1f} wall) + masks = {1e3 * floor[1]:.2f} ms cpu, {1e3 * floor[0]:.2f} ms wall")
    print(f"vectorized / floor: {vec[2] / floor[1]:.2f}x cpu time, {vec[1] / floor[0]:.2f}x wall")


def _best(fn, repeats: int = 5) -> tuple[float, float]:
    """Fastest of ``repeats`` calls: (wall seconds, this process's CPU seconds), each its own minimum."""
    walls, cpus = [], []
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        walls.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)
    return min(walls), min(cpus)


if __name__ == "__main__":
    main(*[int(a) for a in sys.argv[1:]])
