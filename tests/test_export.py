"""Export for hardware: the round trip gives the same votes, the levels are what the manifest
says, a damaged file is a clear error."""

import json

import pytest
import torch

from synsample import checkpoint, engine, export, models
from synsample.errors import CheckpointError, ConfigError
from synsample.evaluate import convert_checkpoint_model


def _checkpoint(folder, arch, shape=(1, 8, 8), **options):
    net = models.build(arch, input_shape=shape, num_classes=4, seed=0, **options)
    torch.manual_seed(1)
    with torch.no_grad():
        for p in net.parameters():
            p.add_(0.05 * torch.randn_like(p))
        for m in net.modules():
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                m.running_mean.normal_(0, 0.1)
    config = {"arch": arch, "input_shape": list(shape), "num_classes": 4,
              "dataset": "synthetic16" if shape[1] == 16 else "synthetic", **options}
    if arch == "mlp":
        config["dropout"] = 0.5
    checkpoint.save(folder, net, config)
    return folder


@pytest.mark.parametrize("method,arch,precision,options", [
    ("scann", "mlp", "8", {}), ("scann", "mlp", "full", {}),
    ("sc", "sc-mlp", "full", {"states": 11}), ("spinbayes", "lenet5-bbb", "4", {}),
    ("spinbayes", "lenet5-bbb", "12", {})])
def test_round_trip_gives_identical_votes(method, arch, precision, options, tmp_path,
                                          synthetic16, synthetic):
    shape = (1, 16, 16) if arch.startswith("lenet5") else (1, 8, 8)
    ck = _checkpoint(tmp_path / "ck", arch, shape, **options)
    data_path = synthetic16 if shape[1] == 16 else synthetic
    manifest = export.export(ck, method, tmp_path / "model", precision, stream_length=40,
                             data_path=data_path)
    assert json.loads((tmp_path / "model.json").read_text()) == manifest
    assert manifest["format"] == export.FORMAT and manifest["layers"]
    model, config = checkpoint.load_model(ck)
    original = convert_checkpoint_model(method, model, config, precision,
                                        {"stream_length": 40} if method == "sc" else {},
                                        data_path)
    loaded = export.load(tmp_path / "model.safetensors")
    x = (torch.rand(16, *shape, generator=torch.Generator().manual_seed(2)) * 255).to(
        torch.uint8)
    for mode in ("shared", "independent"):
        a = engine.predict(original, x, samples=7, seed=11, mode=mode)
        b = engine.predict(loaded, x, samples=7, seed=11, mode=mode)
        assert torch.equal(a.votes, b.votes) and torch.equal(a.mean_probs, b.mean_probs)


def test_levels_follow_their_encoding(tmp_path, synthetic):
    from safetensors.torch import load_file

    ck = _checkpoint(tmp_path / "ck", "mlp")
    manifest = export.export(ck, "scann", tmp_path / "m", "4")
    first = manifest["layers"][0]
    assert first["encoding"].startswith("P(1) = |level| / 2^4")
    tensors = load_file(str(tmp_path / "m.safetensors"))
    levels = tensors[first["tensor"]]
    assert list(levels.shape) == first["shape"] == [400, 64]
    assert levels.dtype == torch.int32 and levels.abs().max() <= 15
    net, _ = checkpoint.load_model(ck)
    w = net[2].weight.detach()
    assert torch.equal(levels.sign()[levels != 0], w.sign()[levels != 0].to(torch.int32))
    assert torch.equal(levels.abs(), torch.round(w.abs() * 16).clamp(max=15).to(torch.int32))


