"""The robustness experiment on small synthetic data (the real run is `synsample reproduce
robustness`)."""

import json

from synsample.experiments import robustness
from synsample.report.robustness import catch_up


def test_reproduce_robustness_on_synthetic_data(synthetic, tmp_path):
    out_dir = tmp_path / "rob"
    cfg = robustness.RobustnessConfig(
        datasets=("synthetic",), samples=4, epochs=1, ood_items=40,
        nonidealities={"bias": (0.0, 0.3), "stuck": (0.0, 0.5)}, precisions=("2", "full"),
        sample_counts=(1, 2, 4), reference_k=2, out=out_dir, jobs=tmp_path / "jobs",
        data_path=str(synthetic), progress=False)
    result = robustness.run(cfg, log=lambda m: None)
    sweep = result["sweeps"]["synthetic"]
    assert [len(sweep[k]) for k in ("bias", "stuck")] == [2, 2]
    assert sweep["bias"][0]["ood_set"] == "gaussian-noise"
    # half the coins stuck changes what the network does
    assert sweep["stuck"][1]["accuracy"] != sweep["stuck"][0]["accuracy"] or \
        sweep["stuck"][1]["mean_entropy"] != sweep["stuck"][0]["mean_entropy"]
    grid = result["precision_grid"]["synthetic"]
    assert set(grid["full"]["accuracy_vs_samples"]) == {"1", "2", "4"}
    assert result["catch_up"]["synthetic"]["full"] in (1, 2)
    report = (out_dir / "report.md").read_text()
    assert "Bias of every coin" in report and "Precision against the number" in report
    assert (out_dir / "figures" / "precision-vs-samples.png").is_file()
    assert json.loads((out_dir / "metrics.json").read_text())["experiment"] == "robustness"


def test_catch_up_finds_the_first_k_that_matches_full_precision():
    grid = {"full": {"accuracy_vs_samples": {"1": 0.8, "10": 0.9, "100": 0.95}},
            "4": {"accuracy_vs_samples": {"1": 0.7, "10": 0.85, "100": 0.9}},
            "2": {"accuracy_vs_samples": {"1": 0.5, "10": 0.6, "100": 0.7}}}
    assert catch_up(grid, 10) == {"full": 10, "4": 100, "2": None}
