"""report/nsm.py (paper 002): Tables 1 and 2 beside the paper's (the gap in points), the scale
invariance table, Fig. 2's spread summary computed from the traces, the setup sentence's
totals, metrics.json and figures, from hand-made job results (synthetic numbers)."""

from __future__ import annotations

import json

import pytest

from synsample import papers
from synsample.experiments.nsm import MnistConvConfig, PiMnistConfig, ScaleInvarianceConfig
from synsample.report import nsm
from tests.report.inputs import assert_links_resolve, md_table, row


def _trace(early: float, late: float, steps: int = 30, peak: float = -3.0) -> list[list[float]]:
    """[step, p15, p50, p85] rows: spread ``early`` for 10 steps, ``late`` from the 20th."""
    rows = []
    for s in range(steps):
        spread = early if s < 10 else late if s >= steps - 10 else (early + late) / 2
        median = peak if s == 15 else 0.1
        rows.append([s, median - spread / 2, median, median + spread / 2])
    return rows


def _trained(keys, seconds: float = 600.0, epochs: int = 3, **extra) -> dict:
    return {k: {"job": f"train-{k}", "train_seconds": seconds,
                "history": [{"test_accuracy": 0.9 + 0.01 * e} for e in range(epochs)],
                "argument_percentiles": _trace(2.0, 0.5), "data_init_stats": None, **extra}
            for k in keys}


ROWS_PI = {"nsm": {"error": 0.015, "vote_error": 0.0161, "single_pass_error": 0.0345},
           "stnn": {"error": 0.0123, "vote_error": 0.013, "single_pass_error": 0.02},
           "nsm-scaled": {"error": 0.9, "vote_error": 0.9, "single_pass_error": 0.9}}


@pytest.fixture(scope="module")
def pi(tmp_path_factory):
    cfg = PiMnistConfig(out=tmp_path_factory.mktemp("nsm") / "pi", epochs=3, samples=7, seed=2)
    trained = _trained(("nsm", "stnn", "nsm-scaled"))
    trained["nsm"]["data_init_stats"] = {"layer1": {"mean": 1.234e-4, "std": 0.99876}}
    trained["stnn"]["argument_percentiles"] = _trace(1.0, 1.5)[:19]  # too short to summarise
    result = nsm.write_pi_mnist(cfg, trained, ROWS_PI, papers.NSM_PI_MNIST)
    return cfg, result, (cfg.out / "report.md").read_text()


def test_table_1_cells_ours_the_papers_and_the_gap(pi):
    t = md_table(pi[2], "network", "error", "paper")
    assert t[0] == ["network", "error", "paper", "gap (points)", "vote error", "one-pass error"]
    assert row(t, nsm.NAMES["nsm"]) == [nsm.NAMES["nsm"], "1.50", "1.36", "+0.14", "1.61",
                                        "3.45"]
    assert row(t, nsm.NAMES["stnn"])[1:4] == ["1.23", "1.47", "-0.24"]
    assert row(t, nsm.NAMES["nsm-scaled"])[1:4] == ["90.00", "1.38", "+88.62"]


def test_a_network_the_paper_does_not_list_has_no_gap():
    header, body = nsm._error_rows({"relu": {"error": 0.02}}, papers.NSM_PI_MNIST)
    assert body == [[nsm.NAMES["relu"], "2.00", "-", "-", "-", "-"]]


def test_setup_sentence_totals_training_and_names_the_papers_epochs(pi):
    md = pi[2]
    assert "Each network trained 3 epochs (paper: 200-400; 2 CPU cores here, 30 min" in md
    assert "Adam 3e-4, batch 100, seed 2" in md and "mean softmax of 7 sampled passes" in md


def test_fig2_spread_summary_early_late_ratio_and_largest_median(pi):
    t = md_table(pi[2], "network", "15-85 spread, first 10 steps")
    assert row(t, "NSM 784-300-300-300-10") == ["NSM 784-300-300-300-10", "2.000", "0.500",
                                                "0.25", "3.000"]
    assert row(t, "StNN 784-300-300-300-10")[1:] == ["-"] * 4  # fewer than 20 steps


