"""``methods/ensemble.py`` (Lakshminarayanan et al. 2017, paper 004's baseline [15]): M trained
networks as one stochastic model, pass ``k`` being member ``k mod M``, so every M passes are
the ensemble's average and no random bit is drawn; the members are copies in eval mode; the
spec entry; errors."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import synsample as ss
from synsample import engine
from synsample.errors import ConfigError
from synsample.methods import ensemble
from synsample.nn.sampling import SamplingContext


def _member(seed: int, dropout: float = 0.0) -> nn.Sequential:
    """A small synthetic MLP (a "member trained from seed ``seed``")."""
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(6, 12), nn.ReLU(), nn.Dropout(dropout), nn.Linear(12, 4))


def _x(n: int = 9) -> torch.Tensor:
    return torch.randn(n, 6, generator=torch.Generator().manual_seed(0))


# -- convert --------------------------------------------------------------------------------------

def test_the_members_are_copies_in_eval_mode_and_the_originals_are_left_alone():
    members = [_member(s, dropout=0.5).train() for s in range(3)]
    sto = ss.convert(members, "ensemble")
    assert isinstance(sto, ensemble.Ensemble) and sto.method == "ensemble"
    assert len(sto.members) == 3 and all(a is not b for a, b in zip(sto.members, members,
                                                                     strict=True))
    assert not any(m.training for member in sto.members for m in member.modules())
    assert all(m.training for member in members for m in member.modules())
    x = _x()
    before = sto(x, n=6)
    with torch.no_grad():
        members[0][0].weight.zero_()  # changing an original after converting changes nothing
    assert torch.equal(sto(x, n=6), before)


def test_a_single_network_or_a_tuple_converts_too():
    one = ss.convert(_member(0), "ensemble")
    assert len(one.members) == 1
    assert len(ss.convert((_member(0), _member(1)), "ensemble").members) == 2
    assert ensemble.DEFAULT_MEMBERS == 5
    assert one.describe() == {"method": "ensemble", "members": 1,
                              "pass_k_uses": "member k mod M"}


@pytest.mark.parametrize("given,options,message", [
    ([], {}, "an ensemble needs at least one trained network"),
    ([_member(0), "member.pt"], {}, "ensemble converts torch nn.Module networks, got str"),
    ([_member(0)], {"include": [nn.Linear]}, "ensemble converts the whole network; it takes "
                                             "no include or exclude filter"),
    ([_member(0)], {"precision": 8}, "ensemble has no precision to set"),
    ([_member(0)], {"members": 5}, "ensemble takes no option members; its options: none"),
])
def test_bad_input_is_a_config_error(given, options, message):
    with pytest.raises(ConfigError, match=message):
        ss.convert(given, "ensemble", **options)


# -- the spec -------------------------------------------------------------------------------------

def test_the_spec_entry():
    spec = ensemble.SPEC
    assert spec.name == "ensemble" and spec.many_models and not spec.filters
    assert spec.options == () and spec.precision is None and not spec.exports
    assert spec.reference == "first member" and spec.needs_data is None
    member = _member(0)
    assert spec.reference_model(member) is member


# -- the distribution it samples ------------------------------------------------------------------

def test_pass_k_is_member_k_mod_m_from_any_first_pass():
    members = [_member(s) for s in range(3)]
    sto = ensemble.convert(members)
    x = _x(4)
    with torch.no_grad():
        own = [m.eval()(x) for m in members]
    for first, n in ((0, 7), (2, 4), (5, 1)):
        ctx = SamplingContext.for_samples(0, first, n, len(x))
        out = sto.sample(sto.prefix(x), ctx)  # [n, batch, classes]
        assert out.shape == (n, 4, 4)
        for k in range(n):
            torch.testing.assert_close(out[k], own[(first + k) % 3])


@pytest.mark.parametrize("samples", [3, 12, 7])
def test_the_members_are_averaged(samples):
    """``mean_probs`` after K passes is the mean of the members' softmax outputs, each member
    weighted by the passes it got (K // M or K // M + 1): every M passes, the plain ensemble
    average of Lakshminarayanan et al."""
    members = [_member(s) for s in range(3)]
    x = _x()
    pred = engine.predict(ensemble.convert(members), x, samples=samples, sample_chunk=2)
    with torch.no_grad():
        probs = torch.stack([torch.softmax(m.eval()(x), -1) for m in members])
    weights = torch.tensor([len(range(m, samples, 3)) for m in range(3)], dtype=torch.float32)
    expected = (weights[:, None, None] * probs).sum(0) / samples
    torch.testing.assert_close(pred.mean_probs, expected, rtol=1e-5, atol=1e-6)


def test_no_random_bit_is_drawn_so_every_seed_gives_the_same_votes():
    sto = ensemble.convert([_member(s, dropout=0.3) for s in range(2)])
    x = _x()
    a = engine.predict(sto, x, samples=6, seed=1)
    for mode, seed in (("shared", 2), ("independent", 3)):
        b = engine.predict(sto, x, samples=6, seed=seed, mode=mode)
        assert torch.equal(a.votes, b.votes) and torch.equal(a.mean_probs, b.mean_probs)
    assert a.random_bits == 0 and sto.devices() == []
