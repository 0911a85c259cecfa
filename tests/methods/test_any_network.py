"""Networks synsample did not build, through every method that applies, or the one-line error
that says why not; and every registered method through the same contract."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import synsample as ss
from synsample import engine, hardware, methods, models
from synsample.errors import ConfigError
from tests.helpers import assert_votes_do_not_depend_on_tiling

# -- the zoo: networks written the way researchers write them --------------------------------


class ResidualCNN(nn.Module):
    """Conv, BatchNorm, max-pool, dropout, and a residual block around the dense head."""

    def __init__(self, channels: int = 1, side: int = 8, classes: int = 4) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, 6, 3, padding=1)
        self.bn = nn.BatchNorm2d(6)
        self.drop = nn.Dropout(0.2)
        width = 6 * (side // 2) ** 2
        self.fc1 = nn.Linear(width, 32)
        self.fc2 = nn.Linear(32, 32)
        self.head = nn.Linear(32, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.max_pool2d(F.relu(self.bn(self.conv(x))), 2).flatten(1)
        h = F.relu(self.fc1(self.drop(h)))
        h = h + F.relu(self.fc2(h))  # the skip connection crosses a sampled layer
        return self.head(h)


class TinyAttention(nn.Module):
    """Self-attention, LayerNorm and a token-wise feed-forward layer on [B, T, d] tokens,
    mean-pooled into a dense head."""

    def __init__(self, tokens: int = 4, d: int = 16, classes: int = 4) -> None:
        super().__init__()
        self.tokens, self.d = tokens, d
        self.attn = nn.MultiheadAttention(d, 2, batch_first=True, dropout=0.1)
        self.norm = nn.LayerNorm(d)
        self.ff = nn.Linear(d, d)  # applied to every token: [B, T, d] -> [B, T, d]
        self.drop = nn.Dropout(0.1)
        self.head = nn.Linear(d, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t = x.reshape(x.shape[0], self.tokens, self.d)
        a, _ = self.attn(t, t, t, need_weights=False)
        h = self.norm(t + a)
        h = h + torch.relu(self.ff(h))  # a skip connection around a token-wise sampled layer
        return self.head(self.drop(h.mean(1)))


class RawParameters(nn.Module):
    """Weights as raw parameters used through F.linear: no module to convert."""

    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.randn(4, 64) * 0.1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x.flatten(1), self.w)


def _trained_like(make, seed: int) -> nn.Module:
    """``make()`` seeded, with BatchNorm statistics as training would leave them."""
    torch.manual_seed(seed)
    net = make()
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.running_mean.normal_(0, 0.1)
                m.running_var.uniform_(0.5, 1.5)
    return net.eval()


ZOO = {
    "residual-cnn": (lambda: _trained_like(ResidualCNN, 0), (1, 8, 8)),
    "cnn-3x32x32": (lambda: _trained_like(lambda: ResidualCNN(3, 32), 1), (3, 32, 32)),
    "attention": (lambda: _trained_like(TinyAttention, 2), (64,)),
}
#: what each method needs beyond the network (attention's out_proj is used functionally)
OPTIONS = {
    "scann": {"gain": "layer"},
    "mc-dropout": {},
    "mc-dropconnect": {"p": 0.1},
    "bbb": {},
}
EXCLUDE = {"attention": ["attn.*"]}


def _inputs(shape, n: int = 12) -> torch.Tensor:
    return torch.rand(n, *shape, generator=torch.Generator().manual_seed(3))


@pytest.mark.parametrize("zoo", list(ZOO))
@pytest.mark.parametrize("method", list(OPTIONS))
def test_every_zoo_network_goes_through_every_method_that_applies(zoo, method):
    build, shape = ZOO[zoo]
    net = build()
    exclude = EXCLUDE.get(zoo) if method in ("scann", "mc-dropconnect", "bbb") else None
    sto = ss.convert(net, method, exclude=exclude, **OPTIONS[method])
    x = _inputs(shape)
    pred = ss.predict(sto, x, samples=6, seed=1)
    assert pred.votes.shape == (12, 4) and torch.all(pred.votes.sum(1) == 6)
    assert pred.random_bits > 0
    again = ss.predict(sto, x, samples=6, seed=1)
    assert torch.equal(pred.votes, again.votes)
    assert_votes_do_not_depend_on_tiling(sto, x, 6, "shared", batch_size=5, sample_chunk=4)
    assert hardware.measure(sto, x, 4)["per_inference"]["energy_nj"] > 0
    for p_net, p_copy in zip(net.parameters(), build().parameters(), strict=True):
        assert torch.equal(p_net, p_copy)  # the user's network is never changed


def test_spinbayes_and_ensembles_take_any_network():
    net, shape = ZOO["residual-cnn"][0](), ZOO["residual-cnn"][1]
    bnn = methods.bbb.bayesian(net)
    x = _inputs(shape, 200)
    with pytest.raises(ConfigError, match="BatchNorm.*calibration"):
        ss.convert(bnn, "spinbayes")
    sto = ss.convert(bnn, "spinbayes", calibration=x, precision=4)
    assert sto.info["recalibrated"] and ss.predict(sto, x[:8], samples=5).random_bits > 0
    with pytest.raises(ConfigError, match="Bayes-by-Backprop posterior and this network has none"):
        ss.convert(net, "spinbayes", calibration=x)
    members = [ZOO["residual-cnn"][0]() for _ in range(2)]
    pred = ss.predict(ss.convert(members, "ensemble"), x[:8], samples=4)
    assert pred.random_bits == 0 and torch.all(pred.votes.sum(1) == 4)
    with pytest.raises(ConfigError, match="outputs of different (shapes|sizes)"):
        ss.predict(ss.convert([members[0], ResidualCNN(classes=3).eval()], "ensemble"), x[:4],
                   samples=2)


@pytest.mark.parametrize("method,why", [("nsm", "stochastic sign units"),
                                        ("sc", "trained for them")])
def test_methods_that_need_their_own_training_say_why(method, why):
    with pytest.raises(ConfigError, match=why):
        ss.convert(ZOO["residual-cnn"][0](), method)


def test_loud_failures_instead_of_silent_wrong_answers():
    att = ZOO["attention"][0]()
    sto = ss.convert(att, "scann", gain="layer")  # attn.out_proj is listed but never called
    with pytest.raises(ConfigError, match="attn.out_proj is reported as sampled but never"):
        ss.predict(sto, _inputs((64,)), samples=3)
    with pytest.raises(ConfigError, match="include filter 'nope' matches no module"):
        ss.convert(att, "scann", include=["nope"])
    with pytest.raises(ConfigError, match="no layer of the network would be sampled"):
        ss.convert(att, "scann", exclude=[nn.Linear])
    with pytest.raises(ConfigError, match="no layer of the network would be sampled"):
        ss.convert(RawParameters(), "scann")  # F.linear on raw parameters: nothing to sample
    with pytest.raises(ConfigError, match="no nn.Dropout"):
        ss.convert(RawParameters(), "mc-dropout")
    with pytest.raises(ConfigError, match="takes no option gain"):
        ss.convert(att, "mc-dropout", gain="layer")
    with pytest.raises(ConfigError, match="outside \\[-1, 1\\].*gain='row'"):
        ss.convert(nn.Sequential(nn.Linear(2, 2)).requires_grad_(False).apply(
            lambda m: m.weight.fill_(2.0) if isinstance(m, nn.Linear) else None), "scann")


def test_with_weights_in_minus_one_zero_one_every_scann_pass_is_the_plain_forward():
    """Coins of probability 0 or 1 are certain: every pass must equal the network's own
    forward, which catches a sampled layer applied to the wrong tensor or a broken split."""
    for zoo, (build, shape) in ZOO.items():
        net = build()
        g = torch.Generator().manual_seed(4)
        with torch.no_grad():
            for name, m in net.named_modules():
                if isinstance(m, nn.Linear) and not name.startswith("attn"):
                    m.weight.copy_(torch.randint(-1, 2, m.weight.shape, generator=g).float())
        x = _inputs(shape)
        with torch.no_grad():
            plain = torch.softmax(net(x), -1)
        sto = ss.convert(net, "scann", exclude=EXCLUDE.get(zoo))
        for mode in ("shared", "independent"):
            pred = ss.predict(sto, x, samples=5, seed=2, mode=mode)
            torch.testing.assert_close(pred.mean_probs, plain, rtol=1e-4, atol=1e-5,
                                       msg=f"{zoo} {mode}")
            assert pred.expected_entropy.max() >= 0


def test_scann_gain_keeps_the_deterministic_network_and_warns_without_it():
    net = nn.Sequential(nn.Linear(8, 6), nn.ReLU(), nn.Linear(6, 3))  # default init: |w| < 0.4
    with pytest.warns(UserWarning, match="gain='row'"):
        ss.convert(net, "scann")
    sto = ss.convert(net, "scann", gain="layer")
    assert all(m.weight.abs().max() == 1.0 for m in sto.sampled_layers())
    sto = ss.convert(net, "scann", gain="row")
    assert all(torch.all(m.weight.abs().amax(1) == 1.0) for m in sto.sampled_layers())
    certain = nn.Sequential(nn.Linear(8, 6), nn.ReLU(), nn.Linear(6, 3))
    with torch.no_grad():  # weights whose scaled coins are certain: +-max|w| and 0
        for m in certain:
            if isinstance(m, nn.Linear):
                m.weight.copy_(0.3 * torch.randint(-1, 2, m.weight.shape).float())
    x = torch.randn(10, 8)
    for gain in ("layer", "row"):
        for mode in ("shared", "independent"):
            pred = ss.predict(ss.convert(certain, "scann", gain=gain), x, samples=3, mode=mode)
            torch.testing.assert_close(pred.mean_probs, torch.softmax(certain(x), -1).detach())


@pytest.mark.parametrize("mode", ["shared", "independent"])
def test_token_wise_layers_draw_per_pass_for_every_token(mode):
    """A Linear on [B, T, d] tokens: in shared mode every token of every item sees the pass's
    weights (one sampled token-wise layer equals the plain layer with that draw); in
    independent mode the draws do not depend on tiling."""
    lin = nn.Linear(6, 5)
    with torch.no_grad():
        lin.weight.uniform_(-1, 1)
    net = nn.Sequential(nn.Identity(), lin, nn.Flatten())
    sto = ss.convert(net, "scann", exclude=["0"])
    x = torch.randn(7, 3, 6)
    # the model's logits are its [T, out] outputs flattened: votes over 15 "classes"
    assert_votes_do_not_depend_on_tiling(sto, x, 4, mode, batch_size=3, sample_chunk=2)
    if mode == "shared":
        from synsample.nn import SamplingContext

        layer = sto.sampled_layers()[0]
        ctx = SamplingContext.for_samples(5, 0, 3, batch=7)
        w = layer._shared_draws(ctx, torch.float32)  # [n, out, in], the draws of 3 passes
        out = sto.sample(x, SamplingContext.for_samples(5, 0, 3, batch=7))  # [n, B, T*out]
        for k in range(3):
            expected = x @ w[k].T + lin.bias
            torch.testing.assert_close(out[k].reshape(7, 3, 5), expected)


def test_inputs_as_users_have_them():
    net = ZOO["residual-cnn"][0]()
    sto = ss.convert(net, "mc-dropout")
    x = _inputs((1, 8, 8))
    y = torch.zeros(len(x), dtype=torch.int64)
    reference = ss.predict(sto, x, samples=4, seed=0).votes
    dataset = torch.utils.data.TensorDataset(x, y)
    for given in (x.numpy(), dataset, torch.utils.data.DataLoader(dataset, batch_size=5)):
        assert torch.equal(ss.predict(sto, given, samples=4, seed=0).votes, reference)
    with pytest.raises(ConfigError, match="cannot compute on torch.uint8"):
        ss.predict(sto, (x * 255).to(torch.uint8), samples=2)
    with pytest.raises(ConfigError, match="predict takes a tensor"):
        ss.predict(sto, [1, 2, 3], samples=2)


# -- the contract every registered method keeps ----------------------------------------------

def _contract_model(method: str):
    """A network each method converts, and its inputs."""
    x8 = (torch.rand(10, 1, 8, 8, generator=torch.Generator().manual_seed(5)) * 255).to(
        torch.uint8)
    x16 = (torch.rand(120, 1, 16, 16, generator=torch.Generator().manual_seed(6)) * 255).to(
        torch.uint8)
    small = {"input_shape": (1, 8, 8), "num_classes": 4, "seed": 0}
    lenet = {"input_shape": (1, 16, 16), "num_classes": 4, "seed": 0}
    if method == "nsm":
        return models.build("nsm-mlp", **small), {}, x8
    if method == "sc":
        return models.build("sc-mlp", **small), {"stream_length": 20}, x8
    if method == "spinbayes":
        return models.build("lenet5-bbb", **lenet), {"calibration": x16}, x16[:10]
    if method == "ensemble":
        return [models.build("mlp", init="uniform", **{**small, "seed": s}) for s in (0, 1)], \
            {}, x8
    return models.build("mlp", init="uniform", **small), {}, x8


@pytest.mark.parametrize("method", list(methods.REGISTRY))
def test_every_registered_method_keeps_the_contract(method):
    model, options, x = _contract_model(method)
    sto = ss.convert(model, method, **options)
    spec = methods.get(method)
    for mode in ("shared", "independent"):
        pred = ss.predict(sto, x, samples=6, seed=7, mode=mode)
        assert pred.votes.shape == (len(x), 4) and torch.all(pred.votes.sum(1) == 6)
        assert torch.equal(ss.predict(sto, x, samples=6, seed=7, mode=mode).votes, pred.votes)
        if method == "ensemble":
            assert pred.random_bits == 0
        else:
            assert_votes_do_not_depend_on_tiling(sto, x, 6, mode, batch_size=3, sample_chunk=4)
    assert hardware.measure(sto, x, 4)["per_inference"]["energy_nj"] > 0
    assert spec.title and spec.summary and spec.reference
    reference = spec.reference_model(model[0] if spec.many_models else model)
    assert isinstance(reference, nn.Module)


def test_the_registry_is_the_one_list_of_methods():
    from synsample import cli, export

    assert set(methods.METHODS) == set(methods.REGISTRY)
    assert set(export.METHODS) == {n for n, s in methods.REGISTRY.items() if s.exports}
    parser = cli.build_parser()
    sample = next(a for a in parser._subparsers._group_actions[0].choices["sample"]._actions
                  if "--method" in a.option_strings)
    assert set(sample.choices) == set(methods.REGISTRY)
    with pytest.raises(ConfigError, match="unknown method 'dropout'; available: scann"):
        ss.convert(nn.Linear(2, 2), "dropout")
    assert engine.predict is ss.predict
