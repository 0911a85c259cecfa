"""report/sampling_aware.py (issue 20): one line per row and training, each cell the input
formatted as the header says (accuracies per precision, the own precision's one-pass accuracy,
entropies, AUROCs, ECE, seconds per epoch), the training labels, metrics.json and the
terminal table; rows shaped like the experiment's (synthetic numbers)."""

from __future__ import annotations

import json

import pytest

from synsample.experiments.sampling_aware import SamplingAwareConfig
from synsample.report import sampling_aware as sa
from tests.report.inputs import md_table


def _summary(acc: float, one_pass: float = 0.8, h=(0.1234, 0.98765)) -> dict:
    return {"accuracy": acc, "single_pass_accuracy": one_pass, "mean_entropy_correct": h[0],
            "mean_entropy_incorrect": h[1]}


def _training(det: float, sampled: dict, own: str, seconds=(10.0, 20.0),
              ood: float | None = 0.91234) -> dict:
    return {"train": {"deterministic_accuracy": det, "job": "train-synthetic",
                      "history": [{"seconds": s} for s in seconds]},
            "sampled": sampled, "uncertainty_precision": own,
            "uncertainty": {"entropy_auroc": 0.85432, "ood_auroc": ood, "ece_votes": 0.0234,
                            "ece_mean_softmax": 0.01}}


ROWS = [{"dataset": "mnist", "arch": "mlp", "trainings": {
    "post-hoc": _training(0.98, {"full": _summary(0.9412, 0.7), "8": _summary(0.94),
                                 "4": _summary(0.9)}, "full"),
    "sampling-aware": _training(0.97, {"full": _summary(0.9734, 0.9512, (0.05, None)),
                                       "4": _summary(0.96)}, "full", seconds=(31.0,), ood=None),
    "sampling-aware-bits": _training(0.96, {"4": _summary(0.9655, 0.9333)}, "4")}}]


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    cfg = SamplingAwareConfig(out=tmp_path_factory.mktemp("sa") / "out", samples=30, seed=5,
                              limit=100, ood_items=400)
    result = sa.write(cfg, ROWS)
    return cfg, result, (cfg.out / "report.md").read_text()


def test_header_names_each_precision(written):
    t = md_table(written[2], "row", "training")
    assert t[0] == ["row", "training", "deterministic", "scANN full", "scANN 8-bit",
                    "scANN 4-bit", "one pass", "H correct / incorrect", "entropy AUROC",
                    "OoD AUROC", "ECE votes", "ECE softmax", "s / epoch"]


def test_one_line_per_training_with_its_numbers(written):
    t = md_table(written[2], "row", "training")
    assert [r[1] for r in t[1:]] == ["post-hoc (paper 000)", "sampling-aware",
                                     "sampling-aware at 4 bits"]
    assert t[1] == ["mnist mlp", "post-hoc (paper 000)", "98.00%", "94.12%", "94.00%", "90.00%",
                    "70.0%", "0.123 / 0.988", "0.854", "0.912", "0.023", "0.010", "15.0"]
    # a precision not sampled and values not measured are dashes
    assert t[2][3:8] == ["97.34%", "-", "96.00%", "95.1%", "0.050 / -"]
    assert t[2][9] == "-" and t[2][-1] == "31.0"


def test_the_b_bit_network_reports_its_own_precision(written):
    t = md_table(written[2], "row", "training")
    assert t[3][3:7] == ["-", "-", "96.55%", "93.3%"]  # one pass at 4 bits, not full


def test_label_names_the_bits_the_third_network_is_trained_at():
    rows = sa.table_rows(ROWS, ("4",), "2")
    assert rows[2][1] == "sampling-aware at 2 bits" and rows[0][3] == "90.00%"


def test_intro_states_the_run(written):
    md = written[2]
    assert md.startswith("# Table I of paper 000: sampling-aware training beside post-hoc "
                         "conversion\n")
    assert "Seed 5, 30 passes (shared mode), estimator `lrt`" in md
    assert "trained through `full` coins" in md and "trained through the 4-bit coins" in md
    assert "other dataset's test items (400)" in md and "Jobs: `runs/jobs`." in md


def test_metrics_json_and_terminal_table(written):
    cfg, result, _ = written
    saved = json.loads((cfg.out / "metrics.json").read_text())
    assert saved == {k: v for k, v in result.items() if k != "terminal_table"}
    assert saved["rows"] == ROWS and saved["limit"] == 100
    assert (saved["estimator"], saved["coin"], saved["train_bits"]) == ("lrt", "full", "4")
    lines = result["terminal_table"].splitlines()
    assert lines[0].split()[:3] == ["row", "training", "deterministic"]
    assert lines[2].split()[:6] == ["mnist", "mlp", "post-hoc", "(paper", "000)", "98.00%"]
