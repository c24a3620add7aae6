"""Throughput of the Monte Carlo ensemble sampler against a plain matmul chain of the same shapes.

    .venv/bin/python bench/ensemble_montecarlo.py                       # CPU-sized default (< 2 min)
    .venv/bin/python bench/ensemble_montecarlo.py --widths 784,1200,1200,1200,1200,10 --samples 10000 --inputs 10
                                                                        # the paper's setting (Baldi & Sadowski §9.5)

Everything is measured in one run, on one device: (1) ``droplab.ensemble.sample_ensemble`` recording
every hidden layer's logistic activity with streaming mean/variance/log-G statistics; (2) the bare
dropout forward pass in Monte Carlo mode (masks drawn, no statistics); (3) a plain chain of matmuls
``X @ W_k^T`` with the same row count and widths (the roofline the sampler is measured against).
GFLOP/s counts the matmul work ``2 · rows · Σ in·out``; the ratios are sampler / matmul chain, and
last against the machine's fp32 peak as a large square matmul (2048³) reaches it in the same run.
"""

from __future__ import annotations

import argparse
import time

import torch

from droplab.ensemble import sample_ensemble
from droplab.models import FNN
from droplab.nn import mc_mode


def _time(fn, repeat: int) -> float:
    fn()  # warm-up
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - t)
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--widths", default="784,256,256,256,256,10")
    ap.add_argument("--samples", type=int, default=1000, help="masks per input (K)")
    ap.add_argument("--inputs", type=int, default=10, help="inputs (N)")
    ap.add_argument("--chunk", type=int, default=None, help="masks per forward pass (default: sampler's)")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    widths = [int(w) for w in args.widths.split(",")]
    dev = torch.device(args.device)
    torch.manual_seed(0)
    n_hidden = len(widths) - 2
    model = FNN(widths, "logistic", dropout={0: 0.2, **{k: 0.5 for k in range(1, n_hidden + 1)}}).to(dev).eval()
    x = torch.rand(args.inputs, widths[0], device=dev)
    hidden = [str(i) for i, m in enumerate(model.net) if type(m).__name__ == "Logistic"]
    modules = [f"net.{i}" for i in hidden]
    rows = args.samples * args.inputs
    chunk = args.chunk or max(1, 4096 // args.inputs)
    flops = 2.0 * rows * sum(a * b for a, b in zip(widths[:-1], widths[1:]))
    g = torch.Generator(device=dev).manual_seed(0)

    def sampler() -> None:
        sample_ensemble(model, x, modules, args.samples, generator=g, chunk_size=chunk)

    xb = x.unsqueeze(0).expand(chunk, *x.shape).reshape(chunk * args.inputs, -1)
    n_chunks = -(-args.samples // chunk)

    def forward_only() -> None:
        with torch.no_grad(), mc_mode(model):
            for _ in range(n_chunks):
                model(xb)

    weights = [lin.weight.detach() for lin in model.linears]

    def matmuls() -> None:
        with torch.no_grad():
            for _ in range(n_chunks):
                h = xb
                for w in weights:
                    h = h @ w.T

    square = torch.randn(2048, 2048, device=dev)
    t_peak = _time(lambda: square @ square, max(args.repeat, 5))
    t_mm = _time(matmuls, args.repeat)
    t_fw = _time(forward_only, args.repeat)
    t_mc = _time(sampler, args.repeat)
    mm_flops = 2.0 * n_chunks * chunk * args.inputs * sum(a * b for a, b in zip(widths[:-1], widths[1:]))
    print(f"device {dev}, threads {torch.get_num_threads()}, widths {widths}, K={args.samples}, N={args.inputs}, "
          f"chunk={chunk} masks ({chunk * args.inputs} rows)")
    print(f"plain matmul chain   {t_mm:8.3f} s  {mm_flops / t_mm / 1e9:8.1f} GFLOP/s")
    print(f"MC forward, no stats {t_fw:8.3f} s  {mm_flops / t_fw / 1e9:8.1f} GFLOP/s  ratio {t_mm / t_fw:.2f}")
    ratio = flops / t_mc / (mm_flops / t_mm)
    print(f"sample_ensemble      {t_mc:8.3f} s  {flops / t_mc / 1e9:8.1f} GFLOP/s  ratio {ratio:.2f}")
    peak = 2.0 * 2048 ** 3 / t_peak
    print(f"square matmul peak (2048³) {peak / 1e9:.1f} GFLOP/s: MC forward {mm_flops / t_fw / peak:.2f}, "
          f"sample_ensemble {flops / t_mc / peak:.2f} of it")


if __name__ == "__main__":
    main()
