import json

import pytest

from synsample import cli
from tests.conftest import require_cached


def run(capsys, *argv):
    code = cli.main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_help_lists_every_command(capsys):
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    out = capsys.readouterr().out
    for command in ("data", "train", "sample", "reproduce"):
        assert command in out


def test_user_errors_are_one_line_without_traceback(capsys, tmp_path):
    code, _, err = run(capsys, "sample", "--checkpoint", str(tmp_path / "missing"))
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("synsample: error:") and "Traceback" not in err
    code, _, err = run(capsys, "-q", "sample", "--checkpoint", str(tmp_path), "--precision", "0")
    assert code == 2 and "holds no checkpoint" in err


def test_data_list(capsys):
    code, out, _ = run(capsys, "data", "list")
    assert code == 0 and "mnist" in out and "not cached" in out


def test_train_then_sample_end_to_end_on_synthetic_data(capsys, synthetic, tmp_path):
    ck = tmp_path / "ck"
    code, out, _ = run(capsys, "-q", "train", "--dataset", "synthetic", "--epochs", "2",
                       "--out", str(ck), "--data-path", str(synthetic))
    assert code == 0 and "checkpoint" in out
    code, _, err = run(capsys, "-q", "sample", "--checkpoint", str(ck), "--precision", "0",
                       "--data-path", str(synthetic))
    assert code == 2 and "1 to 24 bits" in err
    out_dir = tmp_path / "report"
    code, out, _ = run(capsys, "-q", "sample", "--checkpoint", str(ck), "--precision", "4",
                       "--samples", "30", "--data-path", str(synthetic), "--out", str(out_dir))
    assert code == 0, out
    metrics = json.loads((out_dir / "metrics.json").read_text())
    assert metrics["precision"] == "4" and metrics["sampled"]["samples"] == 30
    assert 0.0 <= metrics["sampled"]["accuracy"] <= 1.0
    for fig in metrics["figures"].values():
        assert (out_dir / fig).stat().st_size > 1000
    assert "report.md" in out
    # the cost of an inference of 30 passes of 4-bit coins: 4 bits per drawn coin, every
    # pass reading 4 + 1 bits per weight
    cost = metrics["cost"]["per_inference"]
    assert cost["random_bits"]["cmos"] % 4 == 0 and cost["energy_nj"] > 0
    assert "## Cost per inference" in (out_dir / "report.md").read_text() and "nJ" in out


def test_reproduce_table1_small_on_real_mnist(capsys, real_home, tmp_path):
    require_cached("mnist")
    out_dir = tmp_path / "t1"
    args = ["-q", "reproduce", "scann-table1", "--epochs", "1", "--samples", "20", "--limit",
            "300", "--out", str(out_dir), "--jobs", str(out_dir / "jobs")]
    code, out, _ = run(capsys, *args)
    assert code == 0
    m = json.loads((out_dir / "metrics.json").read_text())
    row = m["rows"][0]
    assert (row["dataset"], row["arch"], row["epochs"], row["samples"]) == ("mnist", "mlp", 1, 20)
    assert set(row["scann_accuracy"]) == {"full", "8", "4"}
    assert row["deterministic_accuracy"] > 0.9
    assert "94.4" in out and (out_dir / "report.md").is_file()
    jobs = sorted(p.name for p in (out_dir / "jobs").iterdir())
    code, _, _ = run(capsys, *args)  # a re-run reuses every finished job
    assert code == 0 and sorted(p.name for p in (out_dir / "jobs").iterdir()) == jobs
    code, out, _ = run(capsys, "-q", "reproduce", "scann-entropy", "--dataset", "mnist",
                       "--epochs", "1", "--samples", "20", "--limit", "300", "--out",
                       str(tmp_path / "entropy"), "--jobs", str(out_dir / "jobs"))
    assert code == 0 and sorted(p.name for p in (out_dir / "jobs").iterdir()) == jobs  # reused
    e = json.loads((tmp_path / "entropy" / "metrics.json").read_text())["rows"][0]
    assert e["correct"] + e["incorrect"] == 300 and "mean_entropy_incorrect" in e


