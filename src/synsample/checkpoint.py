"""Checkpoints: a folder whose ``config.json`` names the weights and, while training can still
resume, the optimizer state of one epoch, with the SHA-256 of each file.

A checkpoint is written as a unit: the new epoch's files go under new names first, then
``config.json`` is replaced atomically (the one switch), then the files it no longer names are
removed. A kill at any instant leaves either the old checkpoint or the new one, never a mix.
Loading checks each file against its SHA-256, so flipped bytes are an error, not a weight; the
config must name its files as ``.safetensors`` files in the folder itself, each with its
checksum, so an edited config can neither load weights from elsewhere nor switch the check off.
A save removes only the files the previous config named (or replaced): nothing else in the
folder is touched. Folders written before this layout (``model.safetensors`` beside the config,
no checksums) are still read.
"""

from __future__ import annotations

import hashlib
import math
import platform
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load as load_bytes
from safetensors.torch import save as save_bytes
from torch import nn

from synsample import __version__
from synsample.errors import CheckpointError
from synsample.io import read_json, write_bytes, write_json

FORMAT = "synsample-checkpoint/1"
CONFIG_FILE = "config.json"
#: the file names of the layout before checkpoints were written as a unit
MODEL_FILE = "model.safetensors"
STATE_FILE = "training_state.safetensors"


def versions() -> dict[str, str]:
    """The versions of synsample, Python, PyTorch and numpy, for reports.

    Returns:
        ``{"synsample", "torch", "numpy", "python"}``.
    """
    import numpy

    return {"synsample": __version__, "torch": torch.__version__, "numpy": numpy.__version__,
            "python": platform.python_version()}


def exists(folder: str | Path) -> bool:
    """Whether ``folder`` holds a checkpoint: a config and the weights it names.

    Args:
        folder: the folder.

    Returns:
        True also for a damaged config (which [`read_config`][synsample.checkpoint.read_config] then
        reports).
    """
    config = Path(folder) / CONFIG_FILE
    if not config.is_file():
        return False
    try:
        files = read_json(config).get("files", {})
    except (ValueError, OSError, AttributeError):
        return True  # a damaged config is a checkpoint that read_config reports as damaged
    name = files.get("model", MODEL_FILE) if isinstance(files, dict) else None
    if not _plain_name(name):
        return True  # read_config says what is wrong with it
    return (Path(folder) / name).is_file()


def _serialise(tensors: dict[str, torch.Tensor]) -> tuple[bytes, str]:
    blob = save_bytes({k: v.detach().cpu().contiguous() for k, v in tensors.items()})
    return blob, hashlib.sha256(blob).hexdigest()


def _optimizer_tensors(optimizer: torch.optim.Optimizer) -> dict[str, torch.Tensor]:
    flat = {}
    for i, st in optimizer.state_dict()["state"].items():
        for key, value in st.items():
            flat[f"{i}.{key}"] = torch.as_tensor(value)
    return flat


def save(folder: str | Path, model: nn.Module, config: dict[str, Any],
         optimizer: torch.optim.Optimizer | None = None, tag: str = "") -> None:
    """Write a checkpoint of ``model`` (and ``optimizer``) into ``folder`` as a unit.

    Args:
        folder: the checkpoint folder (created if missing).
        model: its ``state_dict`` is stored.
        config: what the checkpoint records (architecture, dataset, history, ...).
        optimizer: its state is stored too, so that training can resume exactly.
        tag: names this version's files (``model-TAG.safetensors``); the trainer passes the
            epoch. The files the previous config named are removed once the new config is in
            place; no other file of the folder is touched.
    """
    folder = Path(folder)
    suffix = f"-{tag}" if tag else ""
    parts = {"model": (f"model{suffix}.safetensors", model.state_dict())}
    if optimizer is not None:
        parts["state"] = (f"training_state{suffix}.safetensors", _optimizer_tensors(optimizer))
    files, digests = {}, {}
    for role, (name, tensors) in parts.items():
        blob, digest = _serialise(tensors)
        write_bytes(folder / name, blob)
        files[role], digests[role] = name, digest
    replaced = sorted(_own_files(folder) - set(files.values()))
    write_json(folder / CONFIG_FILE, {"format": FORMAT, **config, "files": files,
                                      "sha256": digests, "replaced_files": replaced,
                                      "versions": versions()})
    for stale in replaced:
        (folder / stale).unlink(missing_ok=True)


def _own_files(folder: Path) -> set[str]:
    """The weight files synsample wrote into the folder as far as its current config knows: the
    ones it names, and the ones it replaced (still there if a run died before removing them).
    They are the only files a new save may remove; nothing else in the folder is touched,
    whatever its name."""
    try:
        config = read_config(folder)
    except CheckpointError:
        return set()
    return set(config.get("files", {}).values()) | set(config.get("replaced_files", []))