def test_spread_changes_with_the_trace():
    assert nsm._spread(_trace(1.0, 3.0, peak=0.5)) == ["1.000", "3.000", "3.00", "0.500"]
    assert nsm._spread([]) == ["-"] * 4


def test_data_init_table_when_the_nsm_recorded_one(pi):
    assert md_table(pi[2], "layer", "mean") == [["layer", "mean", "std"],
                                                ["layer1", "1.23e-04", "0.999"]]


def test_pi_mnist_metrics_json_and_figures(pi):
    cfg, result, md = pi
    saved = json.loads((cfg.out / "metrics.json").read_text())
    assert saved["experiment"] == "nsm-pi-mnist" and saved["rows"] == ROWS_PI
    assert saved["paper"] == papers.NSM_PI_MNIST
    assert (saved["epochs"], saved["samples"], saved["seed"]) == (3, 7, 2)
    assert saved["train"]["nsm"] == {"job": "train-nsm", "epochs": 3, "train_seconds": 600.0,
                                     "final_one_pass_test_accuracy": 0.92}
    assert saved["figures"] == {"fig2": "figures/fig2-percentiles.png",
                                "curves": "figures/one-pass-error.png"}
    assert assert_links_resolve(md, cfg.out) == ["figures/fig2-percentiles.png",
                                                 "figures/one-pass-error.png"]
    assert md.startswith("# Paper 002, Table 1 and Fig. 2: NSM on PI-MNIST\n")
    assert result["terminal_table"].splitlines()[0].split()[:2] == ["network", "error"]
    assert "+0.14" in result["terminal_table"]


def test_curves_are_the_one_pass_error_per_epoch_in_percent():
    curves = nsm._curves(_trained(("nsm", "dcnn"), epochs=2))
    assert list(curves) == ["NSM 784-300-300-300-10", "dCNN"]
    for values in curves.values():
        assert values == pytest.approx([10.0, 9.0])


def test_mnist_conv_table_2_and_no_vote_error_for_the_deterministic_net(tmp_path):
    cfg = MnistConvConfig(out=tmp_path, epochs=1)
    rows = {"dcnn": {"error": 0.0101}, "bnsm": {"error": 0.00723, "vote_error": 0.008,
                                                "single_pass_error": 0.0125}}
    result = nsm.write_mnist_conv(cfg, _trained(("dcnn", "bnsm"), seconds=90.0), rows,
                                  papers.NSM_MNIST_CONV)
    md = (tmp_path / "report.md").read_text()
    t = md_table(md, "network", "error")
    assert row(t, nsm.NAMES["dcnn"]) == [nsm.NAMES["dcnn"], "1.01", "0.88", "+0.13", "-", "-"]
    assert row(t, nsm.NAMES["bnsm"]) == [nsm.NAMES["bnsm"], "0.72", "0.775", "-0.05", "0.80",
                                         "1.25"]
    assert "(paper: 200; 2 CPU cores here, 3 min" in md
    assert result["experiment"] == "nsm-mnist-conv"
    assert assert_links_resolve(md, tmp_path) == ["figures/one-pass-error.png"]


def test_scale_invariance_table_one_row_per_network(tmp_path):
    cfg = ScaleInvarianceConfig(out=tmp_path, epochs=1)
    rows = {"nsm-nobias": {"x1": {"error": 0.02}, "weights": {"error": 0.02},
                           "weights+biases": {"error": 0.02}},
            "relu": {"x1": {"error": 0.019}, "weights": {"error": 0.5},
                     "weights+biases": {"error": 0.61234}}}
    result = nsm.write_scale_invariance(cfg, _trained(("nsm-nobias", "relu")), rows)
    t = md_table((tmp_path / "report.md").read_text(), "network", "error x1")
    assert t[1:] == [[nsm.NAMES["nsm-nobias"], "2.00", "2.00", "2.00"],
                     [nsm.NAMES["relu"], "1.90", "50.00", "61.23"]]
    saved = json.loads((tmp_path / "metrics.json").read_text())
    assert saved["experiment"] == "nsm-scale-invariance" and saved["rows"] == rows
    assert "paper" not in saved and result["rows"] == rows
