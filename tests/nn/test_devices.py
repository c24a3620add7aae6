"""Every noise layer draws on its input's device, with a CPU generator too (experiments hold CPU ones).

``meta`` runs everywhere (shapes and devices, no values); ``cuda`` where a GPU is present.
"""

from __future__ import annotations

import pytest
import torch

from droplab.nn import mc_mode
from droplab.nn.laws import device_generator

DEVICES = ["cpu", "meta",
           pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="no GPU"))]
VALUE_CHECKED = {"spiking", "spiking-connection"}  # validate their activities in [0, 1] by value


@pytest.mark.parametrize("device", DEVICES)
def test_layer_samples_on_the_input_device_with_a_cpu_generator(case, device):
    if device == "meta" and case.id in VALUE_CHECKED:
        pytest.skip("the layer validates its input's values, which meta tensors do not hold")
    layer = case.make(torch.Generator().manual_seed(0)).to(device)
    x = case.x().to(device)
    with mc_mode(layer):
        y = layer(x)
    reference = case.make(torch.Generator().manual_seed(0))(case.x())
    assert y.device.type == torch.device(device).type
    assert y.shape == reference.shape and y.dtype == reference.dtype


@pytest.mark.parametrize("device", DEVICES)
def test_device_generator_keeps_a_usable_generator(device):
    cpu = torch.Generator().manual_seed(0)
    assert device_generator(None, device) is None
    if device in ("cpu", "meta"):
        assert device_generator(cpu, device) is cpu
        return
    first = device_generator(torch.Generator().manual_seed(0), device)     # seeded by one draw from the CPU one
    second = device_generator(torch.Generator().manual_seed(0), device)
    assert first.device.type == device
    assert torch.equal(torch.rand(5, device=device, generator=first), torch.rand(5, device=device, generator=second))