def read_config(folder: str | Path) -> dict[str, Any]:
    """The checkpoint's ``config.json`` (architecture, dataset, training history, files).

    Args:
        folder: the checkpoint folder.

    Returns:
        The config.

    Raises:
        CheckpointError: for a folder without a checkpoint, invalid JSON or another format.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise CheckpointError(f"{folder} is not a folder; give the --out folder of "
                              "`synsample train`")
    if not exists(folder):
        raise CheckpointError(f"{folder} holds no checkpoint ({CONFIG_FILE} and the weights it "
                              "names); train one with `synsample train --out` first")
    try:
        config = read_json(folder / CONFIG_FILE)
    except ValueError as exc:
        raise CheckpointError(f"{folder / CONFIG_FILE} is not valid JSON ({exc}); the "
                              "checkpoint is damaged: train again") from exc
    if not isinstance(config, dict) or config.get("format") != FORMAT:
        found = config.get("format") if isinstance(config, dict) else type(config).__name__
        raise CheckpointError(f"{folder} has format {found!r}, this synsample reads {FORMAT}")
    _check_manifest(folder, config)
    _check_network_fields(folder, config)
    return config


#: the most values one item may hold (a 4096 x 4096 RGB image is 50M) and the most classes
MAX_ITEM_VALUES = 2**26
MAX_CLASSES = 2**20


def _check_network_fields(folder: Path, config: dict[str, Any]) -> None:
    """Refuse a config whose network fields (what [`load_model`][synsample.checkpoint.load_model]
    builds from) have the
    wrong type or an absurd size, before anything is allocated."""
    where = f"{folder / CONFIG_FILE}"
    fix = "the checkpoint was edited or damaged: train again, or restore its config.json"

    def is_int(v: object) -> bool:
        return isinstance(v, int) and not isinstance(v, bool)

    shape, classes = config.get("input_shape"), config.get("num_classes")
    if not isinstance(config.get("arch"), str):
        raise CheckpointError(f"{where}: 'arch' must be an architecture's name; {fix}")
    if not (isinstance(shape, list) and 1 <= len(shape) <= 4
            and all(is_int(n) and n > 0 for n in shape)):
        raise CheckpointError(f"{where}: 'input_shape' must be a list of 1 to 4 positive "
                              f"integers, got {str(shape)[:60]}; {fix}")
    if math.prod(shape) > MAX_ITEM_VALUES:
        raise CheckpointError(f"{where}: 'input_shape' {shape} holds {math.prod(shape):,} "
                              f"values per item, more than {MAX_ITEM_VALUES:,}; {fix}")
    if not (is_int(classes) and 2 <= classes <= MAX_CLASSES):
        raise CheckpointError(f"{where}: 'num_classes' must be an integer from 2 to "
                              f"{MAX_CLASSES:,}, got {str(classes)[:40]}; {fix}")
    kinds = {"dropout": (float, int), "init": (str,), "noise": (str,), "estimator": (str,),
             "noise_site": (str,), "bias": (bool,), "states": (int,), "sc_length": (int,),
             "hidden": (int,),
             "dataset": (str,)}
    for key, types in kinds.items():
        value = config.get(key)
        if value is not None and (not isinstance(value, types)
                                  or (bool not in types and isinstance(value, bool))):
            kind = " or ".join(t.__name__ for t in types)
            raise CheckpointError(f"{where}: '{key}' must be {kind} or null, got "
                                  f"{str(value)[:40]}; {fix}")
    if not 0 <= float(config.get("dropout") or 0) < 1:
        raise CheckpointError(f"{where}: 'dropout' must be in [0, 1); {fix}")


def _plain_name(name: object) -> bool:
    """Whether ``name`` is a weights file name synsample writes: a ``.safetensors`` file right in
    the folder (no separator, no ``..``, not hidden, not absolute)."""
    return (isinstance(name, str) and name.endswith(".safetensors") and Path(name).name == name
            and "\\" not in name and not name.startswith("."))


def _check_manifest(folder: Path, config: dict[str, Any]) -> None:
    """Refuse a config whose ``files`` or ``sha256`` could load something else than the
    checkpoint's own, checked weights: a file outside the folder, or a file without its
    checksum (written by hand, or edited)."""
    if "files" not in config:
        return  # the layout before checkpoints were written as a unit: fixed names, no sums
    files, sums = config["files"], config.get("sha256")
    fix = "the checkpoint was edited or damaged: train again, or restore its config.json"
    if not isinstance(files, dict) or "model" not in files or not set(files) <= {"model",
                                                                                  "state"}:
        raise CheckpointError(f"{folder / CONFIG_FILE}: 'files' must name the model's weights "
                              f"(and at most a training state); {fix}")
    replaced = config.get("replaced_files", [])
    if not isinstance(replaced, list) or not all(_plain_name(n) for n in replaced):
        raise CheckpointError(f"{folder / CONFIG_FILE}: 'replaced_files' must list .safetensors "
                              f"files of the checkpoint's own folder; {fix}")
    for role, name in files.items():
        if not _plain_name(name):
            raise CheckpointError(f"{folder / CONFIG_FILE} names {name!r} as its {role} file, "
                                  "which is not a .safetensors file in the checkpoint's own "
                                  f"folder; {fix}")
        digest = sums.get(role) if isinstance(sums, dict) else None
        if not (isinstance(digest, str) and len(digest) == 64
                and all(c in "0123456789abcdef" for c in digest)):
            raise CheckpointError(f"{folder / CONFIG_FILE} has no SHA-256 for its {role} file "
                                  f"{name}; {fix}")


def file(folder: str | Path, role: str = "model") -> Path | None:
    """The path of the checkpoint's ``model`` weights or optimizer ``state`` (None: none).

    Args:
        folder: the checkpoint folder.
        role: ``model`` or ``state``.

    Returns:
        The file's path (it may be missing), or None when the config names none.
    """
    config = read_config(folder)
    legacy = {"model": MODEL_FILE, "state": STATE_FILE}[role]
    name = config.get("files", {}).get(role, legacy if "files" not in config else None)
    return None if name is None else Path(folder) / name


def _read_tensors(folder: Path, role: str, fix: str) -> dict[str, torch.Tensor] | None:
    """The tensors of ``role`` (``model`` or ``state``) checked against their SHA-256; None
    when the checkpoint has none. ``fix`` ends the error message."""
    path = file(folder, role)
    if path is None:
        return None
    try:
        blob = path.read_bytes()
    except FileNotFoundError:
        if role == "state":
            return None
        raise CheckpointError(f"{path} is missing; {fix}") from None
    except OSError as exc:
        raise CheckpointError(f"cannot read {path} ({exc.strerror}); {fix}") from exc
    expected = read_config(folder).get("sha256", {}).get(role)  # required unless legacy
    if expected is not None and hashlib.sha256(blob).hexdigest() != expected:
        raise CheckpointError(f"{path} does not match the SHA-256 in {CONFIG_FILE} (the file is "
                              f"damaged); {fix}")
    try:
        return load_bytes(blob)
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(f"{path} is corrupt ({exc}); {fix}") from exc


def load_weights(folder: str | Path, model: nn.Module) -> nn.Module:
    """Load the checkpoint's weights into ``model``, checked against their SHA-256.

    Args:
        folder: a checkpoint folder written by [`save`][synsample.checkpoint.save].
        model: a network of the checkpoint's architecture.

    Returns:
        ``model``, with the weights loaded.

    Raises:
        CheckpointError: for a missing, damaged or corrupt file, or weights that do not fit.
    """
    folder = Path(folder)
    state = _read_tensors(folder, "model", "train again or restore the folder")
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[0]
        raise CheckpointError(f"{folder} does not fit the architecture in its config ({first})"
                              ) from exc
    return model


def load_optimizer(folder: str | Path, optimizer: torch.optim.Optimizer) -> bool:
    """Restore the optimizer state if the folder has one; return whether it did.

    Args:
        folder: the checkpoint folder.
        optimizer: the optimizer, of the checkpoint's model's parameters.

    Returns:
        Whether a state was restored.

    Raises:
        CheckpointError: for a damaged or corrupt state file.
    """
    flat = _read_tensors(Path(folder), "state", "delete the folder to train again from the start")
    if flat is None:
        return False
    sd = optimizer.state_dict()
    state: dict[int, dict[str, torch.Tensor]] = {}
    for key, value in flat.items():
        i, name = key.split(".", 1)
        state.setdefault(int(i), {})[name] = value
    sd["state"] = state
    optimizer.load_state_dict(sd)
    return True


def load_model(folder: str | Path) -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild the trained network of a checkpoint folder, in eval mode, and its config.

    Args:
        folder: the checkpoint folder.

    Returns:
        ``(model, config)``.

    Raises:
        CheckpointError: for a damaged checkpoint.
    """
    from synsample import models

    config = read_config(folder)
    try:
        model = models.build_from_config(config, tuple(config["input_shape"]),
                                         config["num_classes"])
    except KeyError as exc:
        raise CheckpointError(f"{Path(folder) / CONFIG_FILE} lacks {exc}; the checkpoint is "
                              "damaged: train again") from exc
    load_weights(folder, model)
    return model.eval(), config


#: the deterministic network's test predictions, saved beside a training job's checkpoint
DETERMINISTIC_FILE = "deterministic.safetensors"


def save_deterministic(folder: Path, logits: torch.Tensor, labels: torch.Tensor) -> None:
    """Save the deterministic network's predicted classes (from ``logits``) and the labels of
    its test items into ``folder``, the reference the sampled predictions are compared with.

    Args:
        folder: the job's folder.
        logits: ``[N, C]`` the deterministic network's outputs.
        labels: ``[N]`` the test labels.
    """
    tensors = {"predicted": logits.argmax(1).contiguous(), "labels": labels.contiguous()}
    write_bytes(folder / DETERMINISTIC_FILE, save_bytes(tensors))


def load_deterministic(folder: Path) -> dict[str, torch.Tensor]:
    """``{"predicted", "labels"}`` saved by
    [`save_deterministic`][synsample.checkpoint.save_deterministic].

    Args:
        folder: the job's folder.

    Returns:
        The two tensors.
    """
    from safetensors.torch import load_file

    return load_file(str(folder / DETERMINISTIC_FILE))
