"""The noise-structure and curvature analyses on CUDA with the experiments' CPU generators (GPU sessions only)."""

import pytest
import torch
from torch import nn

from droplab.landscape import block_hessian, hessian_eigenpairs, hessian_operator
from droplab.models import FNN
from droplab.noise_structure import gradient_samples, power_law_fit

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="no GPU")
CE = nn.functional.cross_entropy
BLOCK = ["net.2.weight", "net.2.bias"]


@pytest.fixture
def setup():
    torch.manual_seed(0)
    model = FNN([8, 6, 5, 3], dropout={2: 0.4}).double().cuda()
    x, y = torch.randn(30, 8, dtype=torch.float64).cuda(), torch.randint(0, 3, (30,)).cuda()
    return model, (x, y)


def test_vectorized_equals_loop_on_cuda(setup):
    model, data = setup
    fused = gradient_samples(model, CE, data, 11, BLOCK, generator=torch.Generator().manual_seed(5), chunk=4)
    loop = gradient_samples(model, CE, data, 11, BLOCK, generator=torch.Generator().manual_seed(5), chunk=4,
                            method="loop")
    assert fused.samples.device.type == "cuda"
    torch.testing.assert_close(fused.samples, loop.samples, rtol=1e-12, atol=1e-14)


def test_eigenpairs_of_a_cuda_operator(setup):
    model, data = setup
    pairs = hessian_eigenpairs(hessian_operator(model, CE, data, BLOCK), 4, generator=torch.Generator().manual_seed(0))
    exact = torch.linalg.eigvalsh(block_hessian(model, CE, data, BLOCK).matrix).flip(0)[:4].cpu()
    assert ((pairs.values - exact).abs() <= 1e-6 * exact.abs()).all()


def test_power_law_fit_takes_cuda_tensors():
    x = torch.logspace(0, 2, 50, dtype=torch.float64).cuda()
    fit = power_law_fit(x, 3 * x ** -1.5, generator=torch.Generator().manual_seed(0))
    assert fit.slope == pytest.approx(-1.5, abs=1e-9)
