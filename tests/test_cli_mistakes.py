"""The mistakes a new user makes, through the command line: each gets exit status 2, one line on
stderr that starts ``synsample: error:``, no traceback, and leaves every earlier file as it was.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from synsample import checkpoint, cli
from synsample.train import TrainConfig, train


def _snapshot(*roots: Path) -> dict[Path, str]:
    return {p: hashlib.sha256(p.read_bytes()).hexdigest()
            for root in roots if root.exists() for p in root.rglob("*") if p.is_file()}


def _unwritable_place(tmp_path: Path) -> Path:
    """A folder this process cannot create files in (a read-only folder, or as root a
    read-only system folder); skips when there is none."""
    if os.geteuid() != 0:
        ro = tmp_path / "read-only"
        ro.mkdir()
        ro.chmod(0o555)
        return ro / "out"
    for candidate in (Path("/sys/synsample-test"), Path("/proc/synsample-test")):
        try:
            candidate.mkdir()
        except OSError:
            return candidate / "out"
        candidate.rmdir()
    pytest.skip("no unwritable folder to test with on this machine")


@pytest.fixture
def world(synthetic, tmp_path, monkeypatch):
    """A trained checkpoint on the synthetic set, a NaN cost file, an unwritable place."""
    monkeypatch.chdir(tmp_path)
    ck = tmp_path / "ck"
    train(TrainConfig(dataset="synthetic", epochs=1), ck, data_path=synthetic, progress=False,
          log=lambda m: None)
    (tmp_path / "a-file").write_text("not a folder\n")
    (tmp_path / "earlier").mkdir()
    (tmp_path / "earlier" / "report.md").write_text("# an earlier run's report\n")
    (tmp_path / "mine.json").write_text('{"a user\'s": "own file"}')
    (tmp_path / "net.safetensors").mkdir()
    (tmp_path / "nan-costs.json").write_text('{"pj_per_op": {"mac": NaN}}')
    (tmp_path / "inf-costs.json").write_text('{"pj_per_weight_bit_read": 1e400}')
    def edited(name, **changes):
        """A copy of the checkpoint with its config.json edited."""
        copy = tmp_path / name
        copy.mkdir()
        for f in ck.iterdir():
            if f.is_file() and not f.name.startswith("."):
                (copy / f.name).write_bytes(f.read_bytes())
        cfg = json.loads((copy / "config.json").read_text())
        (copy / "config.json").write_text(json.dumps({**cfg, **changes}))
        return str(copy)

    edits = {"alien": {"arch": "transformer"}, "many-classes": {"num_classes": 10**12},
             "text-classes": {"num_classes": "10"}, "huge-input": {"input_shape": [1, 10**5,
                                                                                     10**5]},
             "files-list": {"files": ["model.safetensors"]}, "dropout-text": {"dropout": "0.5"}}
    edited_checkpoints = {name: edited(name, **changes) for name, changes in edits.items()}
    (tmp_path / "linked").mkdir()
    (tmp_path / "linked" / ".synsample.lock").symlink_to(tmp_path / "a-file")
    return {"ck": str(ck), "data": str(synthetic), "tmp": tmp_path,
            "ro": str(_unwritable_place(tmp_path)), **edited_checkpoints}


CASES = {
    "train on CUDA without CUDA": (
        "train --dataset synthetic --data-path {data} --out {tmp}/t --device cuda",
        "cannot run here"),
    "sample on a TPU": ("sample --checkpoint {ck} --data-path {data} --device tpu",
                        "not a torch device|cannot run here"),
    "evaluate on CUDA without CUDA": (
        "evaluate --checkpoint {ck} --data-path {data} --device cuda:3", "cannot run here"),
    "reproduce on CUDA without CUDA": ("reproduce scann-table1 --device cuda --out {tmp}/r",
                                       "cannot run here"),
    "train into a file": ("train --dataset synthetic --data-path {data} --out {tmp}/a-file",
                          "is a file"),
    "train below a file": (
        "train --dataset synthetic --data-path {data} --out {tmp}/a-file/ck", "is a file"),
    "train into a read-only place": (
        "train --dataset synthetic --data-path {data} --out {ro}", "not writable"),
    "sample into a read-only place": ("sample --checkpoint {ck} --data-path {data} --out {ro}",
                                      "not writable"),
    "sample into a file": ("sample --checkpoint {ck} --data-path {data} --out {tmp}/a-file",
                           "is a file"),
    "evaluate into a read-only place": (
        "evaluate --checkpoint {ck} --data-path {data} --out {ro}", "not writable"),
    "export into a read-only place": (
        "export --checkpoint {ck} --method scann --out {ro}/net", "not writable"),
    "export onto a folder": ("export --checkpoint {ck} --method scann --out {tmp}/net",
                             "is a folder"),
    "reproduce with a read-only job store": (
        "reproduce scann-table1 --jobs {ro} --out {tmp}/r", "not writable"),
    "reproduce into a file": ("reproduce scann-table1 --out {tmp}/a-file", "is a file"),
    "train with lr nan": ("train --dataset synthetic --data-path {data} --out {tmp}/t --lr nan",
                          "lr must be finite"),
    "train with lr inf": ("train --dataset synthetic --data-path {data} --out {tmp}/t --lr inf",
                          "lr must be finite"),
    "a trillion passes": ("sample --checkpoint {ck} --data-path {data} --samples 1000000000000",
                          "item-passes"),
    "NaN in a cost assumption file": (
        "evaluate --checkpoint {ck} --data-path {data} --cost-assumptions {tmp}/nan-costs.json",
        "NaN"),
    "inf in a cost assumption file": (
        "sample --checkpoint {ck} --data-path {data} --cost-assumptions {tmp}/inf-costs.json",
        "non-negative number"),
    "a cost assumption folder": (
        "sample --checkpoint {ck} --data-path {data} --cost-assumptions {tmp}", "cannot read"),
    "stream length on scANN": (
        "sample --checkpoint {ck} --data-path {data} --stream-length 100000000",
        "--stream-length set the bitstreams of --method sc"),
    "an unknown architecture in a checkpoint": (
        "sample --checkpoint {alien} --data-path {data}", "'transformer' is not one"),
    "a trillion classes in a checkpoint": (
        "sample --checkpoint {many-classes} --data-path {data}", "'num_classes' must be an int"),
    "classes as text in a checkpoint": (
        "evaluate --checkpoint {text-classes} --data-path {data}", "got 10;"),
    "a 10^10-pixel input in a checkpoint": (
        "export --checkpoint {huge-input} --method scann --out {tmp}/x",
        "10,000,000,000 values per item"),
    "a list of files in a checkpoint": (
        "sample --checkpoint {files-list} --data-path {data}", "'files' must name"),
    "a dropout as text in a checkpoint": (
        "sample --checkpoint {dropout-text} --data-path {data}", "'dropout' must be float"),
    "a checkpoint that is not a folder": ("evaluate --checkpoint {tmp}/a-file",
                                          "is not a folder"),
    "zero passes": ("sample --checkpoint {ck} --samples 0",
                    "expected a positive integer, got '0'.*synsample sample --help"),
    "a misspelt experiment": ("reproduce tabel1", "invalid choice: 'tabel1'"),
    "another experiment's option": ("reproduce scann-table1 --lengths 100",
                                    "unrecognized arguments: --lengths"),
    "a dataset no paper table has": ("reproduce scann-table1 --dataset cifar10",
                                     "invalid choice: 'cifar10'"),
    "a missing cost file for an experiment": (
        "reproduce costs --cost-assumptions {tmp}/missing.json --out {tmp}/c",
        "no cost assumption file"),
    "sampling-aware training of a LeNet-5": (
        "reproduce robustness --method mc-dropout --sampling-aware --out {tmp}/r",
        "sampling-aware training is for scANN networks"),
    "a Ray address where nothing listens": (
        "sample --checkpoint {ck} --data-path {data} --runner ray --address 127.0.0.1:1",
        "nothing answers at 127.0.0.1:1"),
    "a Ray address of the wrong form": (
        "sample --checkpoint {ck} --data-path {data} --runner ray --address nonsense",
        "must be HOST:PORT"),
    "a tracking server that does not answer": (
        "evaluate --checkpoint {ck} --data-path {data} --track --tracking-uri "
        "http://127.0.0.1:9/", "nothing answers at 127.0.0.1:9"),
    "a tracking URI of an unknown kind": (
        "evaluate --checkpoint {ck} --data-path {data} --track --tracking-uri bogus://x",
        "unknown kind of store 'bogus'"),
    "--min-samples without --adaptive": (
        "sample --checkpoint {ck} --data-path {data} --min-samples 50", "goes with --adaptive"),
    "--min-samples above --samples": (
        "sample --checkpoint {ck} --data-path {data} --adaptive 0.99 --min-samples 50 "
        "--samples 20", "more than --samples"),
    "an ensemble of one checkpoint": (
        "sample --checkpoint {ck} --data-path {data} --method ensemble", "at least two"),
    "the same checkpoint twice": (
        "sample --checkpoint {ck} {ck} --data-path {data} --method ensemble",
        "more than once"),
    "sample into a folder with an earlier report": (
        "sample --checkpoint {ck} --data-path {data} --out {tmp}/earlier",
        "already holds a report"),
    "evaluate into a folder with an earlier report": (
        "evaluate --checkpoint {ck} --data-path {data} --out {tmp}/earlier",
        "already holds a report"),
    "an export over a user's own file": (
        "export --checkpoint {ck} --method scann --out {tmp}/mine",
        "mine.json exists and is not a synsample export"),
    "a lock file that is a symlink": (
        "sample --checkpoint {ck} --data-path {data} --out {tmp}/linked", "symbolic link"),
}


def test_every_mistake_gets_one_line_exit_2_and_changes_nothing(world, capsys):
    for name, (command, expected) in CASES.items():
        before = _snapshot(world["tmp"])
        argv = command.format(**world).split()
        status = cli.main(argv)
        err = [line for line in capsys.readouterr().err.strip().splitlines()
               if not line.startswith("synsample: warning: ")]  # a warning is its own line
        assert status == 2, (name, status, err)
        assert len(err) == 1 and err[0].startswith("synsample: error: "), (name, err)
        import re

        assert re.search(expected, err[0]), (name, err[0])
        after = _snapshot(world["tmp"])
        assert {p: after.get(p) for p in before} == before, name


def test_an_unwritable_cache_is_refused_before_any_fetch(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("SYNSAMPLE_HOME", _unwritable_place(tmp_path).parent.as_posix())
    assert cli.main(["data", "fetch", "mnist"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "dataset cache" in err[0] and "SYNSAMPLE_HOME" in err[0]


def test_a_busy_report_folder_is_refused_at_once(world, capsys):
    from synsample.io import folder_lock

    with folder_lock(world["tmp"] / "busy"):
        code = ("import sys; from synsample import cli; sys.exit(cli.main(sys.argv[1:]))")
        env = {**os.environ, "SYNSAMPLE_HOME": os.environ["SYNSAMPLE_HOME"]}
        proc = subprocess.run([sys.executable, "-c", code, "reproduce", "scann-table1", "--out",
                               str(world["tmp"] / "busy")], capture_output=True, text=True,
                              env=env, cwd=world["tmp"])
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "in use by another synsample run (pid" in lines[0]
    assert "Traceback" not in proc.stderr


def test_a_missing_or_corrupt_ood_set_fails_before_sampling_unless_skipped(synthetic, tmp_path):
    from synsample import data, devices, evaluate, models
    from synsample.data import cache
    from synsample.errors import DataError
    from synsample.methods import scann

    test = data.load("synthetic", "test", path=synthetic)
    as_mnist = data.Dataset("mnist", "test", test.images, test.labels, test.classes, "synthetic",
                            None)  # named MNIST so that its 'other' set is Fashion-MNIST
    corrupt = cache.split_path("fashion-mnist", "test")
    corrupt.parent.mkdir(parents=True)
    corrupt.write_bytes(b"\0" * 64)
    net = models.build("mlp", input_shape=(1, 8, 8), num_classes=4, seed=0, init="uniform")
    sto = scann.convert(net, coin=devices.IdealCoin())
    with pytest.raises(DataError, match="OoD set 'other'.*corrupt.*--skip-ood other"):
        evaluate.evaluate_model(sto, as_mnist, samples=4, progress=False)
    assert sto.devices()[0].random_bits == 0  # refused before any pass was drawn
    result, _, _ = evaluate.evaluate_model(sto, as_mnist, samples=4, progress=False,
                                           ood_sets=("other", "uniform-noise"),
                                           skip_ood=("other",))
    assert set(result["ood"]) == {"uniform-noise"}
    assert result["ood_skipped"] == {"other": "left out on request"}


def test_data_list_prints_the_whole_fix(capsys):
    from synsample.data import cache

    corrupt = cache.split_path("fashion-mnist", "test")
    corrupt.parent.mkdir(parents=True)
    corrupt.write_bytes(b"\0" * 64)
    assert cli.main(["data", "list"]) == 0
    out = capsys.readouterr().out
    assert "FAILS CHECK" in out and "`synsample data fetch fashion-mnist --force`" in out


def test_non_finite_inputs_and_parameters_are_refused_by_the_engine():
    from synsample import engine, models
    from synsample.errors import ConfigError
    from synsample.methods import scann

    net = models.build("mlp", input_shape=(1, 8, 8), num_classes=4, seed=0, init="uniform")
    sto = scann.convert(net)
    x = torch.rand(5, 1, 8, 8) * 255
    x[2, 0, 3, 3] = float("nan")
    with pytest.raises(ConfigError, match="inputs hold 1 NaN"):
        engine.predict(sto, x, samples=2)
    with pytest.raises(ConfigError, match="divides its input by 255 itself"):
        engine.predict(sto, torch.rand(5, 1, 8, 8), samples=2)  # floats in [0, 1]
    net[-1].bias.data[1] = float("inf")
    with pytest.raises(ConfigError, match=r"the model's .*bias holds 1 NaN or infinite"):
        engine.predict(scann.convert(net), x.nan_to_num(), samples=2)


def test_a_bit_level_stream_too_long_for_memory_is_refused_with_an_estimate():
    from synsample import engine
    from synsample.errors import ConfigError
    from synsample.methods import sc
    from synsample.models import build

    net = build("sc-mlp", input_shape=(1, 8, 8), num_classes=4, seed=0)
    sto = sc.convert(net, length=10**9, path="bits")
    with pytest.raises(ConfigError, match=r"bit path's weight streams.*GiB"):
        engine.predict(sto, torch.randint(0, 256, (3, 1, 8, 8), dtype=torch.uint8), samples=2)


def _options(parser: argparse.ArgumentParser, name: str = "synsample"):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub, sub_parser in action.choices.items():
                yield from _options(sub_parser, f"{name} {sub}")
        else:
            yield name, parser, action


def test_every_help_runs_and_every_option_names_its_default(capsys):
    parser = cli.build_parser()
    commands = {name for name, _, _ in _options(parser)}
    for command in sorted(commands):
        with pytest.raises(SystemExit) as done:
            cli.main([*command.split()[1:], "--help"])
        assert done.value.code == 0
        assert "usage: " + command in capsys.readouterr().out
    silent = [(name, action.option_strings[-1]) for name, _, action in _options(parser)
              if action.option_strings and not action.required and action.nargs != 0
              and "default" not in (action.help or "").lower()]
    assert silent == []


def test_a_real_process_prints_no_traceback(world):
    proc = subprocess.run([sys.executable, "-m", "synsample.cli", "train", "--dataset", "mnist",
                           "--out", str(world["tmp"] / "t"), "--lr", "nan"],
                          capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.startswith("synsample: error: ") and "Traceback" not in proc.stderr
    assert not checkpoint.exists(world["tmp"] / "t")
