"""Exact block Hessian (Kronecker fast path vs torch.func jacrev) and the top-20 eigenpairs, in one run.

The top 20 by droplab's block Lanczos (``hessian_eigenpairs``: full reorthogonalization, thick
restarts, block size b: b HVPs per batched call; stopped by the residual test, as ``eigsh``, or by the
eigenvalue-error bound ``stop="eigenvalue"``) and by scipy's ``eigsh`` (ARPACK) side by side:
HVPs, batched calls, seconds, and the largest relative eigenvalue error against the dense Hessian's.
Then the oracle (the dense eigenvalues stop it): the fewest products any Krylov method needs from a
given start, for random starts and for two informed starts whose cost is added (the K-FAC factors,
the gradient: one forward/backward pass each, counted as one HVP).

The paper's block (ZZX App. A): FNN 784-50-50-10, dropout after hidden layer 2, the 50×50 weight +
bias between the hidden layers (D = 2,550), evaluation-mode cross-entropy on 10,000 examples (random
data of MNIST's shape unless MNIST files are available).

    python bench/hessian.py [n_examples]
"""

import sys
import time

import torch
from scipy.sparse.linalg import eigsh
from torch import nn

from droplab import data as _data
from droplab.landscape import block_hessian, hessian_eigenpairs, hessian_operator
from droplab.models import FNN
from droplab.nn.modes import evaluation


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
    rel = ((kron.matrix - ref.matrix).norm() / ref.matrix.norm()).item()
    top = torch.linalg.eigvalsh(kron.matrix.double())[-20:].flip(0)
    print(f"kron {t_kron:.2f} s, jacrev {t_jac:.2f} s: speed-up {t_jac / t_kron:.1f}x; relative difference {rel:.1e}")
    op = hessian_operator(model, ce, (x, y), block)
    op.hvp_batch(torch.randn(2, op.shape[0]))          # warm-up: torch.func sets up its dispatch on the first call
    print("top-20 eigenpairs, tol 1e-6; error = max relative eigenvalue error against the dense Hessian's:")
    seed = torch.Generator().manual_seed
    runs = [("scipy eigsh (ARPACK)", lambda: _eigsh(op, 20))]
    runs += [(f"droplab b={b}, {stop}", lambda b=b, stop=stop: hessian_eigenpairs(
        op, 20, block_size=b, generator=seed(0), stop=stop).values)
        for stop in ("residual", "eigenvalue") for b in (1, 2, 4)]
    for label, run in runs:
        matvec0, calls0 = op.n_matvec, op.n_calls
        t0 = time.perf_counter()
        values = run()
        seconds = time.perf_counter() - t0
        err = ((values - top).abs() / top.abs()).max().item()
        print(f"  {label:>24}: {op.n_matvec - matvec0:4d} HVPs in {op.n_calls - calls0:4d} calls, "
              f"{seconds:6.2f} s, error {err:.1e}")
    dim = op.shape[0]

    def oracle(starts: list[torch.Tensor], cost: int = 0) -> str:
        counts = sorted(_krylov_oracle(kron.matrix, top, s) + cost for s in starts)
        return f"{counts[0]}–{counts[-1]}, median {(counts[len(counts) // 2 - 1] + counts[len(counts) // 2]) / 2:g}"

    print("fewest products to error 1e-6 over the Krylov space of a start block (oracle: the dense eigenvalues stop it;"
          " seeds 0–9: min–max, median):")
    for b in (1, 2):
        print(f"  random start, block {b}: "
              f"{oracle([torch.randn(dim, b, dtype=torch.float64, generator=seed(s)) for s in range(10)])}")
    print(f"  K-FAC start (+1 HVP for its factors), block 1: "
          f"{oracle([_kfac_start(model, x, seed(s)) for s in range(10)], cost=1)}")
    grads = torch.autograd.grad(ce(_eval_outputs(model, x), y), [model.net[2].weight, model.net[2].bias])
    gradient = torch.cat([g.flatten() for g in grads]).double().unsqueeze(1)
    print(f"  gradient start (+1 HVP for its backward pass), block 1: {_krylov_oracle(kron.matrix, top, gradient) + 1}")


