import pytest
import torch

from synsample import models
from synsample.errors import ConfigError


@pytest.mark.parametrize("name,shape,flat", [("mlp", (1, 28, 28), None), ("conv", (1, 28, 28),
                                                                         21632),
                                             ("cifar-conv", (3, 32, 32), 2048)])
def test_architectures_take_uint8_images(name, shape, flat):
    net = models.build(name, seed=0).eval()
    x = torch.randint(0, 256, (2, *shape), dtype=torch.uint8)
    assert net(x).shape == (2, 10)
    assert isinstance(net[0], models.ScaleInput)
    if flat:
        dense = [m for m in net if isinstance(m, torch.nn.Linear)]
        assert dense[0].in_features == flat


def test_build_is_seeded_and_glorot_weights_lie_inside_the_bound():
    a, b = models.build("mlp", seed=1), models.build("mlp", seed=1)
    assert torch.equal(a[2].weight, b[2].weight)
    assert a[2].weight.abs().max() < 0.99
    u = models.build("mlp", seed=1, init="uniform")
    assert 0.9 < u[2].weight.abs().max() <= 0.99


def test_bad_names_and_shapes():
    with pytest.raises(ConfigError, match="unknown architecture 'lenet'; available: mlp"):
        models.build("lenet")
    with pytest.raises(ConfigError, match="unknown initialisation"):
        models.build("mlp", init="he")
    with pytest.raises(ConfigError, match="input shape"):
        models.build("conv", input_shape=(28, 28))
