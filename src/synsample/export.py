"""Export a sampled network for hardware, and read it back (``synsample export``).

A file ``NAME.safetensors`` holds, for every sampled layer, what the hardware stores:

- ``scann`` ([`CoinFlipLinear`][synsample.nn.CoinFlipLinear]): ``<layer>.levels``, int32, the signed
  probability level of each weight: ``P(1) = |level| / 2^b`` for a b-bit coin and the weight's
  sign is the level's; at full precision ``<layer>.probabilities``, float32, ``P(1) = |p|``
  with the sign of ``p``;
- ``sc`` ([`SCLinear`][synsample.nn.sc_linear.SCLinear]): ``<layer>.states``, int8, the index
  ``i`` of each weight's quantized state, value ``-1 + 2 i / (n - 1)``;
- ``spinbayes`` ([`CrossbarLayer`][synsample.nn.crossbar.CrossbarLayer]): ``<layer>.crossbars`` (and
  ``<layer>.bias_crossbars``), ``[N, ...]`` int8 (int16 for Q > 8, int32 for Q > 16), value
  ``level * gain / (2^(Q-1) - 1)``;

and ``state.<key>`` for everything else the model needs (biases of scANN layers, BatchNorm
statistics, deterministic layers), in the model's own names. ``NAME.json`` (also embedded in
the file's metadata) is the manifest: format and version, method and its settings, the
architecture's config, and per sampled layer its tensor names, shapes, encoding and levels.
[`load`][synsample.export.load] rebuilds the sampling model from the file alone; with the same seed
it gives the same votes as the model that was exported (tested).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file
from torch import nn

from synsample import checks, methods, models
from synsample.devices import QuantizedCoin
from synsample.errors import CheckpointError, ConfigError, SynsampleError
from synsample.io import folder_lock, read_json, sealed, unsealed, write_json, write_with
from synsample.nn import CoinFlipLinear, SampledNetwork
from synsample.nn.crossbar import CrossbarLayer
from synsample.nn.sc_linear import SCLinear

FORMAT = "synsample-export"
VERSION = 2  # 2: the manifest is sealed and holds each tensor's SHA-256
#: the methods whose hardware tensors an export holds (their specs say ``exports``)
METHODS = tuple(name for name, spec in methods.REGISTRY.items() if spec.exports)
_CONFIG_KEYS = ("arch", "input_shape", "num_classes", "dropout", "init", "noise", "estimator",
                "noise_site", "bias", "states", "sc_length", "dataset", "hidden")


#: per sampled layer type, its state entries the hardware tensors replace (restored by
#: [`_restore`][synsample.export._restore], so neither stored under ``state.`` nor expected there on
#: load)
_REPLACED = {CoinFlipLinear: ("weight",), SCLinear: ("weight",),
             CrossbarLayer: ("levels", "bias_levels")}


def _replaced_keys(name: str, layer: nn.Module) -> set[str]:
    return {f"{name}.{k}" for kind, keys in _REPLACED.items() if isinstance(layer, kind)
            for k in keys}


def export_file(out: str | Path) -> Path:
    """The ``.safetensors`` file an export named ``out`` is: ``out`` itself when it ends so,
    else ``out`` with the suffix added (``net`` and ``net.v2`` are ``net.safetensors`` and
    ``net.v2.safetensors``: no other file of the user's is ever named by replacing a suffix).
    Its manifest is beside it, with ``.json`` in place of ``.safetensors``."""
    out = Path(out)
    return out if out.suffix == ".safetensors" else out.with_name(out.name + ".safetensors")


def _layer_entry(name: str, layer) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """The manifest entry and tensors of a sampled layer."""
    if isinstance(layer, CoinFlipLinear):
        w = layer.weight.detach()
        if isinstance(layer.coin, QuantizedCoin):
            scale = 2 ** layer.coin.bits
            level = (torch.round(w.abs() * scale).clamp(max=scale - 1) * torch.sign(w))
            entry = {"encoding": f"P(1) = |level| / 2^{layer.coin.bits}, sign = sign(level); "
                                 "output x gain", "tensor": f"{name}.levels",
                     "gain": layer.output_gain, "row_gain": layer.row_gain is not None}
            return entry, {f"{name}.levels": level.to(torch.int32)}
        entry = {"encoding": "P(1) = |p|, sign = sign(p) (float32); output x gain",
                 "tensor": f"{name}.probabilities", "gain": layer.output_gain,
                 "row_gain": layer.row_gain is not None}
        return entry, {f"{name}.probabilities": w.to(torch.float32)}
    if isinstance(layer, SCLinear):
        n = layer.states
        index = torch.round((layer.weight.detach().clamp(-1, 1) + 1) * (n - 1) / 2)
        entry = {"encoding": f"value = -1 + 2 index / {n - 1}", "states": n,
                 "tensor": f"{name}.states"}
        return entry, {f"{name}.states": index.to(torch.int8)}
    entry = {"encoding": f"value = level * gain / {2 ** (layer.bits - 1) - 1}",
             "gain": layer.gain, "bits": layer.bits, "crossbars": layer.crossbars,
             "tensor": f"{name}.crossbars"}
    tensors = {f"{name}.crossbars": layer.levels}
    if layer.bias_levels is not None:
        tensors[f"{name}.bias_crossbars"] = layer.bias_levels
    return entry, tensors


def export(folder: str | Path, method: str, out: str | Path, precision: str = "full",
           stream_length: int = 100, bitstream: str = "ideal",
           data_path: str | Path | None = None) -> dict[str, Any]:
    """Export the checkpoint in ``folder`` sampled by ``method`` to ``out`` (``.safetensors``,
    with the manifest beside it as ``.json``).

    Args:
        folder: the checkpoint folder of a built-in architecture.
        method: one of `METHODS`.
        out: the file to write.
        precision: ``full`` or bits.
        stream_length: SC's bits per stream.
        bitstream: SC's bitstream source (``ideal``, ``lfsr``, ``mtj``).
        data_path: a local copy of the dataset (for SpinBayes' re-calibration).

    Returns:
        The manifest.

    Raises:
        ConfigError: for a method that exports nothing or an architecture synsample does not
            build.
    """
    from synsample import checkpoint
    from synsample.evaluate import convert_checkpoint_model

    _check_method(method)
    model, config = checkpoint.load_model(folder)
    if config.get("arch") not in models.ARCHS:
        raise ConfigError(f"the checkpoint's architecture {config.get('arch')!r} is not one "
                          "synsample builds; export the converted model of your own network "
                          "with synsample.export.save")
    options = {"stream_length": stream_length, "bitstream": bitstream} if method == "sc" else {}
    sto = convert_checkpoint_model(method, model, config, precision, options, data_path)
    return save(sto, out, precision=precision, options=options,
                config={k: config[k] for k in _CONFIG_KEYS if k in config})


def save(sto: SampledNetwork, out: str | Path, precision: str | int = "full",
         options: dict[str, Any] | None = None, config: dict[str, Any] | None = None
         ) -> dict[str, Any]:
    """Write a converted model's hardware tensors and a manifest (any network, built-in or a
    user's own).

    Args:
        sto: a model from `synsample.convert` with method ``scann``, ``sc`` or
            ``spinbayes``.
        out: the file to write (``.safetensors``; the manifest goes beside it as ``.json``).
        precision: the precision the model was converted with, recorded so that
            [`load`][synsample.export.load] converts the same way.
        options: the method options it was converted with, recorded likewise.
        config: a built-in architecture's config ([`load`][synsample.export.load] then rebuilds the
            network by itself); None for a user's own network, which [`load`][synsample.export.load]
            takes as ``model``.

    Returns:
        The manifest.

    Raises:
        ConfigError: for a model of a method that exports nothing.
    """
    method = getattr(sto, "method", None)
    _check_method(method)
    tensors: dict[str, torch.Tensor] = {}
    layers, stored = [], set()
    for name, layer in sto.named_modules():
        if isinstance(layer, CoinFlipLinear | SCLinear | CrossbarLayer):
            entry, ts = _layer_entry(name, layer)
            layers.append({"name": name, "module": layer.layer_name or name,
                           "shape": list(next(iter(ts.values())).shape), **entry})
            tensors.update(ts)
            stored |= _replaced_keys(name, layer)
    for key, value in sto.state_dict().items():
        if key not in stored:
            tensors[f"state.{key}"] = value.detach().cpu()
    info = {k: v for k, v in sto.describe().items() if k != "devices"}
    options = dict(options or {})
    tensors = {k: v.contiguous() for k, v in tensors.items()}
    manifest = sealed({
        "format": FORMAT, "version": VERSION, "method": method, "precision": precision,
        "stream_length": options.get("stream_length") if method == "sc" else None,
        "bitstream": options.get("bitstream") if method == "sc" else None,
        "config": config, "sampled": [entry["module"] for entry in layers],
        "layers": layers, "model": json.loads(json.dumps(info, default=str)),
        "tensors": {k: _digest(v) for k, v in sorted(tensors.items())}})
    out = writable_export(out)
    with folder_lock(out.parent):
        writable_export(out)  # again under the lock: another export may have written it
        write_with(out, lambda tmp: save_file(tensors, str(tmp),
                                              metadata={"manifest": json.dumps(manifest)}))
        write_json(out.with_suffix(".json"), manifest)
    return manifest


def _digest(tensor: torch.Tensor) -> str:
    """SHA-256 of a tensor's dtype, shape and bytes."""
    import hashlib

    h = hashlib.sha256(f"{tensor.dtype} {list(tensor.shape)}".encode())
    h.update(tensor.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def writable_export(out: str | Path) -> Path:
    """The export file for ``out`` ([`export_file`][synsample.export.export_file]), checked before
    any work: its folder writable, and neither it nor its manifest a file synsample did not write
    (an export is replaced, a user's own file never).

    Raises:
        ConfigError: when a file of that name is not an earlier export.
    """
    out = checks.writable_file(export_file(out), "export file")
    for path in (out, out.with_suffix(".json")):
        if path.is_symlink() or (path.exists() and not _is_export(path)):
            raise ConfigError(f"{path} exists and is not a synsample export; synsample does "
                              "not overwrite it: choose another --out or move the file")
    return out


def _is_export(path: Path) -> bool:
    try:
        if path.suffix == ".json":
            return read_json(path).get("format") == FORMAT
        with safe_open(str(path), framework="pt") as f:
            return json.loads(f.metadata()["manifest"]).get("format") == FORMAT
    except (OSError, ValueError, KeyError, TypeError, AttributeError, SafetensorError):
        return False


def _check_method(method: str | None) -> None:
    if method not in METHODS:
        raise ConfigError(f"export supports {', '.join(METHODS)}; got {method!r}")


def load(path: str | Path, model: nn.Module | None = None) -> SampledNetwork:
    """The sampling model stored in an exported file.

    Args:
        path: the ``.safetensors`` file written by [`export`][synsample.export.export] or
            [`save`][synsample.export.save].
        model: for a user's own network, an instance of it (its weights are replaced by the
            file's); None for a built-in architecture, rebuilt from the manifest.

    Returns:
        A model that gives the exported model's votes for the same seed.

    Raises:
        CheckpointError: for a file that is not an export of this format, or one that does not
            fit ``model``.
        ConfigError: for a user's own network exported without ``model`` given.
    """
    path = export_file(path)
    try:
        with safe_open(str(path), framework="pt") as f:
            manifest = json.loads(f.metadata()["manifest"])
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except (OSError, KeyError, ValueError, TypeError, SafetensorError) as exc:
        raise CheckpointError(f"{path} is not a synsample export ({exc}); export it again with "
                              "`synsample export`") from exc
    manifest = _checked_manifest(path, manifest, tensors)
    try:
        return _rebuild(path, manifest, tensors, model)
    except SynsampleError:
        raise
    except (KeyError, TypeError, ValueError, IndexError) as exc:
        raise CheckpointError(f"{path}: its manifest does not describe its tensors "
                              f"({type(exc).__name__}: {exc}); export it again") from exc


def _checked_manifest(path: Path, manifest: Any, tensors: dict[str, torch.Tensor]
                      ) -> dict[str, Any]:
    """The manifest, once its format, seal and every tensor's SHA-256 are checked."""
    if not isinstance(manifest, dict):
        raise CheckpointError(f"{path} is not a synsample export (its manifest is not an "
                              "object); export it again with `synsample export`")
    if manifest.get("format") != FORMAT or manifest.get("version") != VERSION:
        raise CheckpointError(f"{path} is format {manifest.get('format')} version "
                              f"{manifest.get('version')}; this synsample reads {FORMAT} "
                              f"version {VERSION}: export it again with `synsample export`")
    try:
        manifest = unsealed(manifest)
    except ValueError as exc:
        raise CheckpointError(f"{path}: the manifest fails its check ({exc}); export it "
                              "again with `synsample export`") from None
    digests = manifest.get("tensors")
    if not isinstance(digests, dict) or set(digests) != set(tensors):
        raise CheckpointError(f"{path}: its tensors are not the ones its manifest lists; export "
                              "it again with `synsample export`")
    for key, tensor in tensors.items():
        if _digest(tensor) != digests[key]:
            raise CheckpointError(f"{path}: tensor {key} does not match its SHA-256 (changed "
                                  "since export); export it again with `synsample export`")
    return manifest


def _rebuild(path: Path, manifest: dict[str, Any], tensors: dict[str, torch.Tensor],
             model: nn.Module | None) -> SampledNetwork:
    """The sampling model of a checked export (``model``: a user's own network)."""
    config = manifest["config"]
    if model is None:
        if config is None:
            raise ConfigError(f"{path} holds a network of your own: pass an instance of it, "
                              "export.load(path, model=MyNet())")
        model = models.build_from_config(config, tuple(config["input_shape"]),
                                         config["num_classes"])
    sto = _convert_like(model, manifest, path)
    state = {k[len("state."):]: v for k, v in tensors.items() if k.startswith("state.")}
    try:
        result = sto.load_state_dict(state, strict=False)
    except RuntimeError as exc:
        raise CheckpointError(f"{path} does not fit the given network "
                              f"({str(exc).strip().splitlines()[-1].strip()[:160]})") from exc
    if result.unexpected_keys:
        raise CheckpointError(f"{path} holds state the given network lacks: "
                              f"{result.unexpected_keys[:3]}")
    replaced: set[str] = set()
    with torch.no_grad():
        for entry in manifest["layers"]:
            try:
                layer = sto.get_submodule(entry["name"])
            except AttributeError:
                raise CheckpointError(f"{path} has a sampled layer {entry['module']} the given "
                                      "network lacks") from None
            if not isinstance(layer, tuple(_REPLACED)):
                raise CheckpointError(f"{path}: {entry['module']} is sampled there, not in the "
                                      "given network")
            if list(layer.weight.shape if not isinstance(layer, CrossbarLayer)
                    else layer.levels.shape) != entry["shape"]:
                raise CheckpointError(f"{path}: layer {entry['module']} has shape "
                                      f"{entry['shape']} there, another in the given network")
            _restore(layer, entry, tensors)
            replaced |= _replaced_keys(entry["name"], layer)
    missing = [k for k in result.missing_keys if k not in replaced]
    if missing:
        raise CheckpointError(f"the given network has parameters {path} does not hold "
                              f"({', '.join(missing[:3])}{', ...' if len(missing) > 3 else ''});"
                              " pass the network that was exported")
    return sto


def _convert_like(model: nn.Module, manifest: dict[str, Any], path: Path) -> SampledNetwork:
    """``model`` converted as the exported one was: same method, settings and sampled layers."""
    method = manifest["method"]
    if method == "spinbayes":
        entry = manifest["layers"][0]
        return methods.spinbayes.convert(model, entry["crossbars"], entry["bits"],
                                         manifest["model"].get("ways", 1))
    options = ({"stream_length": manifest["stream_length"],
                "bitstream": manifest["bitstream"]} if method == "sc" else {})
    if method == "scann":
        try:
            # the file's levels and gains replace the weights: any instance converts
            rows = any(e.get("row_gain") for e in manifest["layers"])
            return methods.scann.convert(model, include=manifest.get("sampled"),
                                         precision=manifest["precision"],
                                         gain="row" if rows else "layer")
        except ConfigError as exc:
            raise CheckpointError(f"{path} does not fit the given network ({exc})") from exc
    return methods.convert(model, method, precision=manifest["precision"], **options)


def _restore(layer, entry: dict[str, Any], tensors: dict[str, torch.Tensor]) -> None:
    name = entry["name"]
    if isinstance(layer, CoinFlipLinear):
        layer.output_gain = checks.finite(entry.get("gain", 1.0), f"{name}'s gain")
        if f"{name}.levels" in tensors:
            layer.weight.copy_(tensors[f"{name}.levels"].float() / 2 ** layer.coin.bits)
        else:
            layer.weight.copy_(tensors[f"{name}.probabilities"])
    elif isinstance(layer, SCLinear):
        n = entry["states"]
        layer.weight.copy_(-1 + 2 * tensors[f"{name}.states"].float() / (n - 1))
    else:
        layer.levels.copy_(tensors[f"{name}.crossbars"])
        if layer.bias_levels is not None:
            layer.bias_levels.copy_(tensors[f"{name}.bias_crossbars"])
        layer.gain = checks.finite(entry["gain"], f"{name}'s gain")
        layer.scale = layer.gain / (2 ** (layer.bits - 1) - 1)
