"""report/cost_section.py: the cost lines of a report, from a cost result shaped like
synsample.hardware.measure's (synthetic counts): every component once, largest energy first,
its share of the whole; the totals, one sample's, the prefix's and the memory beside it."""

import pytest

from synsample.report.cost_section import _n, cost_lines
from tests.report.inputs import md_table, synthetic_cost


def _text(cost, **kw) -> str:
    return "\n".join(cost_lines(cost, **kw))


def test_components_largest_energy_first_with_count_price_energy_and_share():
    t = md_table(_text(synthetic_cost()), "component")
    assert t == [["component", "count per inference", "pJ each", "nJ per inference", "%"],
                 ["mac", "2,000", "4.6", "9.20", "93.9"],
                 ["random bits (cmos)", "50,000", "0.01", "0.50", "5.1"],
                 ["weight bits read", "640", "0.15625", "0.10", "1.0"]]


def test_component_energies_and_shares_add_up_to_the_inference():
    cost = synthetic_cost({"mac": (1234.0, 4.6), "add": (77.0, 0.1), "compare": (9.0, 0.01),
                           "random bits (s-mtj)": (4321.0, 0.02)})
    text = _text(cost)
    body = md_table(text, "component")[1:]
    assert sum(float(r[3]) for r in body) == pytest.approx(cost["per_inference"]["energy_nj"],
                                                           abs=0.01 * len(body))
    assert sum(float(r[4]) for r in body) == pytest.approx(100.0, abs=0.05 * len(body))
    assert f"**per inference:** {cost['per_inference']['energy_nj']:,.1f} nJ" in text


def test_totals_per_inference_per_sample_prefix_and_memory():
    cost = synthetic_cost(samples=20, memory_bytes=3072.0)
    lines = cost_lines(cost)
    assert "- **per inference:** 9.8 nJ, 50,000 random bits;" in lines
    # one sample: the sampled components over 20 passes (0.46 + 0.025 nJ, 2,500 bits)
    assert ("- **per sample** (one pass of the sampled part, with its vote): 0.48 nJ, "
            "2,500 random bits;") in lines
    assert "- **deterministic prefix** (once per inference): 0.46 nJ;" in lines
    assert "- **weight memory:** 3.0 KiB." in lines


def test_random_bits_of_every_technology_are_summed():
    cost = synthetic_cost({"mac": (10.0, 4.6), "random bits (cmos)": (1500.0, 0.01),
                           "random bits (sot-mtj)": (300.0, 3.8)})
    assert "1,800 random bits;" in _text(cost)


def test_heading_run_size_mode_and_assumption_set_are_stated():
    lines = cost_lines(synthetic_cost(items=16, samples=20), heading="## Energy per image")
    assert lines[0] == "## Energy per image" and lines[1] == ""
    assert "over 16 test items, 20 passes each, in independent mode" in lines[2]
    assert "*synthetic prices*" in lines[2]
    assert cost_lines(synthetic_cost())[0] == "## Cost per inference"


def test_mode_defaults_to_independent_and_a_shared_run_says_so():
    assert "in independent mode" in _text(synthetic_cost(mode=None))
    assert "in shared mode" in _text(synthetic_cost(mode="shared"))


def test_an_inference_of_no_energy_has_shares_of_zero_not_a_division_error():
    t = md_table(_text(synthetic_cost({"add": (0.0, 0.1)})), "component")
    assert t[1] == ["add", "0", "0.1", "0.00", "0.0"]


@pytest.mark.parametrize(("x", "text"), [(100.0, "100"), (123456.7, "123,457"), (99.5, "99.5"),
                                         (0.01234, "0.0123"), (3.0, "3")])
def test_counts_whole_from_100_three_significant_digits_below(x, text):
    assert _n(x) == text
