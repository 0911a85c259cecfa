import json

import pytest
import torch

from synsample.errors import ConfigError
from synsample.experiments import registry, scann_holdout
from synsample.train import TrainConfig, holdout_indices


def test_holdout_indices_remove_the_stated_share_of_one_class():
    labels = torch.tensor([0] * 100 + [1] * 50)
    keep = holdout_indices(labels, 1, 0.9, seed=0)
    assert (labels[keep] == 1).sum() == 5 and (labels[keep] == 0).sum() == 100
    assert torch.equal(keep, holdout_indices(labels, 1, 0.9, seed=0))
    with pytest.raises(ConfigError, match="class 7 has no training items"):
        holdout_indices(labels, 7, 0.5, seed=0)


def test_job_config_is_unchanged_without_holdout():
    plain = TrainConfig().job_config()
    assert "holdout_class" not in plain
    assert TrainConfig(holdout_class=3, holdout_fraction=0.5).job_config()["holdout_class"] == 3


def test_holdout_experiment_on_synthetic_data(synthetic, tmp_path):
    cfg = scann_holdout.HoldoutConfig(dataset="synthetic", arch="mlp", holdout_class=2,
                                      fractions=(0.0, 0.95), samples=20, epochs=2,
                                      out=tmp_path / "out", jobs=tmp_path / "jobs",
                                      data_path=str(synthetic), progress=False)
    result = registry.run("scann-holdout", cfg, log=lambda m: None)
    with pytest.raises(ConfigError, match="--holdout-class must be 0 to 3"):
        registry.run("scann-holdout", scann_holdout.HoldoutConfig(dataset="synthetic",
                                                                  holdout_class=4))
    assert [r["fraction"] for r in result["rows"]] == [0.0, 0.95]
    for r in result["rows"]:
        assert 0.0 <= r["H_out"] <= 2.0 and r["H_out"] + r["I_out"] == pytest.approx(2.0)
    trained = json.loads((tmp_path / "jobs" / result["rows"][1]["train_job"] / "checkpoint" /
                          "config.json").read_text())
    assert trained["holdout_class"] == 2 and trained["holdout_removed"] > 0
    assert (tmp_path / "out" / "report.md").is_file()
    assert (tmp_path / "out" / "figures" / "holdout.png").stat().st_size > 1000
