"""The registry and :class:`~synsample.methods.spec.MethodSpec` (``methods/__init__.py``,
``methods/spec.py``): one spec per method module, and the checks every conversion passes
through before a method's own ``convert`` sees the network."""

from __future__ import annotations

import dataclasses
import inspect

import pytest
from torch import nn

import synsample as ss
from synsample import methods
from synsample.errors import ConfigError, SynsampleError
from synsample.methods import (
    bbb,
    ensemble,
    mc_dropconnect,
    mc_dropout,
    nsm,
    sc,
    scann,
    spinbayes,
)
from synsample.methods.spec import MethodSpec

MODULES = (scann, nsm, sc, bbb, spinbayes, mc_dropout, mc_dropconnect, ensemble)


def _net() -> nn.Module:
    return nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))


class _Recorder:
    """A method's ``convert`` that records what the spec passed it."""

    def __init__(self) -> None:
        self.calls: list[tuple[object, dict]] = []

    def __call__(self, model, **kwargs):
        self.calls.append((model, kwargs))
        return "converted"


def _spec(**fields) -> tuple[MethodSpec, _Recorder]:
    recorder = _Recorder()
    base = {"name": "fake", "title": "Fake", "summary": "a test double", "convert": recorder}
    return MethodSpec(**{**base, **fields}), recorder


# -- the registry ---------------------------------------------------------------------------------

def test_the_registry_holds_each_method_modules_spec_under_its_name():
    assert methods.REGISTRY == {m.SPEC.name: m.SPEC for m in MODULES}
    assert methods.METHODS == tuple(methods.REGISTRY)
    assert set(methods.METHODS) == {"scann", "nsm", "sc", "bbb", "spinbayes", "mc-dropout",
                                    "mc-dropconnect", "ensemble"}
    for module in MODULES:
        assert methods.get(module.SPEC.name) is module.SPEC
    assert ss.convert is methods.convert


def test_an_unknown_method_is_a_config_error_that_lists_every_method():
    with pytest.raises(ConfigError) as info:
        methods.get("scan")
    assert isinstance(info.value, SynsampleError)
    for name in methods.METHODS:
        assert name in str(info.value)


@pytest.mark.parametrize("name", list(methods.REGISTRY))
def test_every_spec_matches_the_signature_of_its_convert(name):
    """What a spec says a method takes is what its ``convert`` accepts: each option, the
    filters when ``filters`` is set, ``precision`` when the method has one, and the data
    option (``needs_data``) among the options."""
    spec = methods.REGISTRY[name]
    params = inspect.signature(spec.convert).parameters
    for option in spec.options:
        assert option in params, option
    assert ("include" in params and "exclude" in params) == spec.filters
    assert ("precision" in params) == (spec.precision is not None)
    assert spec.needs_data is None or spec.needs_data in spec.options
    assert spec.title and spec.summary and spec.reference


def test_only_the_ensemble_takes_many_networks_and_the_exporters_are_named():
    assert [n for n, s in methods.REGISTRY.items() if s.many_models] == ["ensemble"]
    assert {n for n, s in methods.REGISTRY.items() if s.exports} == {"scann", "sc", "spinbayes"}
    assert {n for n, s in methods.REGISTRY.items() if s.needs_data} == {"spinbayes"}
    assert {n for n, s in methods.REGISTRY.items() if not s.filters} == {
        "nsm", "sc", "spinbayes", "ensemble"}


# -- what MethodSpec.__call__ checks and passes on ------------------------------------------------

def test_a_spec_passes_the_network_filters_and_options_to_its_convert():
    spec, rec = _spec(options=("alpha",))
    net = _net()
    assert spec(net, alpha=3) == "converted"
    model, kwargs = rec.calls[-1]
    assert model is net and kwargs == {"include": None, "exclude": None, "alpha": 3}
    spec(net, include=[nn.Linear], exclude=["2"])
    assert rec.calls[-1][1] == {"include": [nn.Linear], "exclude": ["2"]}


def test_a_spec_without_filters_passes_none_and_refuses_them():
    spec, rec = _spec(filters=False)
    spec(_net())
    assert rec.calls[-1][1] == {}
    with pytest.raises(ConfigError, match="fake converts the whole network; it takes no "
                                          "include or exclude filter"):
        spec(_net(), exclude=["0"])
    assert len(rec.calls) == 1


