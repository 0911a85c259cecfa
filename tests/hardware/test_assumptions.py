import json

import pytest

from synsample import hardware
from synsample.errors import ConfigError


def test_defaults_price_every_operation_and_technology_and_name_their_sources():
    a = hardware.DEFAULT
    assert set(a.pj_per_op) == set(hardware.OPERATIONS)
    assert set(a.pj_per_random_bit) == set(hardware.TECHNOLOGIES)
    assert set(hardware.OPERATIONS) | set(hardware.TECHNOLOGIES) <= set(a.sources)
    # the papers' figures: paper 003's LFSR and s-MTJ bits, paper 004's Table 4
    assert a.random_bit("cmos") == 0.010 and a.random_bit("s-mtj") == 0.020
    assert a.random_bit("sot-mtj") == 3.80 and a.op("crossbar_read") == 4.71
    with pytest.raises(ConfigError, match="no energy"):
        a.op("teleport")


def test_a_user_file_replaces_only_what_it_names(tmp_path):
    path = tmp_path / "chip.json"
    path.write_text(json.dumps({"name": "28 nm", "pj_per_op": {"mac": 1.5},
                                "pj_per_random_bit": {"s-mtj": 0.05}, "float_bits": 8}))
    a = hardware.load_assumptions(path)
    assert a.name == "28 nm" and a.op("mac") == 1.5 and a.random_bit("s-mtj") == 0.05
    assert a.op("add") == hardware.DEFAULT.op("add") and a.float_bits == 8
    assert a.sources["mac"] == "chip.json" and a.sources["add"] == hardware.DEFAULT.sources["add"]
    assert hardware.load_assumptions(None) is hardware.DEFAULT


@pytest.mark.parametrize("content, message", [
    ('{"pj_per_op": {"teleport": 1}}', "unknown pj_per_op entry 'teleport'"),
    ('{"pj_per_op": {"mac": -1}}', "non-negative"),
    ('{"energy": 1}', "unknown keys energy"),
    ('{"float_bits": 0}', "float_bits"),
    ('{"sources": 3}', "sources"),
    ("not json", "not valid JSON"),
    ("[1, 2]", "JSON object"),
])
def test_a_bad_file_is_a_one_line_error(tmp_path, content, message):
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(ConfigError, match=message):
        hardware.load_assumptions(path)
    with pytest.raises(ConfigError, match="no cost assumption file"):
        hardware.load_assumptions(tmp_path / "missing.json")