def test_evaluate_reports_every_metric_and_ood_set(capsys, synthetic, tmp_path):
    ck = tmp_path / "ck"
    assert run(capsys, "-q", "train", "--dataset", "synthetic", "--epochs", "2", "--out",
               str(ck), "--data-path", str(synthetic))[0] == 0
    out_dir = tmp_path / "eval"
    code, out, err = run(capsys, "-q", "evaluate", "--checkpoint", str(ck), "--samples", "20",
                         "--ood-items", "50", "--data-path", str(synthetic), "--out",
                         str(out_dir))
    assert code == 0, err
    m = json.loads((out_dir / "metrics.json").read_text())
    assert set(m["ood"]) == {"gaussian-noise", "uniform-noise", "noisy", "fake", "fakedata"}
    assert "other" in m["ood_skipped"]  # only defined for MNIST / Fashion-MNIST
    for o in m["ood"].values():
        assert 0.0 <= o["by_score"]["vote-entropy"]["auroc"] <= 1.0
        assert 0.0 <= o["paper_004_rule"]["detection_rate"] <= 1.0
    assert {"nll", "brier", "ece", "adaptive_ece"} <= set(m["calibration"])
    assert len(m["ratios"]) == 21
    report = (out_dir / "report.md").read_text()
    assert "AUROC" in report and "R_cc" in report and "## Cost per inference" in report
    for png in ("reliability.png", "uncertainty-ratios.png", "ood-scores.png"):
        assert (out_dir / "figures" / png).stat().st_size > 1000
    cost = m["cost"]
    assert cost["samples"] == 20 and cost["per_inference"]["energy_nj"] > 0
    assert cost["assumption_set"]["name"] == "synsample defaults" and "nJ" in out
    # the user's figures replace the defaults: free additions, and the bad file is one line
    chip = tmp_path / "chip.json"
    chip.write_text('{"name": "free adds", "pj_per_op": {"add": 0}}')
    code, out, err = run(capsys, "-q", "evaluate", "--checkpoint", str(ck), "--samples", "20",
                         "--ood-items", "50", "--data-path", str(synthetic), "--out",
                         str(tmp_path / "eval2"), "--cost-assumptions", str(chip))
    assert code == 0, err
    cheap = json.loads((tmp_path / "eval2" / "metrics.json").read_text())["cost"]
    assert cheap["per_inference"]["energy_pj"]["add"] == 0
    assert cheap["per_inference"]["counts"] == cost["per_inference"]["counts"]
    chip.write_text('{"pj_per_op": {"teleport": 1}}')
    code, _, err = run(capsys, "-q", "evaluate", "--checkpoint", str(ck), "--samples", "20",
                       "--data-path", str(synthetic), "--cost-assumptions", str(chip))
    assert code != 0 and "teleport" in err and len(err.strip().splitlines()) == 1


def test_bench_prints_every_row_and_writes_json(capsys, tmp_path):
    """A tiny run of `synsample bench` (synthetic uint8 images when MNIST is not cached)."""
    code, out, _ = run(capsys, "-q", "bench", "--items", "24", "--samples", "3",
                       "--conv-items", "4", "--conv-samples", "2", "--independent-items", "6",
                       "--independent-samples", "2", "--repeats", "1", "--out", str(tmp_path))
    assert code == 0
    result = json.loads((tmp_path / "bench.json").read_text())
    rows = {(r["case"], r["row"]) for r in result["rows"]}
    assert len(rows) == 20 and ("MLP 784-400-10", "synsample independent") in rows
    assert ("NSM 784-300-300-300-10", "synsample shared") in rows
    assert ("CNN 2 conv + 1568-256-10", "own forward (traced prefix), scANN shared") in rows
    assert ("SC 784-128-10, L = 100", "synsample independent") in rows
    for r in result["rows"]:
        assert r["seconds"] > 0 and r["ratio_to_ceiling"] > 0
        assert r.get("exact") in (None, True)  # every exactness check that ran passed
    assert "x ceiling" in out and (tmp_path / "bench.md").is_file()