@pytest.mark.parametrize("full", [None, "full", "FULL", "fp32", "ideal", "none", "float"])
def test_full_precision_is_never_passed_on(full):
    with_bits, rec = _spec(precision="bits")
    with_bits(_net(), precision=full)
    assert "precision" not in rec.calls[-1][1]
    without, rec = _spec()  # a method with no precision accepts "full" too
    without(_net(), precision=full)
    assert "precision" not in rec.calls[-1][1]


def test_bits_go_to_a_method_with_a_precision_and_are_refused_by_one_without():
    spec, rec = _spec(precision="bits")
    spec(_net(), precision=4)
    assert rec.calls[-1][1]["precision"] == 4
    spec(_net(), precision="8")
    assert rec.calls[-1][1]["precision"] == "8"
    without, rec = _spec()
    with pytest.raises(ConfigError, match="fake has no precision to set; leave it at full"):
        without(_net(), precision=4)
    assert rec.calls == []


def test_unknown_options_are_named_with_the_ones_the_method_takes():
    spec, rec = _spec(options=("alpha", "beta"))
    with pytest.raises(ConfigError, match="fake takes no option delta, gamma; its options: "
                                          "alpha, beta"):
        spec(_net(), gamma=1, delta=2)
    bare, _ = _spec()
    with pytest.raises(ConfigError, match="its options: none"):
        bare(_net(), alpha=1)
    assert rec.calls == []


def test_one_network_methods_unwrap_a_list_of_one_and_refuse_several():
    spec, rec = _spec()
    net = _net()
    for given in ([net], (net,)):
        spec(given)
        assert rec.calls[-1][0] is net
    with pytest.raises(ConfigError, match="several make an ensemble"):
        spec([net, _net()])


def test_a_many_network_method_gets_a_list_even_of_one():
    spec, rec = _spec(many_models=True, filters=False)
    net = _net()
    spec(net)
    assert rec.calls[-1][0] == [net]
    nets = (net, _net())
    spec(nets)
    assert rec.calls[-1][0] == list(nets)


@pytest.mark.parametrize("given,kind", [("net.pt", "str"), ([_net(), 3], "int"),
                                        (nn.Linear, "type")])
def test_anything_but_an_nn_module_is_refused_by_type(given, kind):
    spec, rec = _spec(many_models=True, filters=False)
    with pytest.raises(ConfigError, match=f"fake converts torch nn.Module networks, got {kind}"):
        spec(given)
    assert rec.calls == []


def test_filters_reach_convert_as_given():
    spec, rec = _spec()
    spec(_net(), include=["*"], exclude=["[02]"])
    assert rec.calls[-1][1] == {"include": ["*"], "exclude": ["[02]"]}
    spec(_net())
    assert rec.calls[-1][1] == {"include": None, "exclude": None}


@pytest.mark.parametrize("name", [n for n, s in methods.REGISTRY.items() if s.filters])
@pytest.mark.parametrize("front_door", [True, False])
def test_every_method_checks_its_filters_against_the_network(name, front_door):
    """The conversion walk checks the user's filters, so a method's own ``convert`` refuses a
    filter that matches nothing as ``synsample.convert`` does."""
    convert = (lambda net, **f: ss.convert(net, name, **f)) if front_door else \
        methods.REGISTRY[name].convert
    net = nn.Sequential(nn.Linear(4, 3), nn.Dropout(0.1), nn.Linear(3, 2))
    with pytest.raises(ConfigError, match="the include filter 'fc' matches no module of the "
                                          "network; its modules: 0, 1, 2"):
        convert(net, include=["fc"])
    with pytest.raises(ConfigError, match="the exclude filter Conv2d matches no module"):
        convert(net, exclude=[nn.Conv2d])
    with pytest.raises(ConfigError, match="filters take nn.Module types or module names"):
        convert(net, include=[3])
    convert(net, exclude=["[0]"])  # a wildcard that matches is fine


def test_a_spec_is_frozen_and_its_default_reference_is_the_trained_network():
    spec, _ = _spec()
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.name = "other"  # type: ignore[misc]
    net = _net()
    assert spec.reference_model(net) is net
    assert spec.reference == "network without sampling"
    assert "convert" not in repr(spec)  # the callables are left out of the repr


def test_the_front_door_is_the_specs_own_call():
    net = nn.Sequential(nn.Linear(4, 3), nn.Dropout(0.3), nn.Linear(3, 2))
    a = methods.convert(net, "mc-dropout", p=0.1)
    b = methods.get("mc-dropout")(net, p=0.1)
    assert type(a) is type(b) and a.sampled_names == b.sampled_names == ["1"]
    assert a.info == b.info == {"rate": 0.1}
