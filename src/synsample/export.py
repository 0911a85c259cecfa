"""Export a sampled network for hardware, and read it back (``synsample export``).

A file ``NAME.safetensors`` holds, for every sampled layer, what the hardware stores:

- ``scann`` (:class:`~synsample.nn.CoinFlipLinear`): ``<layer>.levels``, int32, the signed
  probability level of each weight: ``P(1) = |level| / 2^b`` for a b-bit coin and the weight's
  sign is the level's; at full precision ``<layer>.probabilities``, float32, ``P(1) = |p|``
  with the sign of ``p``;
- ``sc`` (:class:`~synsample.nn.sc_linear.SCLinear`): ``<layer>.states``, int8, the index
  ``i`` of each weight's quantized state, value ``-1 + 2 i / (n - 1)``;
- ``spinbayes`` (:class:`~synsample.nn.crossbar.CrossbarLayer`): ``<layer>.crossbars`` (and
  ``<layer>.bias_crossbars``), ``[N, ...]`` int8 (int16 for Q > 8, int32 for Q > 16), value
  ``level * gain / (2^(Q-1) - 1)``;

and ``state.<key>`` for everything else the model needs (biases of scANN layers, BatchNorm
statistics, deterministic layers), in the model's own names. ``NAME.json`` (also embedded in
the file's metadata) is the manifest: format and version, method and its settings, the
architecture's config, and per sampled layer its tensor names, shapes, encoding and levels.
:func:`load` rebuilds the sampling model from the file alone; with the same seed it gives the
same votes as the model that was exported (tested).
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
from synsample.errors import CheckpointError, ConfigError
from synsample.io import write_json, write_with
from synsample.nn import CoinFlipLinear, SampledNetwork
from synsample.nn.crossbar import CrossbarLayer
from synsample.nn.sc_linear import SCLinear

FORMAT = "synsample-export"
VERSION = 1
#: the methods whose hardware tensors an export holds (their specs say ``exports``)
METHODS = tuple(name for name, spec in methods.REGISTRY.items() if spec.exports)
_CONFIG_KEYS = ("arch", "input_shape", "num_classes", "dropout", "init", "noise", "estimator",
                "noise_site", "bias", "states", "sc_length", "dataset")


def _layer_entry(name: str, layer) -> tuple[dict[str, Any], dict[str, torch.Tensor], list[str]]:
    """The manifest entry, tensors and state keys (relative to the layer) of a sampled layer."""
    if isinstance(layer, CoinFlipLinear):
        w = layer.weight.detach()
        if isinstance(layer.coin, QuantizedCoin):
            scale = 2 ** layer.coin.bits
            level = (torch.round(w.abs() * scale).clamp(max=scale - 1) * torch.sign(w))
            entry = {"encoding": f"P(1) = |level| / 2^{layer.coin.bits}, sign = sign(level); "
                                 "output x gain", "tensor": f"{name}.levels",
                     "gain": layer.output_gain, "row_gain": layer.row_gain is not None}
            return entry, {f"{name}.levels": level.to(torch.int32)}, ["weight"]
        entry = {"encoding": "P(1) = |p|, sign = sign(p) (float32); output x gain",
                 "tensor": f"{name}.probabilities", "gain": layer.output_gain,
                 "row_gain": layer.row_gain is not None}
        return entry, {f"{name}.probabilities": w.to(torch.float32)}, ["weight"]
    if isinstance(layer, SCLinear):
        n = layer.states
        index = torch.round((layer.weight.detach().clamp(-1, 1) + 1) * (n - 1) / 2)
        entry = {"encoding": f"value = -1 + 2 index / {n - 1}", "states": n,
                 "tensor": f"{name}.states"}
        return entry, {f"{name}.states": index.to(torch.int8)}, ["weight"]
    entry = {"encoding": f"value = level * gain / {2 ** (layer.bits - 1) - 1}",
             "gain": layer.gain, "bits": layer.bits, "crossbars": layer.crossbars,
             "tensor": f"{name}.crossbars"}
    tensors = {f"{name}.crossbars": layer.levels}
    if layer.bias_levels is not None:
        tensors[f"{name}.bias_crossbars"] = layer.bias_levels
    return entry, tensors, ["levels", "bias_levels"]


def export(folder: str | Path, method: str, out: str | Path, precision: str = "full",
           stream_length: int = 100, bitstream: str = "ideal",
           data_path: str | Path | None = None) -> dict[str, Any]:
    """Export the checkpoint in ``folder`` sampled by ``method`` to ``out`` (``.safetensors``,
    with the manifest beside it as ``.json``).

    Args:
        folder: the checkpoint folder of a built-in architecture.
        method: one of :data:`METHODS`.
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
        sto: a model from :func:`synsample.convert` with method ``scann``, ``sc`` or
            ``spinbayes``.
        out: the file to write (``.safetensors``; the manifest goes beside it as ``.json``).
        precision: the precision the model was converted with, recorded so that :func:`load`
            converts the same way.
        options: the method options it was converted with, recorded likewise.
        config: a built-in architecture's config (:func:`load` then rebuilds the network by
            itself); None for a user's own network, which :func:`load` takes as ``model``.

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
            entry, ts, keys = _layer_entry(name, layer)
            layers.append({"name": name, "module": layer.layer_name or name,
                           "shape": list(next(iter(ts.values())).shape), **entry})
            tensors.update(ts)
            stored.update(f"{name}.{k}" for k in keys)
    for key, value in sto.state_dict().items():
        if key not in stored:
            tensors[f"state.{key}"] = value.detach().cpu()
    info = {k: v for k, v in sto.describe().items() if k != "devices"}
    options = dict(options or {})
    manifest = {"format": FORMAT, "version": VERSION, "method": method, "precision": precision,
                "stream_length": options.get("stream_length") if method == "sc" else None,
                "bitstream": options.get("bitstream") if method == "sc" else None,
                "config": config, "sampled": [entry["module"] for entry in layers],
                "layers": layers, "model": json.loads(json.dumps(info, default=str))}
    out = checks.writable_file(Path(out).with_suffix(".safetensors"), "export file")
    tensors = {k: v.contiguous() for k, v in tensors.items()}
    write_with(out, lambda tmp: save_file(tensors, str(tmp),
                                          metadata={"manifest": json.dumps(manifest)}))
    write_json(out.with_suffix(".json"), manifest)
    return manifest


