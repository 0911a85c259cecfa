"""Table I with sampling-aware training beside post-hoc (issue 20), on synthetic data."""

import json

import pytest

from synsample.experiments import registry, robustness, sampling_aware, scann_holdout
from synsample.experiments.options import RunOptions
from synsample.experiments.training import train_job
from synsample.train import SAMPLING_AWARE_DROPOUT, TrainConfig


def _small(synthetic, tmp_path, **kw):
    return {"samples": 12, "epochs": 1, "jobs": tmp_path / "jobs", "data_path": str(synthetic),
            "progress": False, **kw}


def test_three_trainings_side_by_side_on_synthetic_data(synthetic, tmp_path):
    cfg = sampling_aware.SamplingAwareConfig(datasets=("synthetic",), precisions=("full", "4"),
                                             **_small(synthetic, tmp_path, out=tmp_path / "out"))
    result = registry.run("scann-table1-sampling-aware", cfg, log=lambda m: None)
    row = result["rows"][0]
    assert list(row["trainings"]) == ["post-hoc", "sampling-aware", "sampling-aware-bits"]
    post, sa, bits = (row["trainings"][k] for k in row["trainings"])
    # the post-hoc network is Table I's own job (cached once for both experiments)
    assert post["train_job"] == train_job(TrainConfig(dataset="synthetic", epochs=1),
                                          RunOptions(), print).name
    assert (sa["coin"], sa["dropout"], bits["coin"]) == ("full", SAMPLING_AWARE_DROPOUT, "4")
    assert set(sa["sampled"]) == {"full", "4"} and set(bits["sampled"]) == {"4"}
    unc = sa["uncertainty"]
    assert unc["ood"] is None  # synthetic data has no other dataset
    assert 0.0 <= unc["ece_votes"] <= 1.0
    assert unc["entropy_auroc"] is None or 0.0 <= unc["entropy_auroc"] <= 1.0
    report = (tmp_path / "out" / "report.md").read_text()
    assert "sampling-aware at 4 bits" in report and "post-hoc (paper 000)" in report
    assert json.loads((tmp_path / "out" / "metrics.json").read_text())["estimator"] == "lrt"
    assert "one pass" in result["terminal_table"]


def test_holdout_and_robustness_train_the_sampling_aware_twin(synthetic, tmp_path):
    cfg = scann_holdout.HoldoutConfig(dataset="synthetic", holdout_class=1,
                                      fractions=(0.0, 0.9), sampling_aware="4",
                                      **_small(synthetic, tmp_path, out=tmp_path / "holdout"))
    result = registry.run("scann-holdout", cfg, log=lambda m: None)
    trained = json.loads((tmp_path / "jobs" / result["rows"][1]["train_job"] / "checkpoint" /
                          "config.json").read_text())
    assert (trained["sampling_aware"], trained["holdout_class"]) == ("4", 1)
    assert "sampling-aware" in (tmp_path / "holdout" / "report.md").read_text()
    rc = robustness.RobustnessConfig(sampling_aware="nonideal:spread=0.05", epochs=3)
    tc = robustness.train_config(rc, "mnist")
    assert (tc.sampling_aware, tc.dropout, tc.epochs) == ("nonideal:spread=0.05", 0.0, 3)
    assert robustness.train_config(robustness.RobustnessConfig(), "mnist").sampling_aware is None
    with pytest.raises(Exception, match="for scANN networks"):
        robustness.RobustnessConfig(method="mc-dropout", sampling_aware="full").check()
