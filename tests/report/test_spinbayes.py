"""report/spinbayes.py (paper 004): Table 1 beside the paper's (ratios at the threshold
nearest the config's), Table 3 (rule / AUROC and the paper's row), the sentence on which
reading of the OoD rule fits the paper (computed from SpinBayes' gaps to Table 3: it names
the closer reading, whichever it is), n-way and Q x N tables, memory, Table 5's energy with
our ratio to the paper's 0.26 uJ, metrics.json; hand-made evaluations (synthetic numbers)."""

from __future__ import annotations

import json

import pytest

from synsample import papers
from synsample.experiments.spinbayes import SpinBayesConfig
from synsample.report import spinbayes as sb
from synsample.report.markdown import text_table
from tests.report.inputs import (
    assert_links_resolve,
    md_table,
    md_tables,
    row,
    synthetic_cost,
)

TS = (0.0, 0.4, 0.7, 1.0)  # the config's T = 0.5 is nearest 0.4


def _ood(all_passes: float, any_percent: float, auroc: float, rejected=(0.02, 0.3)) -> dict:
    def one(d, r):
        return {"rule": "synthetic", "detection_rate": d, "false_rejection_rate": r}
    return {"by_score": {"predictive-entropy": {"auroc": auroc}},
            "paper_004_rule": {**one(all_passes, rejected[0]),
                               "readings": {"all-passes": one(all_passes, rejected[0]),
                                            "any-percent": one(any_percent, rejected[1])}}}


def _eval(accuracy: float, ood: dict, ratios=(0.5, 0.9, 0.8), entropy: float = 0.1234) -> dict:
    """One method's evaluation: its R_iu, R_cc, UA at T = 0.4, other values elsewhere."""
    sweep = [{"T": t, "R_iu": ratios[0] if t == 0.4 else 0.01, "R_cc": ratios[1] if t == 0.4
              else 0.02, "UA": ratios[2] if t == 0.4 else 0.03} for t in TS]
    return {"summary": {"mean_probs_accuracy": accuracy, "mean_entropy": entropy},
            "ratios": sweep, "ood": ood}


def _main(spin_ood: dict) -> dict:
    return {"mc-dropout": _eval(0.9912, {"gaussian-noise": _ood(0.0, 1.0, 0.5),
                                         "other": _ood(0.0, 1.0, 0.6)}, (0.3124, 0.9877, 0.9748)),
            "spinbayes": _eval(0.9845, spin_ood, (0.9, 0.99, 0.85))}


#: SpinBayes detects (98%, 90%) under all-passes, (100%, 95%) under any-percent; the paper
#: 100 and 100: mean gaps 6.0 and 2.5 points, any-percent fits
ANY_FITS = {"gaussian-noise": _ood(0.98, 1.0, 0.97), "other": _ood(0.90, 0.95, 0.912345)}
#: the other way round: gaps 0.5 and 45.0, all-passes fits
ALL_FITS = {"gaussian-noise": _ood(1.0, 0.5, 0.97), "other": _ood(0.99, 0.6, 0.9)}

MEMORY = [{"network": "LeNet-5 (MNIST)", "parameters": 61706,
           "megabytes": {"mc-dropout / mc-dropconnect": 0.246824,
                         "spinbayes (N = 5, Q = 4)": 0.154265}}]

#: 235.5 + 26.6 = 262.1 nJ, 0.2621 uJ: 1.01x the paper's 0.26
ENERGY = synthetic_cost({"crossbar_read": (50000.0, 4.71), "random bits (sot-mtj)": (7000.0,
                                                                                        3.8)})


def _write(out, main, sweep=None, ways=None) -> tuple[dict, str]:
    cfg = SpinBayesConfig(out=out, epochs=2, samples=9, members=2, sweep_bits=(2, 4),
                          sweep_crossbars=(2, 3))
    ways = ways or {1: main["spinbayes"], 2: _eval(0.98, {}, entropy=0.2),
                    3: _eval(0.975, {}, entropy=0.3)}
    training = {"spinbayes": [{"train_seconds": 300.0}],
                "ensemble": [{"train_seconds": 60.0}, {"train_seconds": 60.0}]}
    result = sb.write(cfg, training, main, ways, sweep or {}, MEMORY, ENERGY)
    return result, (out / "report.md").read_text()


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    out = tmp_path_factory.mktemp("spinbayes") / "out"
    sweep = {f"{q}x{n}": _eval(0.9 + q / 100 + n / 1000, {
        "gaussian-noise": _ood(1.0, 1.0, 0.5), "other": _ood(1.0, 1.0, 0.8 + q / 100 + n / 1000)})
        for q in (2, 4) for n in (2, 3)}
    result, md = _write(out, _main(ANY_FITS), sweep)
    return out, result, md


