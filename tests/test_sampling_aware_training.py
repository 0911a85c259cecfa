"""Sampling-aware training (issue 20) end to end on synthetic data: seeded, reproducible,
resumable, and its network sampled by the unchanged engine."""

import pytest
import torch
from torch import nn

from synsample import checkpoint, cli, devices, engine, methods
from synsample.errors import CheckpointError, ConfigError
from synsample.train import SAMPLING_AWARE_DROPOUT, TrainConfig, fit, train

QUIET = {"progress": False, "log": lambda m: None}


def _sa(epochs: int = 2) -> TrainConfig:
    return TrainConfig(dataset="synthetic", epochs=epochs, lr=0.02, sampling_aware="4",
                       dropout=SAMPLING_AWARE_DROPOUT)


def _state(folder):
    return checkpoint.load_model(folder)[0].state_dict()


def test_training_through_coins_is_seeded_reproducible_and_resumable(synthetic, tmp_path):
    train(_sa(), tmp_path / "a", data_path=synthetic, **QUIET)
    train(_sa(), tmp_path / "b", data_path=synthetic, **QUIET)
    train(_sa(epochs=1), tmp_path / "c", data_path=synthetic, **QUIET)
    train(_sa(), tmp_path / "c", data_path=synthetic, **QUIET)  # resumed to 2 epochs
    post = TrainConfig(dataset="synthetic", epochs=2, lr=0.02, dropout=SAMPLING_AWARE_DROPOUT)
    train(post, tmp_path / "post", data_path=synthetic, **QUIET)
    a, b, c, p = (_state(tmp_path / k) for k in ("a", "b", "c", "post"))
    for k in a:
        assert torch.equal(a[k], b[k]) and torch.equal(a[k], c[k]), k
    assert not torch.equal(a["2.weight"], p["2.weight"])  # the coins changed the training
    assert set(a) == set(p) and a["2.weight"].abs().max() <= 1.0  # an ordinary checkpoint
    with pytest.raises(CheckpointError, match="different run.*sampling_aware"):
        train(post, tmp_path / "a", data_path=synthetic, **QUIET)


def test_the_trained_network_samples_through_the_unchanged_engine(synthetic, tmp_path):
    result = train(_sa(), tmp_path / "ck", data_path=synthetic, **QUIET)
    assert result["sampling_aware"] == "4" and result["sa_estimator"] == "lrt"
    model, _ = checkpoint.load_model(tmp_path / "ck")
    model[2].weight.data[0, 0] = 1.0  # (the 2-epoch weights are small: quiet the warning)
    model[5].weight.data[0, 0] = 1.0
    x = torch.randint(0, 256, (50, 1, 8, 8), dtype=torch.uint8)
    sto = methods.scann.convert(model, coin=devices.QuantizedCoin(4))
    one = engine.predict(sto, x, samples=40, seed=5, progress=False)
    two = engine.predict(methods.scann.convert(model, precision="4"), x, samples=40, seed=5,
                         progress=False)
    assert torch.equal(one.votes, two.votes) and one.votes.sum() == 50 * 40


def test_job_keys_of_post_hoc_training_are_unchanged():
    post = TrainConfig().job_config()
    assert "sampling_aware" not in post and "sa_estimator" not in post
    sa = TrainConfig(sampling_aware="full").job_config()
    assert sa["sampling_aware"] == "full" and "sa_estimator" not in sa
    assert TrainConfig(sampling_aware="full", sa_estimator="ste").job_config()[
        "sa_estimator"] == "ste"


@pytest.mark.parametrize("cfg, match", [
    (TrainConfig(sampling_aware="nonideal:wobble=1"), "non-ideal coin part"),
    (TrainConfig(sampling_aware="full", sa_estimator="reinforce"), "estimator"),
    (TrainConfig(sampling_aware="full", weight_bound=None), "clipped to"),
    (TrainConfig(arch="nsm-mlp", sampling_aware="full"), "scANN networks"),
])
def test_bad_sampling_aware_configs(cfg, match):
    with pytest.raises(ConfigError, match=match):
        cfg.check()


def test_fit_trains_a_users_network_through_nonideal_coins():
    torch.manual_seed(0)
    x = torch.rand(64, 5)
    y = (x[:, 0] > 0.5).long()
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=16)
    net = nn.Sequential(nn.Linear(5, 8), nn.ReLU(), nn.Linear(8, 2))
    fit(net, loader, epochs=2, lr=0.05, weight_bound=1.0,
        sampling_aware_coin="nonideal:bits=8,spread=0.05,stuck=0.02")
    assert "forward" not in vars(net[0]) and net[0].weight.abs().max() <= 1.0
    with pytest.raises(ConfigError, match="weight_bound=1.0"):
        fit(net, loader, sampling_aware_coin="full")


def test_cli_train_sampling_aware_and_a_bad_coin(capsys, synthetic, tmp_path):
    code = cli.main(["-q", "train", "--dataset", "synthetic", "--epochs", "1", "--out",
                     str(tmp_path / "ck"), "--data-path", str(synthetic), "--sampling-aware",
                     "8", "--sa-estimator", "ste"])
    assert code == 0
    config = checkpoint.read_config(tmp_path / "ck")
    assert (config["sampling_aware"], config["sa_estimator"], config["dropout"]) == \
        ("8", "ste", SAMPLING_AWARE_DROPOUT)
    capsys.readouterr()
    code = cli.main(["-q", "train", "--dataset", "synthetic", "--out", str(tmp_path / "x"),
                     "--data-path", str(synthetic), "--sampling-aware", "nonideal:bias=high"])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("synsample: error:") and err.count("\n") == 1
