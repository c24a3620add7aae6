"""VGG-9, ResNet-20 and the transformer outside the smoke runs: shapes, dropout active in training and
the identity at evaluation, state_dict round trips, and the one dropout convention (``dropout`` +
``noise``) across models."""

from __future__ import annotations

import io

import pytest
import torch
from torch import nn

from droplab.models import FNN, VGG9, AllCNN, ResNet20, Transformer, size_sweep_fnn
from droplab.nn import (
    NOISE_KINDS,
    BernoulliDropout,
    GaussianDropout,
    InformationDropout,
    VariationalDropout,
    noise_layers,
)


def _vgg(**kw):
    return VGG9(n_classes=7, in_channels=2, image_size=8, width=0.125, **kw)


def _resnet(**kw):
    return ResNet20(n_classes=5, in_channels=2, width=0.25, **kw)


def _transformer(**kw):
    return Transformer(src_vocab=11, tgt_vocab=13, max_len=6, d_model=8, d_k=4, d_v=4, d_ff=16, heads=2, layers=2,
                       **kw)


def _images(n=4):
    return torch.randn(n, 2, 8, 8, generator=torch.Generator().manual_seed(1))


def _tokens(n=3):
    return torch.randint(1, 11, (n, 2, 6), generator=torch.Generator().manual_seed(2))


CASES = [
    # (id, build, input, output shape, noise layers at dropout > 0)
    ("vgg9", _vgg, _images, (4, 7), 3),             # one after each of the three pooling layers
    ("resnet20", _resnet, _images, (4, 5), 18),     # two per basic block, nine blocks
    ("transformer", _transformer, _tokens, (3, 6, 13), 2 + 2 * 2 + 2 * 3),  # embeddings + 2/enc + 3/dec sub-layers
]


@pytest.mark.parametrize("name, build, data, shape, n_layers", CASES, ids=[c[0] for c in CASES])
def test_shapes_and_noise_positions(name, build, data, shape, n_layers):
    torch.manual_seed(0)
    model = build(dropout=0.3)
    assert model(data()).shape == shape
    layers = noise_layers(model)
    assert len(layers) == n_layers and all(isinstance(m, BernoulliDropout) and m.p == 0.3 for m in layers)
    assert noise_layers(build()) == []  # dropout = 0: no noise layers


@pytest.mark.parametrize("name, build, data, shape, n_layers", CASES, ids=[c[0] for c in CASES])
def test_dropout_samples_in_training_and_is_the_identity_at_evaluation(name, build, data, shape, n_layers):
    """Evaluation: the net with p = 0.5 equals the same weights with identities in place of the noise layers
    (inverted scaling); training: two passes differ (fresh masks) and differ from the noiseless net."""
    torch.manual_seed(0)
    noisy = build(dropout=0.5)
    plain = build(dropout=0.5, noise=lambda p: nn.Identity())
    plain.load_state_dict(noisy.state_dict())
    x = data()
    noisy.eval(), plain.eval()
    with torch.no_grad():
        assert torch.equal(noisy(x), plain(x))
        noisy.train(), plain.train()
        a, b, reference = noisy(x), noisy(x), plain(x)
    assert not torch.allclose(a, b) and not torch.allclose(a, reference)


@pytest.mark.parametrize("name, build, data, shape, n_layers", CASES, ids=[c[0] for c in CASES])
def test_state_dict_round_trip(name, build, data, shape, n_layers):
    torch.manual_seed(0)
    source = build(dropout=0.2)
    source.train()(data())  # move the batch-norm running statistics away from their initial values
    buffer = io.BytesIO()
    torch.save(source.state_dict(), buffer)
    buffer.seek(0)
    torch.manual_seed(1)
    target = build(dropout=0.2)
    target.load_state_dict(torch.load(buffer, weights_only=True))
    source.eval(), target.eval()
    with torch.no_grad():
        assert torch.equal(source(data()), target(data()))


@pytest.mark.parametrize("build", [_vgg, _resnet, _transformer], ids=["vgg9", "resnet20", "transformer"])
def test_noise_by_name_or_factory(build):
    gauss = noise_layers(build(dropout=0.2, noise="gaussian"))
    assert gauss and all(isinstance(m, GaussianDropout) and m.sigma == pytest.approx((0.2 / 0.8) ** 0.5)
                         for m in gauss)
    torch_dropout = [m for m in build(dropout=0.2, noise=nn.Dropout).modules() if isinstance(m, nn.Dropout)]
    assert torch_dropout and all(m.p == 0.2 for m in torch_dropout)
    assert noise_layers(build(dropout=0.2, noise="none")) == []


def test_kinds_without_a_drop_probability_know_their_units():
    """Variational and Information Dropout need the unit count: the model hands each position's channels."""
    resnet = _resnet(noise="variational")  # placed although dropout = 0: the kind has no drop probability
    assert [m.log_alpha.shape[0] for m in noise_layers(resnet)] == [4] * 6 + [8] * 6 + [16] * 6
    assert all(isinstance(m, VariationalDropout) for m in noise_layers(resnet))
    vgg = _vgg(noise="information")
    assert [m.features for m in noise_layers(vgg)] == [8, 16, 32]
    assert _vgg(noise="information")(_images()).shape == (4, 7)
    fnn = FNN([6, 5, 4, 3], "softplus", noise="information")
    assert [(m.features, m.prior) for m in noise_layers(fnn)] == [(5, "log-normal"), (4, "log-normal")]


def test_every_model_takes_the_same_two_arguments():
    """``dropout`` = drop probability, ``noise`` = kind: the same layer wherever the architecture puts it."""
    models = [FNN([64, 8, 10], dropout=0.25), _vgg(dropout=0.25), _resnet(dropout=0.25), _transformer(dropout=0.25),
              AllCNN(in_channels=1, width=0.05, dropout=0.25), size_sweep_fnn(64, 8, dropout=0.25)]
    for model in models:
        layers = noise_layers(model)
        assert layers and all(type(m) is BernoulliDropout and m.p == 0.25 for m in layers), type(model).__name__
    assert all("none" in NOISE_KINDS and kind in NOISE_KINDS for kind in ("bernoulli", "gaussian", "information"))


@pytest.mark.parametrize("build, kwargs, match", [
    (_vgg, {"dropout": 1.0}, r"dropout must be in \[0, 1\)"),
    (_resnet, {"dropout": -0.1}, r"dropout must be in \[0, 1\)"),
    (_transformer, {"dropout": 0.1, "noise": "bernouli"}, "noise: dropout kind must be one of"),
    (_transformer, {"noise": "information"}, r"activation \(Information Dropout's prior follows it\)"),
    (lambda **kw: FNN([4, 3, 2], **kw), {"dropout": 0.5, "noise": 3}, "noise: dropout kind must be one of"),
    (lambda **kw: AllCNN(**kw), {"dropout": 1.5}, r"dropout must be in \[0, 1\)"),
], ids=["vgg-p1", "resnet-negative", "transformer-kind", "transformer-information", "fnn-kind", "allcnn-p"])
def test_bad_dropout_arguments(build, kwargs, match):
    with pytest.raises(ValueError, match=match):
        build(**kwargs)


def test_information_layers_are_spatial_in_cnns():
    layer = noise_layers(_vgg(noise="information"))[0]
    assert isinstance(layer, InformationDropout) and layer.conv
