"""Paper 004's MNIST experiments on small synthetic data (the real run is `synsample reproduce
spinbayes-mnist`)."""

import json

from synsample.experiments import registry, spinbayes


def test_reproduce_spinbayes_on_synthetic_data(synthetic16, tmp_path):
    out_dir = tmp_path / "spin"
    cfg = spinbayes.SpinBayesConfig(
        dataset="synthetic16", epochs=1, samples=3, members=2, ood_items=40,
        sweep_bits=(2, 4), sweep_crossbars=(2, 3), out=out_dir, jobs=tmp_path / "jobs",
        data_path=str(synthetic16), progress=False)
    result = registry.run("spinbayes-mnist", cfg, log=lambda m: None)
    assert set(result["main"]) == set(spinbayes.METHODS)
    for r in result["main"].values():
        assert 0.0 <= r["summary"]["mean_probs_accuracy"] <= 1.0
        assert "gaussian-noise" in r["ood"] and "other" in r["ood_skipped"]
    assert result["main"]["ensemble"]["random_bits"] == 0
    assert result["main"]["spinbayes"]["random_bits"] > 0  # the arbiter's bits
    assert set(result["ways"]) == {"1", "2", "3"} and set(result["sweep"]) == {
        "2x2", "2x3", "4x2", "4x3"}
    memory = {r["network"]: r for r in result["memory"]}
    assert memory["ResNet-18 (ImageNet shape)"]["parameters"] == 11_689_512
    mb = memory["LeNet-5 (MNIST)"]["megabytes"]
    # bits per parameter: 2 members x 32 against N Q = 20 (8x for the paper's 5 members)
    assert abs(mb["ensemble (2 members)"] / mb["spinbayes (N = 5, Q = 4)"] - 64 / 20) < 1e-9
    reads = result["energy"]["per_inference"]["counts"]["crossbar_read"]
    assert reads == 10 * (16 * 16 + 4 * 4 + 3)
    report = (out_dir / "report.md").read_text()
    assert "Energy per image" in report and "0.26" in report
    assert "Table 1" in report and "n-way" in report and "96.81" in report
    # Table 3 under both readings of the rule, each with its in-distribution rejection
    assert "Both readings of the rule" in report and "The paper's detection rates fit" in report
    for line in ("| all-passes | SpinBayes |", "| any-percent | SpinBayes |"):
        assert line in report
    assert (out_dir / "figures" / "quantization-sweep.png").is_file()
    assert json.loads((out_dir / "metrics.json").read_text())["experiment"] == "spinbayes-mnist"
