"""Exact block Hessian: Kronecker fast path vs torch.func jacrev, and Lanczos top-20, in one run.

The paper's block (ZZX App. A): FNN 784-50-50-10, dropout after hidden layer 2, the 50×50 weight +
bias between the hidden layers (D = 2,550), evaluation-mode cross-entropy on 10,000 examples (random
data of MNIST's shape unless MNIST files are available).

    python bench/hessian.py [n_examples]
"""

import sys
import time

import torch
from torch import nn

from droplab import data as _data
from droplab.landscape import block_hessian, hessian_eigenpairs, hessian_operator
from droplab.models import FNN


def main(n: int = 10000) -> None:
    torch.manual_seed(0)
    try:
        train = _data.load("mnist", "train", n=n, flat=True)
        x, y, source = train.x.float(), train.y, "MNIST"
    except Exception as err:  # noqa: BLE001 - the bench falls back to random data of the same shape
        x, y, source = torch.randn(n, 784), torch.randint(0, 10, (n,)), f"random data ({type(err).__name__})"
    model = FNN([784, 50, 50, 10], dropout={2: 0.2})
    block, ce = ["net.2.weight", "net.2.bias"], nn.functional.cross_entropy
    print(f"data: {source}, {tuple(x.shape)}; torch threads: {torch.get_num_threads()}")
    t0 = time.perf_counter()
    kron = block_hessian(model, ce, (x, y), block, method="kron", chunk=2000)
    t_kron = time.perf_counter() - t0
    t0 = time.perf_counter()
    ref = block_hessian(model, ce, (x, y), block, method="jacrev", jacrev_chunk=64)
    t_jac = time.perf_counter() - t0
    t0 = time.perf_counter()
    op = hessian_operator(model, ce, (x, y), block)
    pairs = hessian_eigenpairs(op, 20, generator=torch.Generator().manual_seed(0))
    t_lan = time.perf_counter() - t0
    rel = ((kron.matrix - ref.matrix).norm() / ref.matrix.norm()).item()
    top = torch.linalg.eigvalsh(kron.matrix.double())[-20:].flip(0)
    print(f"kron {t_kron:.2f} s, jacrev {t_jac:.2f} s: speed-up {t_jac / t_kron:.1f}x; relative difference {rel:.1e}")
    print(f"Lanczos top-20: {t_lan:.2f} s, {pairs.n_matvec} HVPs; max relative eigenvalue error "
          f"{((pairs.values - top).abs() / top.abs()).max().item():.1e}")


if __name__ == "__main__":
    main(*[int(a) for a in sys.argv[1:]])