def test_nsm_train_evaluate_and_sample_on_synthetic_data(capsys, synthetic, tmp_path):
    ck = tmp_path / "nsm"
    code, out, err = run(capsys, "-q", "train", "--arch", "nsm-mlp", "--noise", "gaussian:1",
                         "--dataset", "synthetic", "--epochs", "1", "--lr", "0.01", "--out",
                         str(ck), "--data-path", str(synthetic))
    assert code == 0, err
    config = json.loads((ck / "config.json").read_text())
    assert config["optimizer"] == "adam" and config["noise"] == "gaussian:1"
    code, out, err = run(capsys, "-q", "evaluate", "--checkpoint", str(ck), "--samples", "8",
                         "--ood-items", "50", "--data-path", str(synthetic), "--out",
                         str(tmp_path / "eval"))
    assert code == 0, err
    result = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert result["method"] == "nsm" and 0 <= result["calibration"]["ece"] <= 1
    assert "gaussian-noise" in result["ood"]
    code, out, err = run(capsys, "-q", "sample", "--checkpoint", str(ck), "--samples", "8",
                         "--precision", "4", "--data-path", str(synthetic), "--out",
                         str(tmp_path / "sample"))
    assert code == 0 and "one sampled pass" in out, err
    code, _, err = run(capsys, "-q", "train", "--arch", "nsm-mlp", "--noise", "poisson:2",
                       "--dataset", "synthetic", "--out", str(tmp_path / "bad"),
                       "--data-path", str(synthetic))
    assert code == 2 and "bernoulli:P" in err


def test_sc_train_evaluate_and_sample_on_synthetic_data(capsys, synthetic, tmp_path):
    ck = tmp_path / "sc"
    code, out, err = run(capsys, "-q", "train", "--arch", "sc-mlp", "--states", "11",
                         "--sc-length", "16", "--dataset", "synthetic", "--epochs", "1",
                         "--out", str(ck), "--data-path", str(synthetic))
    assert code == 0, err
    config = json.loads((ck / "config.json").read_text())
    assert (config["states"], config["sc_length"], config["loss"]) == (11, 16, "sse")
    code, out, err = run(capsys, "-q", "evaluate", "--checkpoint", str(ck), "--samples", "4",
                         "--stream-length", "32", "--bitstream", "mtj", "--ood-items", "40",
                         "--data-path", str(synthetic), "--out", str(tmp_path / "eval"))
    assert code == 0, err
    result = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert result["method"] == "sc" and result["summary"]["samples"] == 4
    code, out, err = run(capsys, "-q", "sample", "--checkpoint", str(ck), "--samples", "4",
                         "--bitstream", "lfsr", "--precision", "8", "--stream-length", "20",
                         "--sc-path", "bits",
                         "--data-path", str(synthetic), "--out", str(tmp_path / "sample"))
    assert code == 0 and "without SC" in out, err
    code, _, err = run(capsys, "-q", "train", "--arch", "mlp", "--states", "5", "--dataset",
                       "synthetic", "--out", str(tmp_path / "bad"), "--data-path",
                       str(synthetic))
    assert code == 2 and "sc-* architectures" in err


def test_bayes_by_backprop_and_spinbayes_through_the_cli(capsys, synthetic16, tmp_path):
    ck = tmp_path / "bbb"
    code, out, err = run(capsys, "-q", "train", "--arch", "lenet5-bbb", "--dataset",
                         "synthetic16", "--epochs", "1", "--out", str(ck), "--data-path",
                         str(synthetic16))
    assert code == 0, err
    for method, precision in (("bbb", "full"), ("spinbayes", "3")):
        out_dir = tmp_path / method
        code, out, err = run(capsys, "-q", "evaluate", "--checkpoint", str(ck), "--method",
                             method, "--precision", precision, "--samples", "4",
                             "--ood-items", "30", "--data-path", str(synthetic16), "--out",
                             str(out_dir))
        assert code == 0, err
        result = json.loads((out_dir / "metrics.json").read_text())
        assert result["method"] == method and result["summary"]["samples"] == 4
    code, _, err = run(capsys, "-q", "evaluate", "--checkpoint", str(ck), "--method", "bbb",
                       "--precision", "4", "--data-path", str(synthetic16), "--out",
                       str(tmp_path / "bad"))
    assert code == 2 and "no precision" in err
    members = []
    for seed in (0, 1):
        members.append(str(tmp_path / f"member{seed}"))
        assert run(capsys, "-q", "train", "--arch", "lenet5", "--dataset", "synthetic16",
                   "--epochs", "1", "--seed", str(seed), "--out", members[-1],
                   "--data-path", str(synthetic16))[0] == 0
    code, out, err = run(capsys, "-q", "sample", "--checkpoint", *members, "--method",
                         "ensemble", "--samples", "4", "--data-path", str(synthetic16),
                         "--out", str(tmp_path / "ens"))
    assert code == 0 and "first member" in out, err
    code, _, err = run(capsys, "-q", "sample", "--checkpoint", str(ck), *members, "--method",
                       "bbb", "--data-path", str(synthetic16), "--out", str(tmp_path / "bad2"))
    assert code == 2 and "ensemble" in err


