"""report/markdown.py: table and text_table layout, pct and signed formatting."""

import pytest

from synsample.report.markdown import pct, signed, table, text_table


def test_table_has_header_separator_and_first_column_left_the_others_right():
    assert table(["net", "acc", "n"], [["mlp", 0.5, 3], ["conv", 0.25, 40]]).splitlines() == [
        "| net | acc | n |",
        "|:---|---:|---:|",
        "| mlp | 0.5 | 3 |",
        "| conv | 0.25 | 40 |"]


def test_table_alignment_string_sets_each_column():
    lines = table(["a", "b", "c"], [], align="rcl").splitlines()
    assert lines == ["| a | b | c |", "|---:|:---:|:---|"]


def test_table_cells_none_as_dash_floats_to_four_significant_digits_others_as_str():
    body = table(["x"] * 6, [[None, 3.14159, 1234567.0, 0.000123456, 1234567, "a b"]])
    assert body.splitlines()[2] == "| - | 3.142 | 1.235e+06 | 0.0001235 | 1234567 | a b |"


def test_text_table_pads_columns_numbers_right_text_left_and_rules_the_header():
    out = text_table(["name", "value"], [["a", 1.5], ["long", 10]])
    assert out.splitlines() == ["name  value",
                                "-----------",
                                "a       1.5",
                                "long     10"]


def test_text_table_a_column_with_any_text_is_left_aligned_and_lines_are_right_stripped():
    out = text_table(["k", "label"], [[1, "ab"], [22, "abcdef"], [3, None]])
    assert out.splitlines() == [" k  label",
                                "----------",
                                " 1  ab",
                                "22  abcdef",
                                " 3  -"]


def test_text_table_rule_is_as_long_as_the_widest_line():
    out = text_table(["a"], [["a much longer cell"]])
    assert out.splitlines()[1] == "-" * len("a much longer cell")


@pytest.mark.parametrize(("x", "digits", "text"), [
    (0.123456, 1, "12.3%"), (0.123456, 2, "12.35%"), (1.0, 1, "100.0%"), (0.0, 2, "0.00%"),
    (-0.05, 1, "-5.0%"), (0.5, 0, "50%"), (None, 1, "-"), (None, 3, "-")])
def test_pct(x, digits, text):
    assert pct(x, digits) == text


def test_pct_defaults_to_one_decimal():
    assert pct(0.98765) == "98.8%"


@pytest.mark.parametrize(("x", "digits", "text"), [
    (1.234, 1, "+1.2"), (-1.26, 1, "-1.3"), (0.0, 1, "+0.0"), (0.456, 2, "+0.46"),
    (-12.0, 0, "-12"), (None, 1, "-"), (None, 2, "-")])
def test_signed(x, digits, text):
    assert signed(x, digits) == text
