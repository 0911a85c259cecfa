"""A user's data and model are read as given or refused in one line (issue 26): the order and
length of a DataLoader, integer inputs into a float network, outputs that are not
``[batch, classes]`` logits, half-precision networks and float64 inputs, non-UTF-8 names."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import synsample as ss
from synsample.errors import ConfigError


def _net(out: nn.Module | None = None) -> nn.Module:
    torch.manual_seed(0)
    layers = [nn.Flatten(), nn.Linear(16, 12), nn.ReLU(), nn.Dropout(0.2), nn.Linear(12, 3)]
    return nn.Sequential(*layers, *([out] if out is not None else [])).eval()


X = torch.rand(10, 1, 4, 4)


def test_a_loader_in_the_datasets_order_gives_the_same_votes_as_the_tensor():
    sto = ss.convert(_net(), "scann", gain="row")
    loader = DataLoader(TensorDataset(X, torch.zeros(10, dtype=torch.int64)), batch_size=4)
    a = ss.predict(sto, loader, samples=5, seed=1)
    b = ss.predict(sto, X, samples=5, seed=1)
    assert torch.equal(a.votes, b.votes)


@pytest.mark.parametrize("loader,expected", [
    (dict(shuffle=True), "shuffles or samples"),
    (dict(sampler=torch.utils.data.SubsetRandomSampler(range(5))), "shuffles or samples"),
    (dict(drop_last=True), r"drops the last 2 item\(s\)"),
])
def test_a_loader_that_reorders_or_drops_items_is_refused(loader, expected):
    sto = ss.convert(_net(), "scann", gain="row")
    data = DataLoader(TensorDataset(X, torch.zeros(10, dtype=torch.int64)), batch_size=4,
                      **loader)
    with pytest.raises(ConfigError, match=expected):
        ss.predict(sto, data, samples=2)


@pytest.mark.parametrize("dtype", [torch.uint8, torch.int64, torch.bool])
def test_integer_inputs_into_a_float_network_are_refused_by_every_method(dtype):
    x = (X * 255).to(dtype)
    for method in ("scann", "mc-dropout", "mc-dropconnect"):
        sto = ss.convert(_net(), method, **({"gain": "row"} if method == "scann" else {}))
        with pytest.raises(ConfigError, match=f"{dtype}|cannot compute on"):
            ss.predict(sto, x, samples=2)


class _Tuple(nn.Module):
    def forward(self, x):
        return x, x.sum(1)


class _Dict(nn.Module):
    def forward(self, x):
        return {"logits": x}


class _PerToken(nn.Module):
    def forward(self, x):
        return x[:, None, :].expand(-1, 5, -1)


@pytest.mark.parametrize("head,expected", [
    (_Tuple(), "returns a tuple"), (_Dict(), "returns a dict"),
    (_PerToken(), r"tensor of shape \(\d+, 5, 3\)")])
def test_an_output_that_is_not_batch_by_classes_logits_is_refused(head, expected):
    for method in ("scann", "mc-dropout"):
        sto = ss.convert(_net(head), method, **({"gain": "row"} if method == "scann" else {}))
        with pytest.raises(ConfigError, match=expected + ".*one \\[batch, classes\\] tensor"):
            ss.predict(sto, X, samples=2)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_a_half_precision_network_is_refused_in_one_line(dtype):
    sto = ss.convert(_net().to(dtype), "mc-dropout")
    with pytest.raises(ConfigError, match=f"{dtype}.*model.float\\(\\)"):
        ss.predict(sto, X.to(dtype), samples=2)


def test_float64_inputs_give_the_votes_of_float32_ones():
    sto = ss.convert(_net(), "scann", gain="row")
    a = ss.predict(sto, X.double(), samples=4, seed=2)
    b = ss.predict(sto, X, samples=4, seed=2)
    assert torch.equal(a.votes, b.votes)


def test_an_argument_that_is_not_utf8_is_refused_before_any_folder_is_made(tmp_path, capsys,
                                                                            monkeypatch):
    import os

    from synsample import cli

    monkeypatch.chdir(tmp_path)
    out = os.fsdecode(b"report-\xff")
    assert cli.main(["sample", "--checkpoint", "ck", "--out", out]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "report-\\xff" in err[0] and "not UTF-8" in err[0]
    assert list(tmp_path.iterdir()) == []


def test_a_dataset_of_dicts_is_refused_in_one_line():
    class Dicts(torch.utils.data.Dataset):
        def __len__(self):
            return 4

        def __getitem__(self, i):
            return {"image": X[i], "label": 0}

    with pytest.raises(ConfigError, match=r"items are dicts \(keys image, label\)"):
        ss.predict(ss.convert(_net(), "mc-dropout"), Dicts(), samples=2)


@pytest.mark.parametrize("labels,expected", [
    (torch.rand(10), "integer class indices, got torch.float32"),
    (torch.full((10,), 3), r"must lie in 0..2 .* got 3..3"),
    (torch.zeros(9, dtype=torch.int64), r"one class per item, \[10\]"),
])
def test_labels_that_are_not_classes_of_the_predictions_are_refused(labels, expected):
    from synsample import metrics

    pred = ss.predict(ss.convert(_net(), "mc-dropout"), X, samples=3)
    with pytest.raises(ConfigError, match=expected):
        metrics.summarize(pred, labels)
    with pytest.raises(ConfigError, match=expected):
        metrics.fit_temperature(pred.mean_probs, labels)
    with pytest.raises(ConfigError, match=expected):
        metrics.calibration_summary(pred.mean_probs, labels)


def test_evaluate_model_takes_any_labelled_dataset_for_calibration(synthetic):
    from synsample import data, evaluate, models
    from synsample.errors import DataError
    from synsample.methods import scann

    test = data.load("synthetic", "test", path=synthetic)
    net = models.build("mlp", input_shape=(1, 8, 8), num_classes=4, seed=0, init="uniform")
    sto = scann.convert(net)
    cal_x, cal_y = test.images[:40], test.labels[:40]
    kw = dict(samples=4, progress=False, ood_sets=("uniform-noise",))
    as_dataset, _, _ = evaluate.evaluate_model(sto, test, calibration=data.Dataset(
        "synthetic", "cal", cal_x, cal_y, test.classes), **kw)
    as_tensors, _, _ = evaluate.evaluate_model(sto, test, calibration=TensorDataset(cal_x, cal_y),
                                               **kw)
    as_loader, _, _ = evaluate.evaluate_model(
        sto, test, calibration=DataLoader(TensorDataset(cal_x, cal_y), batch_size=16), **kw)
    assert as_dataset["recalibration"] == as_tensors["recalibration"] == \
        as_loader["recalibration"]
    with pytest.raises(DataError, match="labels must be integer class indices"):
        evaluate.evaluate_model(sto, test, calibration=TensorDataset(cal_x, cal_y.float()), **kw)
    with pytest.raises(ConfigError, match="test set must be a synsample Dataset"):
        evaluate.evaluate_model(sto, TensorDataset(cal_x, cal_y), **kw)


def test_evaluate_model_refuses_labels_that_are_not_classes_before_any_pass(synthetic):
    from synsample import data, evaluate, models
    from synsample.methods import scann

    test = data.load("synthetic", "test", path=synthetic)
    net = models.build("mlp", input_shape=(1, 8, 8), num_classes=4, seed=0, init="uniform")
    sto = scann.convert(net)
    bad = data.Dataset("synthetic", "test", test.images, test.labels.float(), test.classes)
    with pytest.raises(ConfigError, match="test labels must be integer class indices"):
        evaluate.evaluate_model(sto, bad, samples=4, progress=False)
    assert sto.devices()[0].random_bits == 0


def test_a_users_except_valueerror_catches_synsample_mistakes():
    with pytest.raises(ValueError, match="predict takes a tensor"):
        ss.predict(ss.convert(_net(), "mc-dropout"), "not inputs", samples=2)
    with pytest.raises(ValueError, match="'num_classes' must be an integer"):
        from synsample import checkpoint

        checkpoint._check_network_fields(checkpoint.Path("ck"), {
            "arch": "mlp", "input_shape": [1, 8, 8], "num_classes": "10"})