def test_error_is_one_minus_the_mean_softmax_accuracy():
    assert sb.error({"summary": {"mean_probs_accuracy": 0.9923}}) == pytest.approx(0.0077)


@pytest.mark.parametrize(("t", "picked"), [(0.5, 0.4), (0.6, 0.7), (0.0, 0.0), (0.9, 1.0)])
def test_ratios_are_read_at_the_threshold_nearest_the_configs(t, picked):
    assert sb.ratios_at(_eval(0.9, {}), t)["T"] == picked


def test_table_1_ours_beside_the_papers_error_r_iu_r_cc_ua(written):
    t = md_table(written[2], "method", "error", "paper")
    assert t[0] == ["method", "error", "paper", "R_iu", "paper", "R_cc", "paper", "UA", "paper"]
    assert row(t, "SpinBayes") == ["SpinBayes", "1.55", "0.77", "90.00", "96.81", "99.00",
                                   "99.96", "85.00", "85.10"]
    assert row(t, "MC-Dropout") == ["MC-Dropout", "0.88", "0.77", "31.24", "31.24", "98.77",
                                    "98.77", "97.48", "97.48"]
    assert written[1]["terminal_table"] == text_table(*sb._table1(SpinBayesConfig(),
                                                                  _main(ANY_FITS)))


def test_table_3_rule_and_auroc_per_set_and_the_papers_row(written):
    t = md_table(written[2], "method", "Gaussian: rule / AUROC")
    assert t[0] == ["method", "Gaussian: rule / AUROC", "Fashion-MNIST: rule / AUROC"]
    assert row(t, "SpinBayes") == ["SpinBayes", "98.0 / 0.970", "90.0 / 0.912"]
    assert row(t, "MC-Dropout") == ["MC-Dropout", "0.0 / 0.500", "0.0 / 0.600"]
    assert row(t, "SpinBayes, paper (rule)") == ["SpinBayes, paper (rule)", "100.00", "100.00"]


def test_a_set_a_method_was_not_run_on_is_a_dash():
    main = {"spinbayes": _eval(0.9, {"noisy": _ood(0.5, 0.5, 0.7)}),
            "bbb": _eval(0.9, {"fake": _ood(0.25, 0.5, 0.8), "fakedata": _ood(0.75, 0.5, 0.9)})}
    header, rows = sb._ood_table(main, "method", papers.SPINBAYES_TABLE3)
    assert header == ["method", "noisy MNIST: rule / AUROC", "smoothed FakeData: rule / AUROC",
                      "FakeData (torchvision's, i.i.d.): rule / AUROC"]
    assert rows == [["SpinBayes", "50.0 / 0.700", "-", "-"],
                    ["Bayes-by-Backprop", "-", "25.0 / 0.800", "75.0 / 0.900"],
                    ["SpinBayes, paper (rule)", "99.21", "-", "100.00"]]  # the paper's: i.i.d.


def test_both_readings_table_with_each_readings_in_distribution_rejection(written):
    t = md_table(written[2], "reading", "method")
    assert t[0] == ["reading", "method", "in-distribution rejected", "Gaussian detected",
                    "Fashion-MNIST detected"]
    assert t[1:] == [["all-passes", "MC-Dropout", "2.0", "0.0", "0.0"],
                     ["all-passes", "SpinBayes", "2.0", "98.0", "90.0"],
                     ["any-percent", "MC-Dropout", "30.0", "100.0", "100.0"],
                     ["any-percent", "SpinBayes", "30.0", "100.0", "95.0"],
                     ["paper", "SpinBayes", "not reported", "100.00", "100.00"]]


def test_the_fit_sentence_names_the_reading_closer_to_the_paper(written, tmp_path):
    assert ("The paper's detection rates fit the `any-percent` reading (SpinBayes' mean gap to "
            "the paper 2.5 points, against 6.0 for `all-passes`); that reading also rejects "
            "30.0% of the in-distribution test items, which the paper does not report."
            ) in written[2]
    _, md = _write(tmp_path, _main(ALL_FITS))
    assert ("The paper's detection rates fit the `all-passes` reading (SpinBayes' mean gap to "
            "the paper 0.5 points, against 45.0 for `any-percent`); that reading also rejects "
            "2.0% of the in-distribution test items") in md


def test_the_fit_is_judged_on_spinbayes_alone():
    """MC-Dropout fits any-percent perfectly in both inputs; only SpinBayes' gaps count."""
    lines = "\n".join(sb._rule_readings(_main(ALL_FITS), papers.SPINBAYES_TABLE3))
    assert "fit the `all-passes` reading" in lines