def test_export_writes_levels_and_a_manifest(capsys, synthetic, tmp_path):
    ck = tmp_path / "mlp"
    assert run(capsys, "-q", "train", "--dataset", "synthetic", "--epochs", "1", "--out",
               str(ck), "--data-path", str(synthetic))[0] == 0
    code, out, err = run(capsys, "export", "--checkpoint", str(ck), "--method", "scann",
                         "--precision", "8", "--out", str(tmp_path / "mlp-8bit"))
    assert code == 0 and "2 sampled layers" in out, err
    manifest = json.loads((tmp_path / "mlp-8bit.json").read_text())
    assert manifest["method"] == "scann" and manifest["precision"] == "8"
    code, _, err = run(capsys, "export", "--checkpoint", str(ck), "--method", "sc",
                       "--out", str(tmp_path / "bad"))
    assert code == 2 and "stochastic-computing" in err


def test_held_out_items_give_temperature_scaling_and_conformal_sets(capsys, synthetic, tmp_path):
    ck = tmp_path / "ck"
    assert run(capsys, "-q", "train", "--dataset", "synthetic", "--epochs", "2",
               "--calibration-items", "100", "--out", str(ck), "--data-path",
               str(synthetic))[0] == 0
    config = json.loads((ck / "config.json").read_text())
    assert config["calibration_items"] == 100
    out_dir = tmp_path / "eval"
    code, out, err = run(capsys, "-q", "evaluate", "--checkpoint", str(ck), "--samples", "10",
                         "--ood-items", "40", "--alpha", "0.1", "0.2", "--data-path",
                         str(synthetic), "--out", str(out_dir))
    assert code == 0, err
    m = json.loads((out_dir / "metrics.json").read_text())
    recal = m["recalibration"]["mean_probabilities"]
    assert recal["calibration_items"] == 100 and recal["temperature"] > 0
    assert recal["after"]["accuracy"] == recal["before"]["accuracy"]
    for reading in ("mean_probabilities", "vote_shares"):
        aps = m["conformal"][reading]["by_score"]["aps"]
        assert set(aps) == {"0.1", "0.2"}
        assert 0 < aps["0.1"]["test"]["mean_size"] <= 4
        assert aps["0.1"]["ood"]["noisy"]["coverage"] is not None  # noisy keeps its classes
        assert aps["0.1"]["ood"]["uniform-noise"]["coverage"] is None
    report = (out_dir / "report.md").read_text()
    assert "## Recalibration (temperature scaling)" in report
    assert "## Conformal prediction sets" in report and "APS sets at alpha 0.1" in out
    assert (out_dir / "figures" / "conformal-set-sizes.png").stat().st_size > 1000
    # a checkpoint that trained on every item says so instead
    code, out, err = run(capsys, "-q", "train", "--dataset", "synthetic", "--epochs", "1",
                         "--calibration-items", "400", "--out", str(tmp_path / "all"),
                         "--data-path", str(synthetic))
    assert code == 2 and "below 400" in err
    code, _, err = run(capsys, "-q", "evaluate", "--checkpoint", str(ck), "--alpha", "1.5")
    assert code == 2 and "(0, 1)" in err  # a usage error, one line, before any work