def test_bad_exports_are_clear_errors(tmp_path):
    ck = _checkpoint(tmp_path / "ck", "mlp")
    with pytest.raises(ConfigError, match="export supports"):
        export.export(ck, "nsm", tmp_path / "m")
    (tmp_path / "junk.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(CheckpointError, match="not a synsample export"):
        export.load(tmp_path / "junk.safetensors")


def test_a_users_own_network_round_trips_into_an_instance_of_it(tmp_path):
    import synsample as ss
    from tests.methods.test_any_network import ResidualCNN

    torch.manual_seed(0)
    net = ResidualCNN().eval()
    for precision, gain in (("full", "layer"), (4, "row")):
        sto = ss.convert(net, "scann", gain=gain, precision=precision, exclude=["fc2"])
        manifest = export.save(sto, tmp_path / "mine", precision=precision)
        assert manifest["config"] is None and manifest["sampled"] == ["fc1", "head"]
        with pytest.raises(ConfigError, match="pass an instance of it"):
            export.load(tmp_path / "mine.safetensors")
        loaded = export.load(tmp_path / "mine.safetensors", model=ResidualCNN())
        x = torch.rand(9, 1, 8, 8)
        for mode in ("shared", "independent"):
            a = engine.predict(sto, x, samples=5, seed=3, mode=mode)
            b = engine.predict(loaded, x, samples=5, seed=3, mode=mode)
            assert torch.equal(a.votes, b.votes) and torch.equal(a.mean_probs, b.mean_probs)
    with pytest.raises(CheckpointError, match="does not fit the given network|lacks"):
        export.load(tmp_path / "mine.safetensors", model=ResidualCNN(classes=3))


def _rewrite(path, manifest=None, tensors=None):
    """Write an export file again with an edited manifest or tensors (what a hand edit does)."""
    from safetensors import safe_open
    from safetensors.torch import save_file

    with safe_open(str(path), framework="pt") as f:
        old = json.loads(f.metadata()["manifest"])
        old_tensors = {k: f.get_tensor(k) for k in f.keys()}
    new_tensors = {**old_tensors, **(tensors(old_tensors) if tensors else {})}
    save_file(new_tensors, str(path),
              metadata={"manifest": json.dumps(manifest(old) if manifest else old)})


@pytest.mark.parametrize("edit,expected", [
    ("levels times 10", "does not match its SHA-256"),
    ("gain NaN", "manifest fails its check"),
    ("a layer removed", "manifest fails its check"),
    ("the seal removed", "holds no sha256"),
    ("a list", "manifest is not an object"),
    ("version 1", "version 1; this synsample reads"),
    ("a tensor added", "not the ones its manifest lists"),
])
def test_an_edited_export_is_refused_in_one_line(tmp_path, edit, expected):
    ck = _checkpoint(tmp_path / "ck", "mlp")
    path = tmp_path / "m.safetensors"
    manifest = export.export(ck, "scann", path, "4")
    layer = manifest["layers"][0]["tensor"]
    edits = {
        "levels times 10": dict(tensors=lambda t: {layer: t[layer] * 10}),
        "gain NaN": dict(manifest=lambda m: {**m, "layers": [
            {**m["layers"][0], "gain": float("nan")}, *m["layers"][1:]]}),
        "a layer removed": dict(manifest=lambda m: {**m, "layers": m["layers"][1:]}),
        "the seal removed": dict(manifest=lambda m: {k: v for k, v in m.items()
                                                     if k != "sha256"}),
        "a list": dict(manifest=lambda m: [m]),
        "version 1": dict(manifest=lambda m: {**m, "version": 1}),
        "a tensor added": dict(tensors=lambda t: {"state.extra": torch.zeros(3)}),
    }
    _rewrite(path, **edits[edit])
    with pytest.raises(CheckpointError, match=expected) as err:
        export.load(path)
    assert "\n" not in str(err.value)


def test_a_network_with_a_layer_the_export_lacks_is_refused(tmp_path):
    import synsample as ss

    class Net(torch.nn.Module):
        def __init__(self, extra=False):
            super().__init__()
            self.fc1, self.fc2 = torch.nn.Linear(8, 6), torch.nn.Linear(6, 3)
            self.extra = torch.nn.Linear(3, 3) if extra else None

        def forward(self, x):
            y = self.fc2(torch.relu(self.fc1(x.flatten(1))))
            return y if self.extra is None else self.extra(y)

    torch.manual_seed(0)
    export.save(ss.convert(Net(), "scann", include=["fc1"], gain="row"), tmp_path / "own")
    with pytest.raises(CheckpointError, match=r"parameters .* does not hold \(.*extra\.weight"):
        export.load(tmp_path / "own", model=Net(extra=True))
    assert export.load(tmp_path / "own", model=Net()) is not None


def test_export_never_replaces_a_file_it_did_not_write(tmp_path):
    ck = _checkpoint(tmp_path / "ck", "mlp")
    (tmp_path / "keep.json").write_text('{"mine": true}')
    (tmp_path / "keep.safetensors").write_bytes(b"my own weights")
    export.export(ck, "scann", tmp_path / "keep.txt", "4")  # keep.txt.safetensors, .txt.json
    assert (tmp_path / "keep.txt.safetensors").is_file()
    assert (tmp_path / "keep.json").read_text() == '{"mine": true}'
    for out in ("keep", "keep.safetensors"):
        with pytest.raises(ConfigError, match="keep.* exists and is not a synsample export"):
            export.export(ck, "scann", tmp_path / out, "4")
    assert (tmp_path / "keep.safetensors").read_bytes() == b"my own weights"
    export.export(ck, "scann", tmp_path / "keep.txt", "full")  # an earlier export is replaced
    assert export.load(tmp_path / "keep.txt.safetensors") is not None


def test_an_export_into_a_folder_another_run_is_writing_is_refused(tmp_path):
    import subprocess
    import sys

    from synsample.io import folder_lock

    ck = _checkpoint(tmp_path / "ck", "mlp")
    with folder_lock(tmp_path / "ex"):
        proc = subprocess.run([sys.executable, "-m", "synsample", "export", "--checkpoint",
                               str(ck), "--method", "scann", "--out", str(tmp_path / "ex" / "m")],
                              capture_output=True, text=True)
    assert proc.returncode == 2, proc.stderr
    assert "in use by another synsample run" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "ex" / "m.safetensors").exists()
