"""report/evaluation.py: ``synsample evaluate``'s report from a hand-made result dict shaped
like evaluate_model's (synthetic numbers): each table cell is the input formatted as the
report says, the T = 0.5 ratios sentence, the OoD rows (the best score named by its AUROC),
paper 004's rule under both readings, recalibration and conformal sections (from the metrics
functions on synthetic tensors), figures linked by relative paths, metrics.json = the input."""

from __future__ import annotations

import copy
import json

import matplotlib.pyplot as plt
import pytest
import torch

from synsample import metrics
from synsample.report.evaluation import _f, _ood_sets, write_evaluation
from tests.report.inputs import assert_links_resolve, md_table, row, synthetic_cost

SCORE = "vote-entropy"


def _rule(detected: float, rejected: float, all_passes: float, any_percent: float) -> dict:
    def one(q, d):
        return {"rule": f"reject if the {q} quantile of per-pass max probability < 90%",
                "detection_rate": d, "false_rejection_rate": rejected}
    return {**one("99%", detected), "readings": {"all-passes": one("99%", all_passes),
                                                 "any-percent": one("1%", any_percent)}}


def _detection(auroc: float) -> dict:
    return {"auroc": auroc, "aupr_in": auroc - 0.01, "aupr_out": auroc - 0.02,
            "fpr_at_95_tpr": 1.0 - auroc}


def synthetic_result() -> dict:
    """What evaluate_model returns, with synthetic numbers chosen to be told apart."""
    ratios = [{"T": t, "u_T": t, "n_cc": 100 + k, "n_cu": 10 + k, "n_ic": 5 + k, "n_iu": 20 + k,
               "R_cc": 0.9 + k / 100, "R_iu": 0.4 + k / 100, "UA": 0.8 + k / 100}
              for k, t in enumerate((0.0, 0.25, 0.5, 0.75, 1.0))]
    cal = {"accuracy": 0.9, "nll": 0.312345, "brier": 0.143219, "ece": 0.0123456,
           "l2_ece": 0.0234567, "mce": 0.1456789, "classwise_ece": 0.0087654,
           "adaptive_ece": 0.0111111, "bins": 15}
    return {
        "checkpoint": "runs/synthetic-ck", "method": "scann", "precision": "8",
        "dataset": "synthetic", "items": 200, "samples": 20, "mode": "shared", "seed": 3,
        "score": SCORE, "random_bits": 1000, "sampling_seconds": 1.5,
        "summary": {"accuracy": 0.91234, "top2_accuracy": 0.98123,
                    "single_pass_accuracy": 0.87654},
        "calibration": cal,
        "calibration_votes": {**cal, "nll": 0.4, "l2_ece": None},
        "reliability": [{"low": b / 15, "high": (b + 1) / 15, "count": 10 if b > 10 else 0,
                         "confidence": (b + 0.5) / 15 if b > 10 else None,
                         "accuracy": 0.8 if b > 10 else None} for b in range(15)],
        "mean_scores": {SCORE: {"correct": 0.123456, "incorrect": None},
                        "predictive-entropy": {"correct": 0.2, "incorrect": 0.9}},
        "ratios": ratios,
        "selective": {"aurc": 0.0123456, "augrc": 0.0045678,
                      "risk_at_coverage": {"0.8": 0.0125, "0.95": 0.05},
                      "coverage_at_risk": {"0.01": 0.75},
                      "curve": {"coverage": [0.5, 1.0], "risk": [0.0, 0.1]}},
        "per_class": [{"class": "a", "items": 50, "accuracy": 0.96, "mean_score": 0.1234,
                       "ece": None},
                      {"class": "b", "items": 0, "accuracy": None, "mean_score": None,
                       "ece": None}],
        "ood": {"gaussian-noise": {"items": 40, "source": "synthetic",
                                   "by_score": {SCORE: _detection(0.91234),
                                                "predictive-entropy": _detection(0.99)},
                                   "paper_004_rule": _rule(0.875, 0.015, 0.875, 1.0)},
                "noisy": {"items": 30, "source": "synthetic",
                          "by_score": {SCORE: _detection(0.7),
                                       "predictive-entropy": _detection(0.6)},
                          "paper_004_rule": _rule(0.25, 0.015, 0.25, 0.5)}},
        "ood_skipped": {"other": "not defined for synthetic"}}


def _synthetic_probs(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, 4, (n,), generator=g)
    logits = torch.randn(n, 4, generator=g) + 3.0 * torch.nn.functional.one_hot(labels, 4)
    return logits.softmax(1), labels


