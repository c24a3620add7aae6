"""Curvature of a parameter block: exact Hessian vs finite differences, Kronecker path vs jacrev,
Lanczos vs the exact spectrum, Hutchinson within its standard error, GGN vs Hessian, loss semantics."""

import pytest
import torch
from torch import nn

from droplab.landscape import (
    block_hessian,
    expected_hessian,
    flatten_block,
    ggn,
    hessian_eigenpairs,
    hessian_operator,
    hutchinson_trace,
    loss_masks,
)
from droplab.models import FNN
from droplab.nn.modes import block_loss

CE = nn.functional.cross_entropy
BLOCK = ["net.2.weight", "net.2.bias"]


@pytest.fixture
def setup():
    torch.manual_seed(0)
    model = FNN([6, 5, 4, 3], dropout={2: 0.3}).double()
    x = torch.randn(20, 6, dtype=torch.float64)
    y = torch.randint(0, 3, (20,))
    return model, (x, y)


@pytest.mark.parametrize("loss", ["eval", "fixed-mask", "expected"])
def test_kron_equals_jacrev(setup, loss):
    model, data = setup
    masks = loss_masks(model, data[0], "expected", n_masks=2, generator=torch.Generator().manual_seed(3))[0]
    kw = dict(loss=loss, masks=masks if loss == "fixed-mask" else None, n_masks=3)
    a = block_hessian(model, CE, data, BLOCK, method="kron", chunk=7, generator=torch.Generator().manual_seed(1), **kw)
    b = block_hessian(model, CE, data, BLOCK, method="jacrev", generator=torch.Generator().manual_seed(1), **kw)
    assert (a.method, b.method, a.loss) == ("kron", "jacrev", loss)
    torch.testing.assert_close(a.matrix, b.matrix, rtol=1e-10, atol=1e-12)
    assert (a.stderr is None) == (loss != "expected")


def test_hessian_equals_finite_differences_of_gradients(setup):
    model, (x, y) = setup
    h = block_hessian(model, CE, (x, y), BLOCK).matrix
    f = block_loss(model, CE, x, y, BLOCK, None)
    theta = flatten_block(model, BLOCK)
    eps = 1e-6  # central differences of exact gradients: error O(eps²·|∇³L|) ≈ 1e-12, rounding ≈ 1e-16/eps
    cols = []
    for i in range(len(theta)):
        e = torch.zeros_like(theta)
        e[i] = eps
        cols.append((torch.func.grad(f)(theta + e) - torch.func.grad(f)(theta - e)) / (2 * eps))
    torch.testing.assert_close(h, torch.stack(cols, 1), rtol=1e-6, atol=1e-8)


def test_model_modes_restored(setup):
    model, data = setup
    model.train()
    block_hessian(model, CE, data, BLOCK)
    assert all(m.training for m in model.modules())


def test_lanczos_top_k_equals_exact(setup):
    model, data = setup
    h = block_hessian(model, CE, data, BLOCK).matrix
    op = hessian_operator(model, CE, data, BLOCK)
    pairs = hessian_eigenpairs(op, 4, generator=torch.Generator().manual_seed(0), tol=1e-10)
    exact = torch.linalg.eigh(h)
    torch.testing.assert_close(pairs.values, exact.eigenvalues[-4:].flip(0), rtol=1e-7, atol=1e-10)
    overlap = (pairs.vectors * exact.eigenvectors[:, -4:].flip(1)).sum(0).abs()
    torch.testing.assert_close(overlap, torch.ones(4, dtype=overlap.dtype), rtol=0, atol=1e-6)
    assert pairs.n_matvec > 0


def test_hutchinson_within_standard_error(setup):
    model, data = setup
    h = block_hessian(model, CE, data, BLOCK).matrix
    est = hutchinson_trace(hessian_operator(model, CE, data, BLOCK), 300, torch.Generator().manual_seed(0))
    # unbiased estimator, CLT over 300 probes: |error| < 5 SE fails with probability < 1e-6
    assert abs(est.value - float(h.trace())) < 5 * est.stderr


