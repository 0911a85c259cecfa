"""report/robustness.py: catch_up (the first K at which a precision reaches full precision's
accuracy at the reference K), the sweep tables (mean ± std between device draws, None as a
dash), non-idealities not swept, the precision x K table with its catch-up column,
metrics.json and figures; hand-made sweep points (synthetic numbers)."""

from __future__ import annotations

import json

import pytest

from synsample.experiments.robustness import RobustnessConfig
from synsample.report.robustness import _cell, catch_up, write
from tests.report.inputs import assert_links_resolve, md_table, row


def _pt(acc, entropy, auroc, std=None) -> dict:
    p = {"accuracy": acc, "mean_entropy": entropy, "auroc": auroc}
    if std is not None:
        p.update(accuracy_std=std, mean_entropy_std=std / 10, auroc_std=std, draws=3)
    return p


def _curve(**acc) -> dict:
    return {"accuracy_vs_samples": {k[1:]: v for k, v in acc.items()}}


SWEEPS = {"mnist": {"bias": [_pt(0.95, 0.2, 0.9), _pt(0.9012, 0.3456, None)],
                    "stuck": [_pt(0.95, 0.2, 0.9), _pt(0.91234, 0.25, 0.8, std=0.00456)]},
          "fashion-mnist": {"bias": [_pt(0.85, 0.4, 0.7), _pt(0.8, 0.5, 0.65)],
                            "stuck": [_pt(0.85, 0.4, 0.7), _pt(0.7, 0.6, 0.6, std=0.01)]}}
GRIDS = {"mnist": {"full": _curve(k1=0.8, k2=0.9, k10=0.95),
                   "4": _curve(k1=0.7, k2=0.85, k10=0.91),
                   "2": _curve(k1=0.5, k2=0.6)}}

#: the smallest sweep: one bias point
ONE_POINT, ONE_SWEEP = {"bias": (0.0,)}, {"mnist": {"bias": [_pt(0.9, 0.1, 0.8)]}}


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    cfg = RobustnessConfig(out=tmp_path_factory.mktemp("robustness") / "out",
                           datasets=("mnist", "fashion-mnist"), samples=50, seed=4,
                           nonidealities={"bias": (0.0, 0.1), "stuck": (0.0, 0.25),
                                          "drift": (0.0, 0.05, 0.1)},
                           sample_counts=(10, 1, 2), reference_k=2, device_draws=3)
    result = write(cfg, SWEEPS, GRIDS, "MLP 784-400-10 (synthetic)")
    return cfg, result, (cfg.out / "report.md").read_text()


def test_catch_up_is_the_first_k_reaching_full_precision_at_the_reference():
    assert catch_up(GRIDS["mnist"], 2) == {"full": 2, "4": 10, "2": None}
    assert catch_up(GRIDS["mnist"], 1) == {"full": 1, "4": 2, "2": None}


def test_catch_up_orders_k_as_numbers_not_as_text():
    grid = {"full": _curve(k2=0.9, k10=0.95), "4": _curve(k10=0.97, k2=0.96, k100=0.99)}
    assert catch_up(grid, 10) == {"full": 10, "4": 2}


def test_catch_up_counts_an_equal_accuracy_as_reached():
    assert catch_up({"full": _curve(k5=0.9), "8": _curve(k1=0.89, k5=0.9)}, 5)["8"] == 5


def test_cell_is_the_value_with_its_spread_between_draws():
    assert _cell(_pt(0.91234, 0, 0, std=0.00456), "accuracy") == "91.23 ± 0.46"
    assert _cell(_pt(0.9, 0.34567, 0), "mean_entropy", 1.0, 3) == "0.346"
    assert _cell(_pt(0.9, 0, None), "auroc") == "-"


def test_sweep_tables_per_non_ideality_dataset_and_measure(written):
    md = written[2]
    assert "## Bias of every coin (added to P(1))" in md
    t = md_table(md, "dataset", "measure", "0", "0.1")
    assert t[1:4] == [["mnist", "accuracy", "95.00", "90.12"],
                      ["mnist", "mean vote entropy (bits)", "0.200", "0.346"],
                      ["mnist", "OoD AUROC", "90.00", "-"]]
    assert row(t, "fashion-mnist")[2:] == ["85.00", "80.00"]
    stuck = md_table(md, "dataset", "measure", "0", "0.25")
    assert stuck[1] == ["mnist", "accuracy", "95.00", "91.23 ± 0.46"]
    assert stuck[2] == ["mnist", "mean vote entropy (bits)", "0.200", "0.250 ± 0.000"]


