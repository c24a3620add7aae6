"""Parameter blocks looked up by module type and position (ZZX App. A's blocks)."""

from torch import nn

from droplab._params import layer_block
from droplab.models import FNN, ResNet20


def test_fnn_hidden_to_hidden_layer_by_name():
    net = FNN([6, 5, 4, 3], dropout={1: 0.2, 2: 0.5})  # noise layers shift Sequential positions
    names = layer_block(net, nn.Linear, 1)
    params = dict(net.named_parameters())
    assert [tuple(params[k].shape) for k in names] == [(4, 5), (4,)]
    assert params[names[0]] is net.linears[1].weight


def test_resnet_first_block_convolution_without_bias():
    net = ResNet20(10, in_channels=1, width=0.25)
    names = layer_block(net, nn.Conv2d, 1, bias=False)
    convs = [m for m in net.modules() if isinstance(m, nn.Conv2d)]
    assert len(names) == 1 and dict(net.named_parameters())[names[0]] is convs[1].weight


def test_index_out_of_range_is_one_line(raises_one_line):
    raises_one_line(lambda: layer_block(FNN([3, 2]), nn.Linear, 1), "index")
