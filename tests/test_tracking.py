"""Tracked runs: `train --track` logs to a local MLflow store that the MLflow client reads
back; tracking off imports nothing."""

import subprocess
import sys

import pytest

from synsample import cli, tracking
from synsample.errors import ConfigError


def test_train_is_tracked_in_a_store_the_mlflow_client_reads(capsys, synthetic, tmp_path,
                                                             monkeypatch):
    pytest.importorskip("mlflow", reason="MLflow is the optional extra synsample[track]")
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    from mlflow.tracking import MlflowClient

    store = tmp_path / "mlruns"
    ck = tmp_path / "ck"
    assert cli.main(["-q", "train", "--dataset", "synthetic", "--epochs", "3", "--out", str(ck),
                     "--data-path", str(synthetic), "--track",
                     "--tracking-uri", str(store)]) == 0
    capsys.readouterr()
    client = MlflowClient(store.resolve().as_uri())
    experiment = client.get_experiment_by_name("synsample")
    (run,) = client.search_runs([experiment.experiment_id])
    assert run.info.status == "FINISHED" and run.info.run_name == "train mlp synthetic"
    params = run.data.params
    assert params["train.dataset"] == "synthetic" and params["train.epochs"] == "3"
    assert params["train.arch"] == "mlp" and params["out"] == str(ck)
    # the training curves: one point per epoch
    for name in ("loss", "train_accuracy", "test_accuracy"):
        curve = client.get_metric_history(run.info.run_id, name)
        assert [m.step for m in curve] == [1, 2, 3]
    assert 0 <= run.data.metrics["final_test_accuracy"] <= 1
    assert run.data.metrics["train_seconds"] > 0
    assert [a.path for a in client.list_artifacts(run.info.run_id)] == ["config.json"]
    # a resumed run (more epochs) logs the new epochs, and the earlier ones in its own run
    assert cli.main(["-q", "train", "--dataset", "synthetic", "--epochs", "4", "--out", str(ck),
                     "--data-path", str(synthetic), "--track",
                     "--tracking-uri", str(store)]) == 0
    latest = client.search_runs([experiment.experiment_id], order_by=["start_time DESC"])[0]
    assert sorted(m.step for m in client.get_metric_history(latest.info.run_id, "loss")) == \
        [1, 2, 3, 4]


def test_a_failing_tracked_run_is_marked_failed(tmp_path, monkeypatch):
    pytest.importorskip("mlflow", reason="MLflow is the optional extra synsample[track]")
    from mlflow.tracking import MlflowClient

    cfg = tracking.TrackingConfig(enabled=True, uri=str(tmp_path / "store"))
    with pytest.raises(RuntimeError), tracking.run(cfg, "broken", {"a": {"b": 1}}) as tracker:
        tracker.metrics({"x": 1.0, "nested": {"y": 2, "skip": float("nan")}, "text": "no"})
        raise RuntimeError("boom")
    client = MlflowClient(cfg.store_uri())
    (run,) = client.search_runs([client.get_experiment_by_name("synsample").experiment_id])
    assert run.info.status == "FAILED" and run.data.params == {"a.b": "1"}
    assert run.data.metrics == {"x": 1.0, "nested.y": 2.0}


def test_tracking_off_costs_nothing(tmp_path):
    code = ("import sys; from synsample import tracking\n"
            "with tracking.run(None, 'x', {'a': 1}) as t:\n"
            "    t.epoch({'epoch': 1, 'loss': 0.1}); t.artifact('missing')\n"
            "assert 'mlflow' not in sys.modules\n")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_tracking_without_mlflow_names_the_extra(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "mlflow", None)
    with pytest.raises(ConfigError, match=r"synsample\[track\]"):
        tracking.import_mlflow()
    assert cli.main(["train", "--out", "x", "--track"]) == 2
    assert "synsample[track]" in capsys.readouterr().err
    assert cli.main(["train", "--out", "x", "--tracking-uri", "y"]) == 2
    assert "--tracking-uri goes with --track" in capsys.readouterr().err


def test_evaluate_is_tracked_with_its_metrics_and_report(capsys, synthetic, tmp_path):
    pytest.importorskip("mlflow", reason="MLflow is the optional extra synsample[track]")
    from mlflow.tracking import MlflowClient

    ck, store = tmp_path / "ck", tmp_path / "mlruns"
    data = ["--data-path", str(synthetic)]
    assert cli.main(["-q", "train", "--dataset", "synthetic", "--epochs", "1", "--out", str(ck),
                     *data]) == 0
    assert cli.main(["-q", "evaluate", "--checkpoint", str(ck), "--samples", "4", *data,
                     "--ood-items", "20", "--out", str(tmp_path / "ev"), "--track",
                     "--tracking-uri", str(store)]) == 0
    capsys.readouterr()
    client = MlflowClient(store.resolve().as_uri())
    (run,) = client.search_runs([client.get_experiment_by_name("synsample").experiment_id])
    assert run.data.params["samples"] == "4" and run.data.params["method"] == "scann"
    assert 0 <= run.data.metrics["summary.accuracy"] <= 1 and "calibration.ece" in run.data.metrics
    assert "report.md" in [a.path for a in client.list_artifacts(run.info.run_id)]