def _check_method(method: str | None) -> None:
    if method not in METHODS:
        raise ConfigError(f"export supports {', '.join(METHODS)}; got {method!r}")


def load(path: str | Path, model: nn.Module | None = None) -> SampledNetwork:
    """The sampling model stored in an exported file.

    Args:
        path: the ``.safetensors`` file written by :func:`export` or :func:`save`.
        model: for a user's own network, an instance of it (its weights are replaced by the
            file's); None for a built-in architecture, rebuilt from the manifest.

    Returns:
        A model that gives the exported model's votes for the same seed.

    Raises:
        CheckpointError: for a file that is not an export of this format, or one that does not
            fit ``model``.
        ConfigError: for a user's own network exported without ``model`` given.
    """
    path = Path(path).with_suffix(".safetensors")
    try:
        with safe_open(str(path), framework="pt") as f:
            manifest = json.loads(f.metadata()["manifest"])
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except (OSError, KeyError, ValueError, SafetensorError) as exc:
        raise CheckpointError(f"{path} is not a synsample export ({exc}); export it again with "
                              "`synsample export`") from exc
    if manifest.get("format") != FORMAT or manifest.get("version") != VERSION:
        raise CheckpointError(f"{path} is format {manifest.get('format')} version "
                              f"{manifest.get('version')}; this synsample reads {FORMAT} "
                              f"version {VERSION}")
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
    with torch.no_grad():
        for entry in manifest["layers"]:
            try:
                layer = sto.get_submodule(entry["name"])
            except AttributeError:
                raise CheckpointError(f"{path} has a sampled layer {entry['module']} the given "
                                      "network lacks") from None
            if list(layer.weight.shape if not isinstance(layer, CrossbarLayer)
                    else layer.levels.shape) != entry["shape"]:
                raise CheckpointError(f"{path}: layer {entry['module']} has shape "
                                      f"{entry['shape']} there, another in the given network")
            _restore(layer, entry, tensors)
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
        layer.output_gain = float(entry.get("gain", 1.0))
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
        layer.gain = float(entry["gain"])
        layer.scale = layer.gain / (2 ** (layer.bits - 1) - 1)
