"""Every model runs where its parameters are: forward shapes on the ``meta`` device (and CUDA if present)."""

from __future__ import annotations

import pytest
import torch

from droplab.models import FNN, VAE, VGG9, AllCNN, ResNet20, Transformer

DEVICES = ["meta", pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="no GPU"))]

MODELS = [  # (id, factory, input factory)
    ("fnn", lambda: FNN([6, 5, 4, 3], dropout={1: 0.3, 2: 0.2}), lambda: torch.randn(4, 6)),
    ("fnn-gaussian", lambda: FNN([6, 5, 3], dropout=0.3, noise="gaussian"), lambda: torch.randn(4, 6)),
    ("vgg9", lambda: VGG9(n_classes=7, in_channels=2, image_size=8, width=0.125, dropout=0.3),
     lambda: torch.randn(4, 2, 8, 8)),
    ("resnet20", lambda: ResNet20(n_classes=5, in_channels=2, width=0.25, dropout=0.3),
     lambda: torch.randn(4, 2, 8, 8)),
    ("allcnn", lambda: AllCNN(n_classes=5, in_channels=2, dropout=0.3), lambda: torch.randn(4, 2, 8, 8)),
    ("vae", lambda: VAE(12, hidden=8, latent=3), lambda: torch.rand(4, 12)),
    ("transformer", lambda: Transformer(src_vocab=11, tgt_vocab=13, max_len=6, d_model=8, d_k=4, d_v=4, d_ff=16,
                                        heads=2, layers=2, dropout=0.1),
     lambda: torch.randint(1, 11, (3, 2, 6))),          # (N, [source, target], L)
]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize(("make", "inputs"), [m[1:] for m in MODELS], ids=[m[0] for m in MODELS])
def test_model_forward_stays_on_its_device(make, inputs, device):
    torch.manual_seed(0)
    model, x = make(), inputs()
    reference = model(x)                       # training mode: the noise layers sample
    out = model.to(device)(x.to(device))
    for ref, got in zip(_tensors(reference), _tensors(out), strict=True):
        assert got.device.type == torch.device(device).type and got.shape == ref.shape


def _tensors(out) -> list[torch.Tensor]:
    return [out] if isinstance(out, torch.Tensor) else [t for t in out if isinstance(t, torch.Tensor)]
