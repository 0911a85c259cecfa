"""report/costs.py: the cross-method cost table (accuracy, AUROC on the other dataset and on
Gaussian noise, energy, random bits, memory), the energy breakdown by group (adding up to the
inference's energy), the assumption prices with their sources, metrics.json, the figure; rows
shaped like the experiment's (metrics and cost results with synthetic numbers)."""

from __future__ import annotations

import json

import pytest

from synsample.experiments.costs import CostsConfig
from synsample.hardware.assumptions import OPERATIONS, TECHNOLOGIES, CostAssumptions
from synsample.report import costs
from tests.report.inputs import assert_links_resolve, md_table, row, synthetic_cost

SCORE = "vote-entropy"


def _metrics(accuracy: float, other: float | None, gaussian: float | None) -> dict:
    ood = {name: {"by_score": {SCORE: {"auroc": a}, "other-score": {"auroc": 0.0}}}
           for name, a in (("other", other), ("gaussian-noise", gaussian)) if a is not None}
    return {"summary": {"accuracy": accuracy}, "ood": ood}


ROWS = [
    {"label": "scANN, MLP", "method": "scann", "randomness": "8-bit coins (CMOS)",
     "metrics": _metrics(0.95123, 0.87654, 0.99), "cost": synthetic_cost()},
    {"label": "SpinBayes, LeNet-5", "method": "spinbayes", "randomness": "SOT-MTJ arbiter",
     "metrics": _metrics(0.9876, None, 0.5),
     "cost": synthetic_cost({"mac": (1000.0, 4.6), "crossbar_read": (2000.0, 4.71),
                             "averaging": (10.0, 18.42), "compare": (90.0, 0.01),
                             "random bits (sot-mtj)": (30.0, 3.8)}, memory_bytes=1536.0)}]


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    cfg = CostsConfig(out=tmp_path_factory.mktemp("costs") / "out", samples=20, ood_items=300)
    result = costs.write(cfg, ROWS, SCORE)
    return cfg, result, (cfg.out / "report.md").read_text()


@pytest.mark.parametrize("component", [*OPERATIONS, *(f"random bits ({t})" for t in TECHNOLOGIES),
                                       "weight bits read"])
def test_every_component_the_cost_model_prices_has_a_group(component):
    group = costs._group(component)
    assert group in ("arithmetic", "crossbars", "random bits", "weight reads")
    assert (group == "random bits") == component.startswith("random bits")


def test_main_table_one_row_per_method(written):
    t = md_table(written[2], "method", "randomness", "accuracy %")
    assert t[0] == ["method", "randomness", "accuracy %", "AUROC Fashion-MNIST", "AUROC Gaussian",
                    "nJ / inference", "nJ / sample", "random bits / inference", "weights KiB"]
    assert row(t, "scANN, MLP") == ["scANN, MLP", "8-bit coins (CMOS)", "95.12", "87.65",
                                    "99.00", "9.8", "0.48", "50,000", "3.0"]
    spin = row(t, "SpinBayes, LeNet-5")
    assert spin[2:5] == ["98.76", "-", "50.00"]  # no AUROC on a set not run
    assert spin[5] == f"{ROWS[1]['cost']['per_inference']['energy_nj']:,.1f}" == "14.3"
    assert spin[7:] == ["30", "1.5"]


def test_auroc_column_names_the_other_dataset(tmp_path):
    cfg = CostsConfig(out=tmp_path, dataset="fashion-mnist")
    result = costs.write(cfg, ROWS[:1], SCORE)
    assert md_table((tmp_path / "report.md").read_text(), "method")[0][3] == "AUROC MNIST"
    assert "AUROC MNIST" in result["terminal_table"].splitlines()[0]


def test_breakdown_groups_add_up_to_the_inference(written):
    t = md_table(written[2], "method", "randomness", "arithmetic")
    assert t[0][2:] == ["arithmetic", "crossbars", "random bits", "weight reads"]
    assert row(t, "scANN, MLP")[2:] == ["9.2", "0.0", "0.5", "0.1"]
    spin = row(t, "SpinBayes, LeNet-5")
    assert spin[2:] == ["4.6", "9.6", "0.1", "0.0"]
    for r, cells in zip(ROWS, t[1:], strict=True):
        total = r["cost"]["per_inference"]["energy_nj"]
        assert sum(float(c) for c in cells[2:]) == pytest.approx(total, abs=0.2)


def test_summary_numbers_in_metrics_json(written):
    cfg, result, _ = written
    saved = json.loads((cfg.out / "metrics.json").read_text())
    s = saved["rows"][1]
    assert (s["label"], s["method"], s["randomness"]) == ("SpinBayes, LeNet-5", "spinbayes",
                                                         "SOT-MTJ arbiter")
    assert s["accuracy"] == 0.9876 and s["auroc"] == {"other": None, "gaussian-noise": 0.5}
    assert s["energy_nj"] == pytest.approx(14.3191)
    assert s["groups_nj"] == pytest.approx({"arithmetic": 4.6009, "crossbars": 9.6042,
                                            "random bits": 0.114})
    assert s["random_bits"] == 30.0 and s["memory_kib"] == 1.5
    assert saved["assumptions"] == CostAssumptions().as_dict()
    assert (saved["experiment"], saved["dataset"], saved["samples"]) == ("costs", "mnist", 20)


def test_intro_and_assumption_prices_with_sources(written):
    cfg, _, md = written
    assert f"{SCORE} of the test items against 300 out-of-distribution items" in md
    assert "over 16 test items in independent mode" in md
    assert "*synsample defaults*" in md and "real numbers at 32 bits" in md
    a = cfg.assumptions
    t = md_table(md, "item", "pJ")
    assert row(t, "mac") == ["mac", "4.6", a.sources["mac"]]
    assert row(t, "random bit (sot-mtj)") == ["random bit (sot-mtj)", "3.8",
                                              a.sources["sot-mtj"]]
    assert row(t, "weight bit read")[1] == "0.1562"
    assert len(t) - 1 == len(a.pj_per_op) + len(a.pj_per_random_bit) + 1


def test_figure_and_terminal_table(written):
    cfg, result, md = written
    assert assert_links_resolve(md, cfg.out) == ["figures/accuracy-vs-energy.png"]
    lines = result["terminal_table"].splitlines()
    assert lines[0].split()[:3] == ["method", "randomness", "acc"]
    assert lines[2].split() == ["scANN,", "MLP", "8-bit", "coins", "(CMOS)", "95.12", "87.65",
                                "9.8", "50,000", "3.0"]
