"""The robustness experiment on small synthetic data (the real run is `synsample reproduce
robustness`)."""

import json

from synsample.experiments import registry, robustness
from synsample.report.robustness import catch_up


def test_reproduce_robustness_on_synthetic_data(synthetic, tmp_path):
    out_dir = tmp_path / "rob"
    cfg = robustness.RobustnessConfig(
        datasets=("synthetic",), samples=4, epochs=1, ood_items=40,
        nonidealities={"bias": (0.0, 0.3), "stuck": (0.0, 0.5)}, precisions=("2", "full"),
        sample_counts=(1, 2, 4), reference_k=2, device_draws=2, out=out_dir,
        jobs=tmp_path / "jobs", data_path=str(synthetic), progress=False)
    logs: list[str] = []
    result = registry.run("robustness", cfg, log=logs.append)
    sweep = result["sweeps"]["synthetic"]
    assert [len(sweep[k]) for k in ("bias", "stuck")] == [2, 2]
    # stuck devices are drawn: the point is the mean of two draws, each its own job
    assert sweep["stuck"][1]["draws"] == 2 and sweep["stuck"][1]["accuracy_std"] is not None
    assert "draws" not in sweep["bias"][1] and "draws" not in sweep["stuck"][0]
    assert sum("stuck 0.5 (devices" in line for line in logs) == 2
    assert sweep["bias"][0]["ood_set"] == "gaussian-noise"
    # half the coins stuck changes what the network does
    assert sweep["stuck"][1]["accuracy"] != sweep["stuck"][0]["accuracy"] or \
        sweep["stuck"][1]["mean_entropy"] != sweep["stuck"][0]["mean_entropy"]
    grid = result["precision_grid"]["synthetic"]
    assert set(grid["full"]["accuracy_vs_samples"]) == {"1", "2", "4"}
    assert result["catch_up"]["synthetic"]["full"] in (1, 2)
    report = (out_dir / "report.md").read_text()
    assert "Bias of every coin" in report and "Precision against the number" in report
    assert " ± " in report
    assert (out_dir / "figures" / "precision-vs-samples.png").is_file()
    assert json.loads((out_dir / "metrics.json").read_text())["experiment"] == "robustness"


def test_catch_up_finds_the_first_k_that_matches_full_precision():
    grid = {"full": {"accuracy_vs_samples": {"1": 0.8, "10": 0.9, "100": 0.95}},
            "4": {"accuracy_vs_samples": {"1": 0.7, "10": 0.85, "100": 0.9}},
            "2": {"accuracy_vs_samples": {"1": 0.5, "10": 0.6, "100": 0.7}}}
    assert catch_up(grid, 10) == {"full": 10, "4": 100, "2": None}


def test_robustness_of_mc_dropconnect_to_correlated_and_drifting_coins(synthetic16, tmp_path):
    out_dir = tmp_path / "rob"
    cfg = robustness.RobustnessConfig(
        method="mc-dropconnect", datasets=("synthetic16",), samples=6, epochs=1, ood_items=20,
        nonidealities={"correlation": (0.0, 0.99), "drift": (0.0, 0.2)}, precisions=("full",),
        sample_counts=(1, 6), reference_k=6, limit=60, out=out_dir, jobs=tmp_path / "jobs",
        data_path=str(synthetic16), progress=False)
    result = registry.run("robustness", cfg, log=lambda m: None)
    sweep = result["sweeps"]["synthetic16"]
    # nearly fully correlated masks repeat one pass: the votes spread less
    assert sweep["correlation"][1]["mean_entropy"] < sweep["correlation"][0]["mean_entropy"]
    # a drift of 0.2 per pass keeps every mask coin on from the second pass: the passes agree
    assert sweep["drift"][1]["mean_entropy"] < sweep["drift"][0]["mean_entropy"]
    report = (out_dir / "report.md").read_text()
    assert report.startswith("# Robustness of mc-dropconnect") and "Drift of P(1)" in report


def test_mc_dropout_sweeps_the_static_non_idealities_only(synthetic16, tmp_path):
    cfg = robustness.RobustnessConfig(
        method="mc-dropout", datasets=("synthetic16",), samples=4, epochs=1, ood_items=20,
        nonidealities={"stuck": (0.0, 0.6), "drift": (0.0, 0.1)}, precisions=("full",),
        sample_counts=(1, 4), reference_k=4, limit=40, out=tmp_path / "rob",
        jobs=tmp_path / "jobs", data_path=str(synthetic16), progress=False)
    result = registry.run("robustness", cfg, log=lambda m: None)
    sweep = result["sweeps"]["synthetic16"]
    assert set(sweep) == {"stuck"}
    assert sweep["stuck"][1] != sweep["stuck"][0]  # stuck units change the votes
    assert "Not swept for mc-dropout: drift" in (tmp_path / "rob" / "report.md").read_text()


def test_an_unknown_method_or_non_ideality_is_a_clear_error(tmp_path):
    import pytest

    from synsample.errors import ConfigError

    with pytest.raises(ConfigError, match="not 'bbb'"):
        registry.run("robustness", robustness.RobustnessConfig(method="bbb", datasets=(),
                                                               out=tmp_path / "r"))
    with pytest.raises(ConfigError, match="unknown non-ideality 'noise'"):
        registry.run("robustness", robustness.RobustnessConfig(nonidealities={"noise": (0.1,)},
                                                               out=tmp_path / "r"))
    with pytest.raises(ConfigError, match="unknown non-ideality"):
        robustness.coin_for("noise", 0.1, 0)
