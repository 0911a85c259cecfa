"""report/scann.py: Table I's precision and entropy tables (ours beside the paper's, the gap in
points), a row's figures, write_table1's summary cells and metrics.json (through saved job
files and the synthetic IDX dataset of tests/conftest.py), and ``synsample sample``'s report
(an in-memory synthetic Dataset)."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib.pyplot as plt
import pytest
import torch

from synsample import data, metrics, papers
from synsample.checkpoint import save_deterministic
from synsample.experiments.scann_table1 import Table1Config
from synsample.prediction import Prediction
from synsample.report.markdown import text_table
from synsample.report.scann import (
    _label,
    _vs,
    entropy_table,
    precision_table,
    row_figures,
    write_sample_report,
    write_table1,
)
from tests.report.inputs import assert_links_resolve, assert_png, md_table, row

CLASSES = ("a", "b", "c", "d")


def synthetic_prediction(labels: torch.Tensor, wrong: int, method: str = "scann"
                         ) -> Prediction:
    """Votes of 10 passes: the first ``wrong`` items' plurality on the next class (6 votes,
    the true class 4), the others on the true class (7, and 3 two classes on)."""
    n = len(labels)
    votes = torch.zeros(n, 4, dtype=torch.int64)
    idx = torch.arange(n)
    bad = idx < wrong
    votes[idx[bad], (labels[bad] + 1) % 4] = 6
    votes[idx[bad], labels[bad]] = 4
    votes[idx[~bad], labels[~bad]] = 7
    votes[idx[~bad], (labels[~bad] + 2) % 4] = 3
    one = torch.nn.functional.one_hot(labels, 4)  # the first pass: every item right
    return Prediction(votes=votes, mean_probs=votes.double() / 10, samples=10,
                      votes_at={1: one}, random_bits=2_500_000_000, seconds=12.4,
                      info={"method": method})


def _summary(**kw) -> dict:
    s = {"samples": 100, "accuracy": 0.95123, "second_choice_accuracy": 0.03456,
         "top2_accuracy": 0.98567, "single_pass_accuracy": 0.87654, "mean_entropy": 0.1234567,
         "mean_information": 1.8765432, "random_bits": 3_456_000_000, "sampling_seconds": 61.6,
         "mean_entropy_correct": 0.1, "mean_entropy_incorrect": 0.87654, "high_entropy_items": 7,
         "error_rate_high_entropy": 0.42857, "second_choice_right_when_first_wrong": 0.66667,
         "mean_passes_per_item": 100.0}
    return {**s, **kw}


def test_precision_labels():
    assert [_label(p) for p in ("full", "8", "4", "2")] == [
        "full precision", "8-bit coins", "4-bit coins", "2-bit coins"]


def test_precision_table_cells_beside_the_papers_with_the_gap_in_points():
    paper = papers.SCANN_TABLE1[("mnist", "mlp")]
    t = md_table(precision_table({"full": _summary(), "4": _summary(accuracy=0.9)}, paper),
                 "coins")
    assert t[0] == ["coins", "first choice", "paper", "diff (pts)", "second choice", "top-2",
                    "one pass", "mean H (bits)", "mean I (bits)", "random bits", "time"]
    assert row(t, "full precision") == ["full precision", "95.12%", "94.4%", "+0.72", "3.5%",
                                        "98.6%", "87.7%", "0.123", "1.877", "3.46 G", "62 s"]
    assert row(t, "4-bit coins")[1:4] == ["90.00%", "93.7%", "-3.70"]


def test_precision_table_without_the_paper_or_a_precision_it_lacks():
    t = md_table(precision_table({"2": _summary()}, None), "coins")
    assert t[1][:4] == ["2-bit coins", "95.12%", "-", "-"]
    t = md_table(precision_table({"2": _summary()}, {"full": 94.4}), "coins")
    assert t[1][2:4] == ["-", "-"]


def test_precision_table_adds_passes_per_item_when_sampling_stopped_early():
    t = md_table(precision_table({"full": _summary(mean_passes_per_item=37.4),
                                  "8": _summary()}, None), "coins")
    assert t[0][-1] == "passes per item (adaptive)"
    assert [r[-1] for r in t[1:]] == ["37", "100"]
    assert "passes per item" not in precision_table({"full": _summary()}, None)


def test_entropy_table_cells():
    t = md_table(entropy_table({"8": _summary(), "4": _summary(
        mean_entropy_correct=None, error_rate_high_entropy=None,
        second_choice_right_when_first_wrong=None)}), "coins")
    assert row(t, "8-bit coins") == ["8-bit coins", "0.100", "0.877", "7", "42.9%", "66.7%"]
    assert row(t, "4-bit coins") == ["4-bit coins", "-", "0.877", "7", "-", "-"]


@pytest.mark.parametrize(("ours", "paper", "text"), [
    (0.95123, 94.4, "95.12% (94.4, +0.7)"), (0.9, 93.7, "90.00% (93.7, -3.7)"),
    (0.9123, None, "91.23%")])
def test_summary_cell_is_ours_then_the_paper_and_the_difference(ours, paper, text):
    assert _vs(ours, paper) == text


def test_row_figures_per_precision_relative_to_the_folder(tmp_path):
    labels = torch.arange(24) % 4
    preds = {"full": synthetic_prediction(labels, wrong=5),
             "4": synthetic_prediction(labels, wrong=8)}
    figs = row_figures("synthetic-mlp", tmp_path, CLASSES, labels, labels.clone(), preds,
                       torch.zeros(24, 1, 8, 8, dtype=torch.uint8), 0.9)
    assert figs == {"confusion": "figures/synthetic-mlp-confusion.png",
                    "confusion_4": "figures/synthetic-mlp-confusion_4.png",
                    "accuracy_vs_samples": "figures/synthetic-mlp-accuracy-vs-samples.png",
                    "misclassified": "figures/synthetic-mlp-misclassified.png",
                    "entropy": "figures/synthetic-mlp-entropy.png"}
    for path in figs.values():
        assert_png(tmp_path / path)
    assert plt.get_fignums() == []


def _table1_inputs(synthetic: Path, tmp_path: Path):
    """Job files as the scANN jobs leave them (deterministic predictions of the 200 test
    items, two sampled Predictions of the first 40) and the row the experiment builds."""
    test = data.load("synthetic", "test", path=str(synthetic))
    jobs = tmp_path / "jobs"
    det_pred = test.labels.clone()
    det_pred[:10] = (det_pred[:10] + 1) % 4  # 190 of 200 right
    save_deterministic(jobs / "train-synthetic", torch.nn.functional.one_hot(det_pred, 4).float(),
                       test.labels)
    from synsample.io import write_json

    write_json(jobs / "train-synthetic" / "config.json", {"kind": "train", "dropout": 0.2})
    labels = test.labels[:40]
    preds = {"full": synthetic_prediction(labels, wrong=2),   # 95% right
             "4": synthetic_prediction(labels, wrong=4)}      # 90% right
    for p, pred in preds.items():
        pred.save(jobs / f"sample-{p}" / "prediction.safetensors")
    summaries = {p: metrics.summarize(pred, labels) for p, pred in preds.items()}
    r = {"dataset": "synthetic", "arch": "mlp", "network": "MLP 64-400-4",
         "train": {"classes": list(CLASSES), "deterministic_accuracy": 0.95, "epochs": 2,
                   "train_seconds": 12.0, "history": [{"loss": 0.9}, {"loss": 0.123456}],
                   "job": "train-synthetic"},
         "train_job": "train-synthetic", "sample_jobs": {p: f"sample-{p}" for p in preds},
         "sampled": summaries, "paper": papers.SCANN_TABLE1[("mnist", "mlp")]}
    cfg = Table1Config(out=tmp_path / "out", data_path=str(synthetic), precisions=("full", "4"),
                       samples=10, limit=40)
    return cfg, r, jobs


def test_write_table1_cells_metrics_and_figures(synthetic, tmp_path):
    cfg, r, jobs = _table1_inputs(synthetic, tmp_path)
    result = write_table1(cfg, [r], jobs)
    md = (cfg.out / "report.md").read_text()
    header = ["row", "standard", "scANN full precision", "scANN 4-bit coins"]
    t = md_table(md, "row", "standard")
    assert t == [header, ["synthetic MLP 64-400-4", "95.00% (97.7, -2.7)",
                          "95.00% (94.4, +0.6)", "90.00% (93.7, -3.7)"]]
    saved = json.loads((cfg.out / "metrics.json").read_text())
    m = saved["rows"][0]
    assert m["scann_accuracy"] == {"full": 0.95, "4": 0.9}
    assert m["difference_points"] == pytest.approx({"deterministic": 95.0 - 97.7,
                                                    "full": 95.0 - 94.4, "4": 90.0 - 93.7})
    assert m["deterministic_accuracy"] == 0.95 and m["paper_epochs"] == 100
    assert m["samples"] == 10 and saved["config"]["out"] == str(cfg.out)
    assert saved == {k: v for k, v in json.loads(json.dumps(result, default=str)).items()
                     if k != "terminal_table"}
    assert result["terminal_table"] == text_table(header, [t[1]])
    # the row's section: training, the precision table, every figure
    assert ("Trained 2 epochs (paper: 100) at dropout 0.2 in 12 s; final training loss 0.1235. "
            "Deterministic test accuracy **95.00%** (paper 97.7%).") in md
    assert row(md_table(md, "coins"), "4-bit coins")[1:4] == ["90.00%", "93.7%", "-3.70"]
    links = assert_links_resolve(md, cfg.out)
    assert set(links) == {f"figures/synthetic-mlp-{k}.png" for k in (
        "confusion", "confusion_4", "accuracy-vs-samples", "entropy", "misclassified")}
    assert set(m["figures"].values()) == set(links)
    assert "![confusion matrices, 4-bit coins](figures/synthetic-mlp-confusion_4.png)" in md


def test_write_sample_report_numbers_prediction_and_cost(tmp_path):
    from tests.report.inputs import synthetic_cost

    labels = torch.arange(40) % 4
    test = data.Dataset(name="synthetic", split="test",
                        images=torch.zeros(40, 1, 8, 8, dtype=torch.uint8), labels=labels,
                        classes=CLASSES)
    pred = synthetic_prediction(labels, wrong=6, method="nsm")  # 85% right
    det = labels.clone()
    det[:5] = (det[:5] + 2) % 4  # 87.5% right
    out = tmp_path / "sample"
    result = write_sample_report(out, Path("runs/synthetic-ck"),
                                 {"dataset": "synthetic", "arch": "mlp", "history": [{}] * 3},
                                 "4", pred, test, det, reference="one sampled pass",
                                 cost=synthetic_cost())
    md = (out / "report.md").read_text()
    saved = json.loads((out / "metrics.json").read_text())
    assert saved["deterministic_accuracy"] == result["deterministic_accuracy"] == 0.875
    assert saved["sampled"]["accuracy"] == 0.85 and saved["epochs"] == 3
    assert saved["method"] == "nsm" and saved["reference"] == "one sampled pass"
    assert md.startswith("# nsm sampling of `runs/synthetic-ck`")
    assert "Accuracy of the one sampled pass: **87.50%**." in md
    assert "10 passes, shared mode, seed 0." in md
    assert md_table(md, "coins")[1][:4] == ["4-bit coins", "85.00%", "-", "-"]
    assert "## Cost per inference" in md and saved["cost"]["memory_bytes"] == 3072.0
    assert torch.equal(Prediction.load(out / "prediction.safetensors").votes, pred.votes)
    assert set(assert_links_resolve(md, out)) == set(saved["figures"].values())
    assert "synthetic-mlp-4-confusion.png" in saved["figures"]["confusion"]


def test_write_sample_report_without_cost_has_no_cost_section(tmp_path):
    labels = torch.arange(8) % 4
    test = data.Dataset(name="synthetic", split="test",
                        images=torch.zeros(8, 1, 8, 8, dtype=torch.uint8), labels=labels,
                        classes=CLASSES)
    result = write_sample_report(tmp_path, Path("ck"), {"dataset": "synthetic", "arch": "mlp"},
                                 "full", synthetic_prediction(labels, wrong=0), test, labels)
    assert "cost" not in result and result["epochs"] == 0
    assert "Cost per inference" not in (tmp_path / "report.md").read_text()
    assert "misclassified" not in result["figures"]

