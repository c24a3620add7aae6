"""torch.compile traces the sampling layers in one graph (dynamo + AOT autograd, ``aot_eager`` backend).

The inductor backend compiles the same graph but takes ~50 s on a 2-core machine, over this suite's
budget; ``aot_eager`` checks what can break (graph breaks, mode flags, record/replay bookkeeping).
"""

from __future__ import annotations

import pytest
import torch

from droplab.nn import BernoulliDropout, GaussianDropout, record_masks


@pytest.mark.parametrize("layer", [BernoulliDropout(0.3), GaussianDropout(p=0.3)], ids=["bernoulli", "gaussian"])
def test_compiled_layer_matches_eager_in_both_modes(layer):
    torch._dynamo.reset()
    compiled = torch.compile(layer, backend="aot_eager", fullgraph=True)
    x = torch.randn(16, 8, requires_grad=True)
    layer.train()
    torch.manual_seed(0)
    y_compiled = compiled(x)
    torch.manual_seed(0)
    y_eager = layer(x)
    assert y_compiled.shape == x.shape
    assert torch.allclose(y_compiled, y_eager)
    y_compiled.sum().backward()
    assert x.grad is not None and torch.allclose(x.grad, (y_eager / x).detach(), atol=1e-5)
    layer.eval()
    assert torch.equal(compiled(x), x)
    layer.train()
    with record_masks(torch.nn.Sequential(layer)) as rec:  # the bookkeeping path compiles too
        compiled(x)
    assert len(rec["0"]) == 1
