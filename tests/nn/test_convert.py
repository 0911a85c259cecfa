import pytest
import torch
from torch import nn

from synsample import models
from synsample.errors import ConfigError
from synsample.methods import scann
from synsample.nn import CoinFlipLinear


def test_convert_samples_only_dense_layers_and_splits_the_conv_prefix():
    net = models.build("conv", seed=0)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, nn.Linear):
                m.weight.clamp_(-1, 1)
    sto = scann.convert(net)
    assert sto.sampled_names == ["5", "8"]
    assert not any(isinstance(m, CoinFlipLinear) for m in sto.prefix_net.modules())
    assert any(isinstance(m, nn.Conv2d) for m in sto.prefix_net.modules())
    assert isinstance(net[5], nn.Linear)  # the original is untouched


def test_exclude_by_name_and_by_type():
    net = models.build("mlp", seed=0)
    sto = scann.convert(net, exclude=["5"])
    assert sto.sampled_names == ["2"]
    with pytest.raises(ConfigError, match="no layer of the network would be sampled"):
        scann.convert(net, exclude=(nn.Linear,))  # a model that samples nothing is refused
    with pytest.raises(ConfigError, match="the include filter Conv2d matches no module"):
        scann.convert(net, include=(nn.Conv2d,))
    with pytest.raises(ConfigError, match="filters take"):
        scann.convert(net, include=(3,))


def test_prefix_runs_once_per_block_not_once_per_sample():
    from synsample import engine

    net = models.build("conv", input_shape=(1, 8, 8), seed=0)
    sto = scann.convert(net)
    calls = []
    sto.prefix_net[1].register_forward_hook(lambda *a: calls.append(1))  # the conv layer
    x = torch.randint(0, 256, (10, 1, 8, 8), dtype=torch.uint8)
    engine.predict(sto, x, samples=40, seed=0, batch_size=5, sample_chunk=4)
    assert len(calls) == 2  # two item blocks, 40 samples each


def test_non_sequential_models_are_converted_too():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = nn.Linear(4, 3)
            self.b = nn.Linear(3, 2)

        def forward(self, x):
            return self.b(torch.relu(self.a(x.float())))

    net = Net()
    with torch.no_grad():
        for p in net.parameters():
            p.clamp_(-1, 1)
    sto = scann.convert(net)
    out = sto(torch.ones(5, 4), n=3)
    assert out.shape == (3, 5, 2)