def with_recalibration_and_conformal(result: dict) -> dict:
    """The recalibration and conformal sections from the metrics functions, on synthetic
    probabilities (two readings, as evaluate_model gives them)."""
    cal, cal_y = _synthetic_probs(60, 1)
    test, test_y = _synthetic_probs(50, 2)
    ood, _ = _synthetic_probs(20, 3)
    ood_y = torch.full((20,), -1)
    recal = {name: metrics.recalibration_summary(cal, cal_y, test, test_y)
             for name in ("mean_probabilities", "vote_shares")}
    conformal = {name: metrics.conformal_summary(cal, cal_y, test, test_y,
                                                 {"gaussian-noise": (ood, ood_y),
                                                  "noisy": (test[:20], test_y[:20])},
                                                 seed=0)
                 for name in ("mean_probabilities", "vote_shares")}
    return {**result, "recalibration": recal, "conformal": conformal}


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    """The full report, written once: (folder, input, report text)."""
    out = tmp_path_factory.mktemp("evaluation") / "report"
    result = with_recalibration_and_conformal(synthetic_result())
    result["cost"] = synthetic_cost()
    given = copy.deepcopy(result)
    write_evaluation(out, result, torch.tensor([0.1, 0.2, 0.9]),
                     {"gaussian-noise": torch.tensor([1.0, 1.5]), "noisy": torch.tensor([0.5])})
    assert result == given  # the input is not changed
    return out, result, (out / "report.md").read_text()


def test_heading_and_run_line(written):
    _, _, md = written
    assert md.startswith("# Evaluation of `runs/synthetic-ck` with scann (8 precision)\n")
    assert "synthetic test set, 200 items; 20 passes, shared mode, seed 3." in md


def test_accuracy_cells_are_the_summary_as_percentages(written):
    assert md_table(written[2], "first choice") == [["first choice", "top-2", "one pass"],
                                                    ["91.23%", "98.12%", "87.7%"]]


def test_calibration_rows_for_mean_probabilities_and_vote_shares(written):
    t = md_table(written[2], "probabilities", "accuracy", "NLL (nats)")
    assert row(t, "mean probabilities") == ["mean probabilities", "90.00%", "0.3123", "0.1432",
                                            "0.0123", "0.0235", "0.1457", "0.0088", "0.0111"]
    assert row(t, "vote shares")[2] == "0.4000" and row(t, "vote shares")[5] == "-"


def test_without_vote_share_calibration_its_row_is_left_out(tmp_path):
    result = synthetic_result()
    result["calibration_votes"] = None
    write_evaluation(tmp_path, result, torch.tensor([0.1]), {})
    md = (tmp_path / "report.md").read_text()
    t = md_table(md, "probabilities", "accuracy", "NLL (nats)")
    assert [r[0] for r in t[1:]] == ["mean probabilities"]
    assert "## Cost per inference" not in md  # the result has no cost


def test_per_class_and_mean_score_tables(written):
    md = written[2]
    per = md_table(md, "class")
    assert per[0] == ["class", "items", "accuracy", f"mean {SCORE}", "ECE"]
    assert per[1:] == [["a", "50", "96.00%", "0.1234", "-"], ["b", "0", "-", "-", "-"]]
    scores = md_table(md, "score", "correct items")
    assert row(scores, SCORE) == [SCORE, "0.1235", "-"]
    assert row(scores, "predictive-entropy") == ["predictive-entropy", "0.2000", "0.9000"]


def test_ratio_sentence_reads_the_sweep_at_t_one_half(written):
    assert ("At T = 0.5: R_cc = 0.9200, R_iu = 0.4200, UA = 0.8200 (n_cc 102, n_cu 12, "
            "n_ic 7, n_iu 22).") in written[2]


def test_selective_prediction_columns_name_each_coverage_and_risk(written):
    t = md_table(written[2], "AURC")
    assert t == [["AURC", "AUGRC", "risk at 80% coverage", "risk at 95% coverage",
                  "coverage at 1% risk"], ["0.0123", "0.0046", "1.25%", "5.00%", "75.00%"]]


def test_ood_rows_show_the_reports_score_and_name_the_best_score(written):
    t = md_table(written[2], "OoD set")
    assert t[0][2] == f"AUROC ({SCORE})"
    assert row(t, "gaussian-noise") == ["gaussian-noise", "40", "0.9123", "0.9023", "0.8923",
                                        "0.0877", "87.50%", "predictive-entropy (0.9900)"]
    assert row(t, "noisy")[-1] == f"{SCORE} (0.7000)"


