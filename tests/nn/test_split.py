"""The traced split of networks with a custom forward (synsample.nn.split)."""

import pytest
import torch
from torch import nn

from synsample import engine
from synsample.errors import ConfigError
from synsample.methods import scann
from synsample.nn import CoinFlipLinear, convert
from synsample.nn.sampling import SamplingContext
from synsample.nn.split import TracedBody, TracedPrefix


class ResidualCNN(nn.Module):
    """conv, BatchNorm, max-pool, dropout, then a residual dense block (one branch crosses two
    sampled layers, the other skips them) and a final Linear; 8 x 8 uint8 images."""

    def __init__(self, skip: bool = True, branch: bool = False) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.bn = nn.BatchNorm2d(4)
        self.pool = nn.MaxPool2d(2)
        self.drop = nn.Dropout(0.25)
        self.fc1 = nn.Linear(64, 32)
        self.fc2 = nn.Linear(32, 64)
        self.out = nn.Linear(64, 5)
        self.skip, self.branch = skip, branch
        with torch.no_grad():
            self.bn.running_mean.uniform_(-0.1, 0.1)
            self.bn.running_var.uniform_(0.5, 1.5)
            for m in (self.fc1, self.fc2, self.out):
                m.weight.uniform_(-1, 1)
        self.eval()

    def forward(self, x):
        f = self.pool(torch.relu(self.bn(self.conv(x.float() / 255))))
        f = torch.flatten(f, 1)
        y = self.fc2(torch.relu(self.fc1(self.drop(f))))
        if self.branch and x.sum() > 0:  # data-dependent: torch.fx cannot trace it
            y = y * 1.0
        if self.skip:
            y = y + f  # the skip: f is per item, y per item and pass
        return self.out(torch.relu(y))


def _images(n: int = 12) -> torch.Tensor:
    return torch.randint(0, 256, (n, 1, 8, 8), dtype=torch.uint8,
                         generator=torch.Generator().manual_seed(1))


def _unsplit(net: nn.Module, monkeypatch):
    """The network converted without a split: the whole network runs for every pass."""
    def refuse(model):
        raise RuntimeError("forced fallback")

    with monkeypatch.context() as m:
        m.setattr(convert, "trace_split", refuse)
        with pytest.warns(UserWarning, match="forced fallback"):
            return scann.convert(net)


@pytest.mark.parametrize("mode", ["shared", "independent"])
def test_traced_split_gives_the_votes_of_the_unsplit_network(mode, monkeypatch):
    net = ResidualCNN()
    sto = scann.convert(net)
    assert isinstance(sto.prefix_net, TracedPrefix) and isinstance(sto.body, TracedBody)
    assert any(isinstance(m, nn.Conv2d) for m in sto.prefix_net.modules())
    assert not any(isinstance(m, nn.Conv2d) for m in sto.body.modules())
    x = _images()
    split = engine.predict(sto, x, samples=40, seed=3, mode=mode, sample_chunk=8)
    # the unsplit network cannot add a per-item value to a per-pass one: one pass per call
    whole = engine.predict(_unsplit(net, monkeypatch), x, samples=40, seed=3, mode=mode,
                           sample_chunk=1)
    assert torch.equal(split.votes, whole.votes)
    assert torch.allclose(split.mean_probs, whole.mean_probs, atol=1e-5)


def test_prefix_runs_once_per_item_block():
    sto = scann.convert(ResidualCNN())
    calls = []
    sto.prefix_net.get_submodule("graph.conv").register_forward_hook(
        lambda *a: calls.append(1))
    engine.predict(sto, _images(10), samples=40, seed=0, batch_size=5, sample_chunk=4)
    assert len(calls) == 2  # two item blocks, 40 passes each


