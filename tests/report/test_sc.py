"""report/sc.py (paper 003): Figure 6's tables from the grid's cells (each cell found by its
network, states, method, trained and inferred length), the rows beside the paper's stated
accuracies with the gap, the energy table from counted stream bits, metrics.json, the figure,
from hand-made cells (synthetic accuracies)."""

from __future__ import annotations

import json

import pytest

from synsample import papers
from synsample.experiments.sc import SCConfig
from synsample.report import sc
from tests.report.inputs import assert_links_resolve, md_table, row


def _cell(method: int, trained: int | None, length: int | None, acc: float,
          vote: float | None = None, net: str = "sc-mlp", states: int = 5) -> dict:
    return {"network": net, "states": states, "method": method, "trained_length": trained,
            "length": length, "accuracy": acc, "vote_accuracy": acc if vote is None else vote}


#: the grid of one network at 5 states and L in (100, 400), as the experiment's plan makes it
CELLS = [_cell(1, None, None, 0.9012), _cell(1, None, 100, 0.8534), _cell(1, None, 400, 0.8876),
         _cell(2, 100, None, 0.9101), _cell(2, 100, 100, 0.9050, 0.9312),
         _cell(2, 400, None, 0.9222), _cell(2, 400, 400, 0.9400, 0.9511)]

ENERGY = [{"network": "sc-mlp", "length": 100, "stream_bits": 1_234_567.0,
           "energy_nj": {"mtj": 24.69134, "lfsr": 12.345675}, "paper_nj": None,
           "accuracy": {5: 0.905}},
          {"network": "sc-mlp", "length": 1024, "stream_bits": 12_641_966.0,
           "energy_nj": {"mtj": 252.8, "lfsr": 126.4}, "paper_nj": "~2100",
           "accuracy": {5: None}}]


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    cfg = SCConfig(out=tmp_path_factory.mktemp("sc") / "out", networks=("sc-mlp",),
                   states=(5,), lengths=(100, 400), epochs=2, samples=8, seed=1)
    trained = {"sc-mlp/5/1/None": {"train_seconds": 1800.0},
               "sc-mlp/5/2/100": {"train_seconds": 600.0}}
    result = sc.write(cfg, CELLS, trained, ENERGY)
    return cfg, result, (cfg.out / "report.md").read_text()


def test_figure_6_table_methods_without_and_with_sc_by_length(written):
    t = md_table(written[2], "training / inference")
    assert t == [["training / inference", "L = 100", "L = 400"],
                 ["Method 1 (no SC) / without SC", "90.12", "90.12"],
                 ["Method 1 (no SC) / with SC", "85.34", "88.76"],
                 ["Method 2 (SC at L) / without SC", "91.01", "92.22"],
                 ["Method 2 (SC at L) / with SC", "90.50", "94.00"],
                 ["Method 2 / with SC, vote of the passes", "93.12", "95.11"]]
    assert "## Figure 6: 784-128-10, 5 states" in written[2]


def test_a_cell_not_run_is_a_dash():
    cfg = SCConfig(lengths=(100, 200))
    _, rows = sc._grid_table(cfg, CELLS, "sc-mlp", 5)
    assert [r[2] for r in rows] == ["90.12", "-", "-", "-", "-"]
    _, rows = sc._grid_table(cfg, CELLS, "sc-mlp", 11)
    assert all(c == "-" for r in rows for c in r[1:])


def test_rows_beside_the_papers_best_and_its_100_bit_bound(written):
    t = md_table(written[2], "network", "states", "L", "paper (%)")
    best = [k for k in papers.SC_BEST if k[0] == "sc-mlp" and k[1] == 5]
    assert best == [("sc-mlp", 5, 400)]
    assert row(t, "784-128-10") == ["784-128-10", "5", "400", "93.68", "94.00", "+0.32", "88.76"]
    at_100 = [r for r in t[1:] if r[2] == "100"]
    assert at_100 == [["784-128-10", "5", "100", ">= 92", "90.50", "-1.50", "85.34"],
                      ["784-392-196-98-10", "5", "100", ">= 96", "-", "-", "-"]]
    # the paper's other best rows, not run here, are listed with dashes
    assert row(t, "784-128-10", 1) == ["784-128-10", "11", "500", "94.48", "-", "-", "-"]
    assert len(t) - 1 == len(papers.SC_BEST) + len(papers.SC_AT_100)


def test_energy_table_counted_bits_times_each_sources_energy(written):
    t = md_table(written[2], "network", "L", "stream bits per inference (counted)")
    assert t[0] == ["network", "L", "stream bits per inference (counted)",
                    "mtj (20 fJ/bit), nJ", "lfsr (10 fJ/bit), nJ", "paper (nJ)",
                    "accuracy, 5 states (%)"]
    assert t[1:] == [["784-128-10", "100", "1,234,567", "24.7", "12.3", "-", "90.50"],
                     ["784-128-10", "1024", "12,641,966", "252.8", "126.4", "~2100", "-"]]


def test_setup_sentence_states_the_run(written):
    md = written[2]
    assert "2 epochs, seed 1 (40 min of training in all on this machine)" in md
    assert "averaged over 8 passes (shared mode)" in md and "ideal bitstreams" in md


def test_metrics_json_holds_the_cells_and_the_energy(written):
    cfg, result, md = written
    saved = json.loads((cfg.out / "metrics.json").read_text())
    assert saved["experiment"] == "sc-mnist" and saved["cells"] == CELLS
    assert saved["lengths"] == [100, 400] and saved["states"] == [5]
    assert saved["energy_fj_per_bit"] == {"mtj": 20.0, "lfsr": 10.0}
    assert saved["energy"][0]["stream_bits"] == 1_234_567.0
    assert assert_links_resolve(md, cfg.out) == ["figures/fig6-accuracy.png"]


def test_terminal_table_one_line_per_network_states_and_row(written):
    lines = written[1]["terminal_table"].splitlines()
    assert lines[0].split()[:4] == ["network", "states", "training", "/"]
    body = lines[2:]
    assert len(body) == 5 and all(line.startswith("784-128-10") for line in body)
    assert body[3].split()[-2:] == ["90.50", "94.00"]