def _eval_outputs(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The model's evaluation-mode outputs (the analysed loss's), its modes restored."""
    with evaluation(model):
        return model(x)


def _kfac_start(model: FNN, x: torch.Tensor, generator: torch.Generator, k: int = 20) -> torch.Tensor:
    """Sum of the top-k eigenvectors of K-FAC's G ⊗ A for the block net.2 (weight, bias), from one forward/backward.

    A = E[ã ãᵀ] (ã = [layer input, 1]) and G = E[g gᵀ] with g = ∂ℓ(f, ŷ)/∂z at labels ŷ drawn from the
    model's own softmax, so E_ŷ[g gᵀ] is the output-space GGN, which equals ∂²ℓ/∂z² here (ReLU and the
    last layer are piecewise linear in z). The eigenvectors of G ⊗ A are w_i ⊗ u_j (eigenvalue γ_i α_j).
    """
    state = {}

    def hook(_module, args, out):
        state["a"], state["z"] = args[0].detach(), out
        return out

    handle = model.net[2].register_forward_hook(hook)
    try:
        out = _eval_outputs(model, x)
    finally:
        handle.remove()
    labels = torch.multinomial(torch.softmax(out.detach(), 1), 1, generator=generator).flatten()
    g = torch.autograd.grad(nn.functional.cross_entropy(out, labels, reduction="sum"), state["z"])[0].double()
    a = torch.cat([state["a"].double(), torch.ones(len(x), 1, dtype=torch.float64)], 1)
    alpha, u = torch.linalg.eigh(a.T @ a / len(x))
    gamma, w = torch.linalg.eigh(g.T @ g / len(x))
    best = torch.argsort((gamma.unsqueeze(1) * alpha.unsqueeze(0)).flatten(), descending=True)[:k]
    rows, cols = (best // len(alpha)).tolist(), (best % len(alpha)).tolist()
    start = sum(torch.outer(w[:, i], u[:, j]) for i, j in zip(rows, cols))
    return torch.cat([start[:, :-1].flatten(), start[:, -1]]).unsqueeze(1)   # ordered [W.flatten(), b]


def _krylov_oracle(matrix: torch.Tensor, top: torch.Tensor, start: torch.Tensor) -> int:
    """Products after which the Rayleigh–Ritz values of the block Krylov space of ``start`` (D, b) first
    reach relative error 1e-6.

    The Ritz values of the whole Krylov space (no restart, full reorthogonalization) are the best any
    Krylov method can return from these products, so no stopping rule stops earlier at this accuracy.
    """
    k, b = len(top), start.shape[1]
    q, _ = torch.linalg.qr(start)
    basis, image = q, (matrix @ q.to(matrix.dtype)).double()
    while basis.shape[1] < matrix.shape[0]:
        ritz = torch.linalg.eigvalsh(0.5 * (basis.T @ image + image.T @ basis)).flip(0)
        if len(ritz) >= k and ((ritz[:k] - top).abs() <= 1e-6 * top.abs()).all():
            break
        w = image[:, -b:] - basis @ (basis.T @ image[:, -b:])
        q, _ = torch.linalg.qr(w - basis @ (basis.T @ w))
        basis, image = torch.cat([basis, q], 1), torch.cat([image, (matrix @ q.to(matrix.dtype)).double()], 1)
    return basis.shape[1]


def _eigsh(op, k: int) -> torch.Tensor:
    """scipy's ``eigsh`` (ARPACK, implicit restarts, one HVP per call), the reference droplab used before."""
    v0 = torch.randn(op.shape[0], generator=torch.Generator().manual_seed(0), dtype=torch.float64).numpy()
    values = eigsh(op, k=k, which="LA", tol=1e-6, v0=v0, return_eigenvectors=False)
    return torch.from_numpy(values.copy()).sort(descending=True).values

if __name__ == "__main__":
    main(*[int(a) for a in sys.argv[1:]])