def test_expected_hessian_standard_error_covers_enumeration():
    torch.manual_seed(1)
    model = FNN([3, 4, 2], dropout={1: 0.5}).double()
    x, y = torch.randn(6, 3, dtype=torch.float64), torch.randint(0, 2, (6,))
    est = expected_hessian(model, CE, (x, y), ["net.0.weight"], n_masks=400, generator=torch.Generator().manual_seed(0))
    # exact expectation over shared masks (2^4): per-example masks give the same mean (linearity)
    exact = torch.zeros_like(est.matrix)
    for bits in range(16):
        keep = torch.tensor([(bits >> j) & 1 for j in range(4)], dtype=torch.float64)
        mask = {"net.2": (keep * 2).expand(6, 4)}
        exact += 0.5 ** 4 * block_hessian(model, CE, (x, y), ["net.0.weight"], loss="fixed-mask", masks=mask).matrix
    z = ((est.matrix - exact).abs() / est.stderr.clamp_min(1e-12))[est.stderr > 1e-10]
    assert float(z.max()) < 6  # 144 entries, each |z| > 6 with probability ~2e-9 under the CLT


def test_ggn_equals_hessian_for_last_layer(setup):
    model, data = setup
    last = ["net.5.weight", "net.5.bias"]
    torch.testing.assert_close(ggn(model, CE, data, last, chunk=7).matrix, block_hessian(model, CE, data, last).matrix)
    g = ggn(model, CE, data, BLOCK).matrix
    assert float(torch.linalg.eigvalsh(g)[0]) > -1e-12  # PSD for a convex loss


def test_bad_input(setup):
    model, data = setup
    with pytest.raises(ValueError, match="params must be parameters of model"):
        block_hessian(model, CE, data, [torch.zeros(3, requires_grad=True)])
    with pytest.raises(ValueError, match="hessian_operator"):
        block_hessian(model, CE, data, BLOCK, max_entries=100)
    with pytest.raises(ValueError, match="masks must be given"):
        block_hessian(model, CE, data, BLOCK, loss="fixed-mask")
    with pytest.raises(ValueError, match="loss must be one of"):
        block_hessian(model, CE, data, BLOCK, loss="train")
    with pytest.raises(ValueError, match="method 'kron'"):
        block_hessian(model, CE, data, ["net.0.bias"], method="kron")


def test_the_operator_is_a_scipy_linear_operator(setup):
    # scipy's own solvers take it as is (what the dropped curvlinops extra would have offered):
    # conjugate gradients on H + I solves the dense system, eigsh finds the dense top eigenvalue.
    from scipy.sparse.linalg import LinearOperator, aslinearoperator, cg, eigsh

    model, data = setup
    op = hessian_operator(model, CE, data, BLOCK)
    h = block_hessian(model, CE, data, BLOCK).matrix.numpy()
    shifted = op + aslinearoperator(torch.eye(op.shape[0], dtype=torch.float64).numpy())
    assert isinstance(op, LinearOperator) and isinstance(shifted, LinearOperator)
    b = torch.randn(op.shape[0], generator=torch.Generator().manual_seed(0), dtype=torch.float64).numpy()
    solution, info = cg(shifted, b, rtol=1e-12, atol=0.0, maxiter=500)
    want = torch.linalg.solve(torch.from_numpy(h) + torch.eye(op.shape[0], dtype=torch.float64), torch.from_numpy(b))
    assert info == 0
    torch.testing.assert_close(torch.from_numpy(solution), want, rtol=1e-8, atol=1e-10)
    top = eigsh(op, k=1, which="LA", v0=b, tol=1e-10)[0][0]
    assert abs(top - float(torch.linalg.eigvalsh(torch.from_numpy(h))[-1])) < 1e-8