def test_a_non_ideality_without_results_is_named_as_not_swept(written):
    cfg, _, md = written
    assert "Not swept for scann: drift (its coins are drawn per item" in md
    assert "Drift of P(1)" not in md and not (cfg.out / "figures" / "drift.png").exists()


def test_precision_table_with_the_catch_up_column(written):
    t = md_table(written[2], "bits")
    assert t == [["bits", "K = 1", "K = 2", "K = 10", "K to match full @ 2"],
                 ["full", "80.00", "90.00", "95.00", "2"],
                 ["4", "70.00", "85.00", "91.00", "10"],
                 ["2", "50.00", "60.00", "-", "-"]]


def test_the_catch_up_column_follows_the_values(tmp_path):
    cfg = RobustnessConfig(out=tmp_path, nonidealities=ONE_POINT, sample_counts=(1, 2),
                           reference_k=2)
    grids = {"mnist": {"full": _curve(k1=0.8, k2=0.9), "2": _curve(k1=0.95, k2=0.96)}}
    write(cfg, ONE_SWEEP, grids, "net")
    t = md_table((tmp_path / "report.md").read_text(), "bits")
    assert [r[-1] for r in t[1:]] == ["2", "1"]


def test_intro_states_the_run_and_sampling_aware_training(written, tmp_path):
    md = written[2]
    assert md.startswith("# Robustness of scann to imperfect devices, and precision against "
                         "samples\n")
    assert "scann, MLP 784-400-10 (synthetic), on each dataset, 50 passes (shared mode), seed 4" \
        in md
    assert "mean over 3 draws of the devices" in md and "trained through" not in md
    cfg = RobustnessConfig(out=tmp_path, nonidealities=ONE_POINT, sample_counts=(2,),
                           reference_k=2, sampling_aware="4")
    write(cfg, ONE_SWEEP, {"mnist": {"full": _curve(k2=0.9)}}, "net")
    assert "net trained through `4` coins (sampling-aware, issue 20)" in (
        tmp_path / "report.md").read_text()


def test_metrics_json_and_figures(written):
    cfg, result, md = written
    saved = json.loads((cfg.out / "metrics.json").read_text())
    assert saved["catch_up"] == {"mnist": {"full": 2, "4": 10, "2": None}}
    assert saved["sweeps"] == SWEEPS and saved["precision_grid"] == GRIDS
    assert saved["nonidealities"] == {"bias": [0.0, 0.1], "stuck": [0.0, 0.25],
                                      "drift": [0.0, 0.05, 0.1]}
    assert (saved["method"], saved["samples"], saved["sampling_aware"]) == ("scann", 50, None)
    assert assert_links_resolve(md, cfg.out) == ["figures/bias.png", "figures/stuck.png",
                                                 "figures/precision-vs-samples.png"]


def test_terminal_table_accuracy_rows_padded_to_the_widest_sweep(written):
    lines = written[1]["terminal_table"].splitlines()
    assert lines[0].split() == ["non-ideality", "dataset", "measure", "#1", "#2", "#3"]
    body = [line.split() for line in lines[2:]]
    assert body == [["bias", "mnist", "accuracy", "95.00", "90.12", "-"],
                    ["bias", "fashion-mnist", "accuracy", "85.00", "80.00", "-"],
                    ["stuck", "mnist", "accuracy", "95.00", "91.23", "±", "0.46", "-"],
                    ["stuck", "fashion-mnist", "accuracy", "85.00", "70.00", "±", "1.00", "-"]]


def test_the_precision_grid_alone_is_reported(tmp_path):
    cfg = RobustnessConfig(out=tmp_path, nonidealities={}, sample_counts=(1, 2), reference_k=2)
    cfg.check()
    result = write(cfg, {"mnist": {}}, {"mnist": {"full": _curve(k1=0.8, k2=0.9)}}, "net")
    assert result["catch_up"] == {"mnist": {"full": 2}}
    assert result["terminal_table"].splitlines()[0].split()[:3] == ["dataset", "bits", "K"]
    assert result["terminal_table"].splitlines()[2].split() == ["mnist", "full", "80.00", "90.00",
                                                                "2"]
