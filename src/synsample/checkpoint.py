"""Checkpoints: a folder with ``model.safetensors``, ``config.json`` and, while training can
still resume, ``training_state.safetensors`` (optimizer state). Written atomically."""

from __future__ import annotations

import platform
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from synsample import __version__
from synsample.errors import CheckpointError
from synsample.io import read_json, write_json, write_with

FORMAT = "synsample-checkpoint/1"
MODEL_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
STATE_FILE = "training_state.safetensors"


def versions() -> dict[str, str]:
    import numpy

    return {"synsample": __version__, "torch": torch.__version__, "numpy": numpy.__version__,
            "python": platform.python_version()}


def exists(folder: str | Path) -> bool:
    return (Path(folder) / CONFIG_FILE).is_file() and (Path(folder) / MODEL_FILE).is_file()


def save(folder: str | Path, model: nn.Module, config: dict[str, Any],
         optimizer: torch.optim.Optimizer | None = None) -> None:
    """Write weights first, then the optimizer state, then the config that names them."""
    folder = Path(folder)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    write_with(folder / MODEL_FILE, lambda tmp: save_file(state, str(tmp)))
    if optimizer is not None:
        opt = {}
        for i, st in optimizer.state_dict()["state"].items():
            for key, value in st.items():
                opt[f"{i}.{key}"] = torch.as_tensor(value).detach().cpu().contiguous()
        write_with(folder / STATE_FILE, lambda tmp: save_file(opt, str(tmp)))
    write_json(folder / CONFIG_FILE, {"format": FORMAT, **config, "versions": versions()})


def read_config(folder: str | Path) -> dict[str, Any]:
    folder = Path(folder)
    if not folder.is_dir():
        raise CheckpointError(f"{folder} is not a folder; give the --out folder of "
                              "`synsample train`")
    if not exists(folder):
        raise CheckpointError(f"{folder} holds no checkpoint ({CONFIG_FILE} and {MODEL_FILE}); "
                              "train one with `synsample train --out` first")
    try:
        config = read_json(folder / CONFIG_FILE)
    except ValueError as exc:
        raise CheckpointError(f"{folder / CONFIG_FILE} is not valid JSON ({exc}); the "
                              "checkpoint is damaged: train again") from exc
    if config.get("format") != FORMAT:
        raise CheckpointError(f"{folder} has format {config.get('format')!r}, this synsample "
                              f"reads {FORMAT}")
    return config


def load_weights(folder: str | Path, model: nn.Module) -> nn.Module:
    path = Path(folder) / MODEL_FILE
    try:
        state = load_file(str(path))
    except (SafetensorError, OSError) as exc:
        raise CheckpointError(f"{path} is corrupt ({exc}); train again or restore it") from exc
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[0]
        raise CheckpointError(f"{path} does not fit the architecture in its config ({first})"
                              ) from exc
    return model


def load_optimizer(folder: str | Path, optimizer: torch.optim.Optimizer) -> bool:
    """Restore the optimizer state if the folder has one; return whether it did."""
    path = Path(folder) / STATE_FILE
    if not path.is_file():
        return False
    try:
        flat = load_file(str(path))
    except (SafetensorError, OSError) as exc:
        raise CheckpointError(f"{path} is corrupt ({exc}); delete it to restart training "
                              "from the saved weights with a fresh optimizer") from exc
    sd = optimizer.state_dict()
    state: dict[int, dict[str, torch.Tensor]] = {}
    for key, value in flat.items():
        i, name = key.split(".", 1)
        state.setdefault(int(i), {})[name] = value
    sd["state"] = state
    optimizer.load_state_dict(sd)
    return True


def load_model(folder: str | Path) -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild the trained network of a checkpoint folder, in eval mode, and its config."""
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
