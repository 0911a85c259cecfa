import pytest
import torch
from torch import nn

from synsample import checkpoint
from synsample.errors import CheckpointError, ConfigError
from synsample.train import TrainConfig, constrain_, train

QUIET = {"progress": False, "log": lambda m: None}


def test_training_keeps_dense_weights_in_bounds_and_learns(synthetic, tmp_path):
    cfg = TrainConfig(dataset="synthetic", arch="mlp", epochs=3, lr=0.05, init="uniform")
    result = train(cfg, tmp_path / "ck", data_path=synthetic, **QUIET)
    model, config = checkpoint.load_model(tmp_path / "ck")
    for m in model.modules():
        if isinstance(m, nn.Linear):
            assert m.weight.abs().max() <= 1.0
    # a large learning rate pushes weights to the bound: the constraint really acts
    assert max(m.weight.abs().max().item() for m in model.modules()
               if isinstance(m, nn.Linear)) == 1.0
    assert result["history"][-1]["test_accuracy"] > 0.9  # 4 well separated classes
    assert config["input_shape"] == [1, 8, 8] and config["classes"] == ["a", "b", "c", "d"]


def test_resumed_training_equals_uninterrupted_training(synthetic, tmp_path):
    cfg = TrainConfig(dataset="synthetic", arch="mlp", epochs=2, seed=3)
    train(cfg, tmp_path / "once", data_path=synthetic, **QUIET)
    train(TrainConfig(dataset="synthetic", arch="mlp", epochs=1, seed=3), tmp_path / "twice",
          data_path=synthetic, **QUIET)
    result = train(cfg, tmp_path / "twice", data_path=synthetic, **QUIET)
    assert len(result["history"]) == 2
    a, _ = checkpoint.load_model(tmp_path / "once")
    b, _ = checkpoint.load_model(tmp_path / "twice")
    for (ka, va), (_, vb) in zip(a.state_dict().items(), b.state_dict().items(), strict=True):
        assert torch.equal(va, vb), ka


def test_a_different_run_in_the_folder_is_refused_and_kept(synthetic, tmp_path):
    train(TrainConfig(dataset="synthetic", epochs=1), tmp_path / "ck", data_path=synthetic,
          **QUIET)
    before = checkpoint.file(tmp_path / "ck").read_bytes()
    with pytest.raises(CheckpointError, match="different run.*seed: 0 there, 5 asked"):
        train(TrainConfig(dataset="synthetic", epochs=2, seed=5), tmp_path / "ck",
              data_path=synthetic, **QUIET)
    assert checkpoint.file(tmp_path / "ck").read_bytes() == before


def test_bad_configs(synthetic, tmp_path):
    with pytest.raises(ConfigError):
        train(TrainConfig(dataset="synthetic", epochs=0), tmp_path / "x", data_path=synthetic,
              **QUIET)
    with pytest.raises(ConfigError, match="unknown architecture"):
        train(TrainConfig(dataset="synthetic", arch="resnet"), tmp_path / "x",
              data_path=synthetic, **QUIET)


def test_constrain_clips_only_the_chosen_types():
    net = nn.Sequential(nn.Conv2d(1, 1, 1), nn.Flatten(), nn.Linear(1, 1))
    with torch.no_grad():
        net[0].weight.fill_(3.0)
        net[2].weight.fill_(-3.0)
    constrain_(net)
    assert net[0].weight.item() == 3.0 and net[2].weight.item() == -1.0