def test_paper_004_rule_sentence_and_both_readings(written):
    md = written[2]
    assert ("Paper 004's rule, as read here: reject if the 99% quantile of per-pass max "
            "probability < 90% (the per-pass max softmax probability, 1/100 resolution); it "
            "rejects 1.50% of the in-distribution test items.") in md
    t = md_table(md, "reading")
    assert t == [["reading", "in-distribution rejected", "gaussian-noise detected",
                  "noisy detected"],
                 ["all-passes", "1.50%", "87.50%", "25.00%"],
                 ["any-percent", "1.50%", "100.00%", "50.00%"]]


def test_skipped_ood_sets_are_listed_with_why(written):
    assert "- other: skipped (not defined for synthetic)" in written[2]


def test_recalibration_table_before_and_after_each_reading(written):
    _, result, md = written
    recal = result["recalibration"]
    assert f"fitted on {recal['mean_probabilities']['calibration_items']} held-out" in md
    t = md_table(md, "probabilities", "T")
    assert [(r[0], r[2]) for r in t[1:]] == [
        ("mean probabilities", "before"), ("mean probabilities", "after"),
        ("vote shares (Jeffreys-smoothed)", "before"), ("vote shares (Jeffreys-smoothed)",
                                                        "after")]
    m = recal["mean_probabilities"]
    assert t[1][1] == f"{m['temperature']:.3f}" and t[2][4] == f"{m['after']['nll']:.4f}"
    assert t[1][4] == f"{m['before']['nll']:.4f}"


def test_conformal_table_one_row_per_reading_score_and_alpha(written):
    out, result, md = written
    t = md_table(md, "probabilities", "score", "alpha")
    assert t[0][-2:] == ["gaussian-noise: size", "noisy: size"]
    assert len(t) - 1 == 2 * 3 * 2  # readings x (lac, aps, raps) x alphas
    e = result["conformal"]["mean_probabilities"]["by_score"]["aps"]["0.1"]
    got = [r for r in t[1:] if r[:3] == ["mean probabilities", "aps", "0.1"]]
    assert got == [["mean probabilities", "aps", "0.1", f"{100 * e['test']['coverage']:.2f}%",
                    f"{e['test']['mean_size']:.2f}", f"{100 * e['test']['singleton']:.1f}%",
                    f"{100 * e['test']['empty']:.1f}%",
                    f"{100 * e['test']['worst_class_coverage']:.1f}%",
                    _ood_sets(e["ood"]["gaussian-noise"]), _ood_sets(e["ood"]["noisy"])]]
    assert "(covers" not in got[0][-2] and "(covers" in got[0][-1]  # unlabelled / labelled
    assert "conformal-set-sizes.png" in md


def test_ood_set_cell_gives_coverage_only_where_items_keep_a_class():
    assert _ood_sets({"mean_size": 2.345, "coverage": None}) == "2.35"
    assert _ood_sets({"mean_size": 1.0, "coverage": 0.875}) == "1.00 (covers 87.5%)"
    assert _f(None) == "-" and _f(0.123456) == "0.1235"


def test_figures_are_linked_relative_and_exist(written):
    out, _, md = written
    links = assert_links_resolve(md, out)
    assert links == ["figures/reliability.png", "figures/uncertainty-ratios.png",
                     "figures/risk-coverage.png", "figures/conformal-set-sizes.png",
                     "figures/ood-scores.png"]
    assert plt.get_fignums() == []


def test_cost_section_is_appended_when_the_result_has_one(written):
    assert "## Cost per inference" in written[2] and "**per inference:** 9.8 nJ" in written[2]


def test_metrics_json_is_the_result_with_versions(written):
    out, result, _ = written
    saved = json.loads((out / "metrics.json").read_text())
    assert set(saved) == set(result) | {"versions"} and "torch" in saved["versions"]
    assert saved["summary"] == result["summary"] and saved["ratios"] == result["ratios"]
    assert saved["ood"]["gaussian-noise"]["by_score"][SCORE]["auroc"] == 0.91234


def test_skipped_recalibration_and_no_ood_sets(tmp_path):
    result = synthetic_result()
    result["ood"] = {}
    result["recalibration"] = result["conformal"] = {"skipped": "no held-out training items"}
    write_evaluation(tmp_path, result, torch.tensor([0.1, 0.3]), {})
    md = (tmp_path / "report.md").read_text()
    assert md.count("Not done: no held-out training items.") == 2
    assert md_table(md, "OoD set")[1:] == []
    assert "Paper 004's rule" not in md and not (tmp_path / "figures" /
                                                 "conformal-set-sizes.png").exists()