def test_gaps_are_over_the_sets_the_paper_reports_only():
    """Uniform noise is not in the paper's Table 3: SpinBayes' 0% there is no gap."""
    spin = {**ALL_FITS, "uniform-noise": _ood(0.0, 1.0, 0.5)}
    lines = "\n".join(sb._rule_readings({"spinbayes": _eval(0.9, spin)},
                                        papers.SPINBAYES_TABLE3))
    assert "mean gap to the paper 0.5 points, against 45.0 for `any-percent`" in lines


def test_no_ood_set_no_readings_section():
    assert sb._rule_readings({"spinbayes": _eval(0.9, {})}, papers.SPINBAYES_TABLE3) == []


def test_without_spinbayes_the_table_stands_without_a_fit_sentence():
    lines = sb._rule_readings({"bbb": _eval(0.9, ANY_FITS)}, papers.SPINBAYES_TABLE3)
    assert lines and not any("fit the" in line for line in lines)


def test_no_set_shared_with_the_paper_claims_no_fit():
    lines = sb._rule_readings({"spinbayes": _eval(0.9, {"uniform-noise": _ood(0.1, 0.9, 0.5)})},
                              papers.SPINBAYES_TABLE3)
    assert not any("fit the" in line for line in lines)


def test_n_way_tables(written):
    md = written[2]
    t = md_table(md, "n", "error")
    assert t[1:] == [["1", "1.55", "0.1234"], ["2", "2.00", "0.2000"], ["3", "2.50", "0.3000"]]
    assert md_table(md, "n", "Gaussian: rule / AUROC")[1] == ["1", "98.0 / 0.970",
                                                              "90.0 / 0.912"]


def test_sweep_tables_q_by_n_error_and_the_other_datasets_auroc(written):
    out, _, md = written
    assert "Fashion-MNIST AUROC (predictive entropy):" in md
    tables = [t for t in md_tables(md) if t[0][0] == "Q \\ N"]
    assert tables[0] == [["Q \\ N", "2", "3"], ["2", "7.80", "7.70"], ["4", "5.80", "5.70"]]
    assert tables[1] == [["Q \\ N", "2", "3"], ["2", "0.822", "0.823"], ["4", "0.842", "0.843"]]
    assert "figures/quantization-sweep.png" in assert_links_resolve(md, out)


def test_sweep_without_the_other_dataset_uses_gaussian_noise(tmp_path):
    cfg = SpinBayesConfig(out=tmp_path, sweep_bits=(4,), sweep_crossbars=(5,))
    _, (_, aurocs), name, fig = sb._sweep(cfg, {"4x5": _eval(0.9, {
        "gaussian-noise": _ood(1.0, 1.0, 0.75)})})
    assert name == "Gaussian" and aurocs == [[4, "0.750"]] and fig.is_file()


def test_no_sweep_no_section(tmp_path):
    _, md = _write(tmp_path, _main(ALL_FITS))
    assert "Quantization sweep" not in md and not (tmp_path / "figures").exists()


def test_memory_table(written):
    t = md_table(written[2], "network", "parameters")
    assert t == [["network", "parameters", "mc-dropout / mc-dropconnect",
                  "spinbayes (N = 5, Q = 4)"], ["LeNet-5 (MNIST)", "61,706", "0.247", "0.154"]]


def test_energy_beside_table_5_and_our_ratio_to_the_papers(written):
    md = written[2]
    assert "## Energy per image (Tables 4 and 5)" in md
    t = md_table(md, "design")
    assert t[1:len(papers.SPINBAYES_TABLE5) + 1] == [
        [k, f"{v[0]:.2f}", v[1]] for k, v in papers.SPINBAYES_TABLE5.items()]
    assert row(t, "SpinBayes, ours (counted)")[1] == "0.262"
    assert "Ours is 1.01x the paper's 0.26 uJ" in md
    assert "**per inference:** 262.1 nJ, 7,000 random bits;" in md


def test_setup_sentence_states_members_and_training_time(written):
    md = written[2]
    assert "2 ensemble members from seeds 0 to 1; 7 min of training on this machine" in md
    assert "N = 5 posterior samples per layer quantized to Q = 4 bits" in md
    assert "9 passes per item (shared mode)" in md and "T = 0.5" in md
    assert " and ".join(papers.SPINBAYES_NOT_REACHABLE) + " are not reachable" in md


def test_metrics_json(written):
    out, result, _ = written
    saved = json.loads((out / "metrics.json").read_text())
    assert saved["experiment"] == "spinbayes-mnist" and set(saved["ways"]) == {"1", "2", "3"}
    assert saved["main"] == json.loads(json.dumps(_main(ANY_FITS)))
    assert saved["config"]["out"] == str(out) and saved["config"]["samples"] == 9
    assert saved["memory"] == MEMORY and saved["energy"]["per_inference"]["energy_nj"] == \
        pytest.approx(262.1)
    assert set(saved["sweep"]) == {"2x2", "2x3", "4x2", "4x3"}