def test_skip_connection_across_a_sampled_layer_with_several_passes():
    sto = scann.convert(ResidualCNN())
    x, n = _images(6), 5
    h = sto.prefix(x)
    together = sto.sample(h, SamplingContext.for_samples(7, 0, n, len(x)))
    assert together.shape == (n, len(x), 5)
    for k in range(n):
        alone = sto.sample(h, SamplingContext.for_samples(7, k, 1, len(x)))[0]
        assert torch.allclose(together[k], alone, atol=1e-5)


class MixedFrontier(nn.Module):
    """Raw uint8 pixels go to a sampled layer, and a float statistic of them skips it."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(16, 8)

    def forward(self, x):
        x = x.flatten(1)
        return self.fc(x) + x.float().mean(1, keepdim=True) / 255


def _raw_pixels(sto):
    """The sampled layer reads raw 0..255 pixels, as after folding a ScaleInput."""
    fc = next(m for m in sto.modules() if isinstance(m, CoinFlipLinear))
    fc.input_scale = 1 / 255
    return sto, fc


def test_frontier_values_keep_their_dtype(monkeypatch):
    net = MixedFrontier()
    sto, fc = _raw_pixels(scann.convert(net))
    seen = []
    fc.register_forward_pre_hook(lambda m, args: seen.append(args[0].dtype))
    x = torch.randint(0, 256, (20, 1, 4, 4), dtype=torch.uint8)
    split = engine.predict(sto, x, samples=24, seed=1)
    assert seen[0] == torch.uint8  # unpacked as it was, not as the packing's float32
    whole = engine.predict(_raw_pixels(_unsplit(net, monkeypatch))[0], x, samples=24, seed=1,
                           sample_chunk=1)
    assert torch.equal(split.votes, whole.votes)


def test_untraceable_network_runs_with_a_warning():
    with pytest.warns(UserWarning, match="cannot be traced.*recomputed for every chunk"):
        sto = scann.convert(ResidualCNN(skip=False, branch=True))
    assert isinstance(sto.prefix_net, nn.Identity)
    pred = engine.predict(sto, _images(), samples=20, seed=0)
    assert pred.votes.sum(1).eq(20).all()


@pytest.mark.parametrize("mode", ["shared", "independent"])
def test_untraceable_skip_connection_runs_pass_by_pass(mode):
    with pytest.warns(UserWarning, match="cannot be traced"):
        sto = scann.convert(ResidualCNN(branch=True))  # y * 1.0: the traced network's values
    run = dict(samples=20, seed=0, mode=mode)
    one = engine.predict(sto, _images(), sample_chunk=1, **run)
    with pytest.warns(UserWarning, match="every pass runs on its own"):
        chunked = engine.predict(sto, _images(), sample_chunk=4, tile=5, **run)
    assert sto.pass_by_pass
    assert torch.equal(chunked.votes, one.votes)
    assert chunked.random_bits == one.random_bits  # the failed call and re-created tiles
    traced = engine.predict(scann.convert(ResidualCNN()), _images(), **run)
    assert torch.equal(traced.votes, one.votes)


def test_a_non_tensor_carried_across_a_sampled_layer_is_a_clear_error():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(4, 4)

        def forward(self, x):
            b = x.size(0)
            return self.fc(x).view(b, -1)

    sto = scann.convert(Net())
    with pytest.raises(ConfigError, match="'size'.*not a tensor of 3 items"):
        sto(torch.ones(3, 4), n=2)


def test_sequential_with_a_nested_sampled_layer_is_traced():
    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(8, 8)

        def forward(self, x):
            return x + self.fc(x)

    net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), Block(), nn.Linear(8, 3))
    with torch.no_grad():
        for p in net.parameters():
            p.clamp_(-1, 1)
    sto = scann.convert(net, exclude=["0"])
    assert isinstance(sto.body, TracedBody)
    assert not any(isinstance(m, CoinFlipLinear) for m in sto.prefix_net.modules())
    assert sto(torch.ones(5, 4), n=3).shape == (3, 5, 3)