def test_damaged_checkpoints_give_clear_errors(synthetic, tmp_path):
    with pytest.raises(CheckpointError, match="is not a folder"):
        checkpoint.load_model(tmp_path / "nothing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(CheckpointError, match="holds no checkpoint"):
        checkpoint.load_model(tmp_path / "empty")
    train(TrainConfig(dataset="synthetic", epochs=1), tmp_path / "ck", data_path=synthetic,
          **QUIET)
    model_file = checkpoint.file(tmp_path / "ck")
    good = model_file.read_bytes()
    model_file.write_bytes(good[:100])
    with pytest.raises(CheckpointError, match="model-e0001.safetensors does not match the SHA"):
        checkpoint.load_model(tmp_path / "ck")
    flipped = bytearray(good)
    for i in range(len(good) - 20, len(good)):  # 20 flipped bytes in the last weights
        flipped[i] ^= 0xFF
    model_file.write_bytes(bytes(flipped))
    with pytest.raises(CheckpointError, match="does not match the SHA-256"):
        checkpoint.load_model(tmp_path / "ck")
    (tmp_path / "ck" / "config.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="not valid JSON"):
        checkpoint.load_model(tmp_path / "ck")


@pytest.mark.parametrize("edit,message", [
    (lambda c, out: c["files"].update(model="../outside/x.safetensors"), "own folder"),
    (lambda c, out: c["files"].update(model=str(out / "x.safetensors")), "own folder"),
    (lambda c, out: c.pop("sha256"), "no SHA-256"),
    (lambda c, out: c["sha256"].pop("model"), "no SHA-256"),
    (lambda c, out: c.update(files=["model.safetensors"]), "'files' must name"),
    (lambda c, out: c.update(replaced_files=["/etc/passwd"]), "replaced_files"),
])
def test_a_config_that_points_outside_or_drops_its_checksums_is_refused(synthetic, tmp_path,
                                                                        edit, message):
    """A checkpoint loads only its own, checked weights: an edited config.json can neither
    point them outside the folder nor switch the check off (zeroed weights would sample)."""
    import json

    ck = tmp_path / "ck"
    train(TrainConfig(dataset="synthetic", epochs=1), ck, data_path=synthetic, **QUIET)
    outside = tmp_path / "outside"
    outside.mkdir()
    blob = checkpoint.file(ck).read_bytes()
    (outside / "x.safetensors").write_bytes(blob)
    config = json.loads((ck / "config.json").read_text())
    edit(config, outside)
    (ck / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match=message):
        checkpoint.load_model(ck)


def test_a_users_own_weight_files_in_the_folder_are_never_removed(synthetic, tmp_path):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "model_final.safetensors").write_bytes(b"the user's own weights")
    (out / "training_state-best.safetensors").write_bytes(b"and their optimizer")
    train(TrainConfig(dataset="synthetic", epochs=2), out, data_path=synthetic, **QUIET)
    assert (out / "model_final.safetensors").read_bytes() == b"the user's own weights"
    assert (out / "training_state-best.safetensors").read_bytes() == b"and their optimizer"
    assert sorted(p.name for p in out.glob("model-*.safetensors")) == ["model-e0002.safetensors"]


def test_nsm_training_uses_its_recipe_learns_and_resumes_exactly(synthetic, tmp_path):
    cfg = TrainConfig.for_arch("nsm-mlp", dataset="synthetic", epochs=3, lr=1e-2, seed=1,
                               trace_steps=5)
    assert (cfg.optimizer, cfg.weight_bound, cfg.data_init, cfg.noise) == (
        "adam", None, True, "bernoulli:0.5")
    result = train(cfg, tmp_path / "once", data_path=synthetic, **QUIET)
    assert result["history"][-1]["test_accuracy"] > 0.9  # one sampled pass
    assert len(result["argument_percentiles"]) == 5  # Fig. 2's trace: step, p15, p50, p85
    for stats in result["data_init_stats"].values():  # eq. 8 ran on the first batch
        assert abs(stats["mean"]) < 1e-4 and abs(stats["std"] - 1) < 1e-3
    train(TrainConfig.for_arch("nsm-mlp", dataset="synthetic", epochs=2, lr=1e-2, seed=1,
                               trace_steps=5), tmp_path / "twice", data_path=synthetic, **QUIET)
    train(cfg, tmp_path / "twice", data_path=synthetic, **QUIET)
    a, _ = checkpoint.load_model(tmp_path / "once")
    b, _ = checkpoint.load_model(tmp_path / "twice")
    for (ka, va), (_, vb) in zip(a.state_dict().items(), b.state_dict().items(), strict=True):
        assert torch.equal(va, vb), ka


def test_scann_job_configs_keep_their_keys():
    cfg = TrainConfig(dataset="mnist", arch="mlp")
    assert set(cfg.job_config()) == {"dataset", "arch", "epochs", "seed", "batch_size", "lr",
                                     "rho", "eps", "dropout", "init", "weight_bound"}
    assert TrainConfig.for_arch("nsm-mlp").job_config()["noise"] == "bernoulli:0.5"
    with pytest.raises(ConfigError, match="nsm-"):
        TrainConfig.for_arch("mlp", noise="gaussian:1").check()


class _Killed(BaseException):
    """Stands for SIGKILL: nothing after the write it follows runs."""


@pytest.mark.parametrize("instant", [("write_bytes", 3), ("write_bytes", 4), ("write_json", 2)],
                         ids=["after-new-weights", "after-new-optimizer-state",
                              "after-config-switch"])
def test_a_kill_while_a_checkpoint_is_written_resumes_to_the_uninterrupted_result(
        synthetic, tmp_path, monkeypatch, instant):
    cfg = TrainConfig(dataset="synthetic", arch="mlp", epochs=3, seed=4)
    train(cfg, tmp_path / "once", data_path=synthetic, **QUIET)
    name, nth = instant
    real = getattr(checkpoint, name)
    calls = []

    def write_then_die(*args, **kwargs):
        real(*args, **kwargs)
        calls.append(args[0])
        if len(calls) == nth:
            raise _Killed
    monkeypatch.setattr(checkpoint, name, write_then_die)
    with pytest.raises(_Killed):
        train(cfg, tmp_path / "killed", data_path=synthetic, **QUIET)
    monkeypatch.setattr(checkpoint, name, real)
    saved = checkpoint.read_config(tmp_path / "killed")  # old or new, whole
    assert checkpoint.load_model(tmp_path / "killed")
    assert len(saved["history"]) == (2 if name == "write_json" else 1)
    train(cfg, tmp_path / "killed", data_path=synthetic, **QUIET)
    a, _ = checkpoint.load_model(tmp_path / "once")
    b, _ = checkpoint.load_model(tmp_path / "killed")
    for (ka, va), (_, vb) in zip(a.state_dict().items(), b.state_dict().items(), strict=True):
        assert torch.equal(va, vb), ka
    files = sorted(p.name for p in (tmp_path / "killed").glob("*.safetensors"))
    assert files == ["model-e0003.safetensors", "training_state-e0003.safetensors"]


def test_a_second_writer_of_the_same_folder_fails_at_once(synthetic, tmp_path):
    from synsample.io import folder_lock

    with folder_lock(tmp_path / "ck"):
        import subprocess
        import sys

        code = ("from synsample.train import TrainConfig, train\n"
                f"train(TrainConfig(epochs=1), {str(tmp_path / 'ck')!r}, progress=False)")
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode != 0
    assert "is in use by another synsample run (pid" in proc.stderr
    assert not checkpoint.exists(tmp_path / "ck")


def test_a_diverging_run_is_stopped_and_keeps_its_last_finite_epoch(synthetic, tmp_path):
    with pytest.raises(ConfigError, match="lr must be finite"):
        train(TrainConfig(dataset="synthetic", lr=float("nan")), tmp_path / "x",
              data_path=synthetic, **QUIET)
    train(TrainConfig(dataset="synthetic", epochs=1, lr=1e-3), tmp_path / "ck",
          data_path=synthetic, **QUIET)
    before = checkpoint.file(tmp_path / "ck").read_bytes()
    with pytest.raises(ConfigError, match="training diverged"):
        train(TrainConfig(dataset="synthetic", epochs=1, lr=1e38, weight_bound=None,
                          optimizer="sgd", init="uniform"), tmp_path / "big",
              data_path=synthetic, **QUIET)
    assert not checkpoint.exists(tmp_path / "big")
    assert checkpoint.file(tmp_path / "ck").read_bytes() == before


def test_a_bayesian_network_spreads_its_kl_term_over_the_training_items_from_the_start():
    """The ELBO's KL term is divided by the number of training items in every step, the first
    epoch included; a loader that cannot say how many items it has needs ``train_items``."""
    from synsample.methods.bbb import bayesian
    from synsample.train import fit

    torch.manual_seed(0)
    x, y = torch.randn(64, 6), torch.randint(0, 3, (64,))  # synthetic data
    net = nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 3))
    batches = [(x[i:i + 16], y[i:i + 16]) for i in range(0, 64, 16)]
    with pytest.raises(ConfigError, match="give train_items=N"):
        fit(bayesian(net), batches)
    class Loader(list):  # the same batches, saying how many items they hold, as a DataLoader
        dataset = range(64)

    histories = []
    for loader, items in ((Loader(batches), None), (batches, 64)):
        torch.manual_seed(1)
        histories.append(fit(bayesian(net), loader, epochs=2, train_items=items))
    assert histories[0] == histories[1]
