"""Evaluating one trained checkpoint: deterministically, and sampled through a method."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from synsample import checkpoint, data, devices, engine, methods
from synsample.io import write_with
from synsample.prediction import Prediction

DETERMINISTIC_FILE = "deterministic.safetensors"


@torch.no_grad()
def deterministic_outputs(model: torch.nn.Module, images: torch.Tensor,
                          batch_size: int = 1000) -> torch.Tensor:
    """Logits of the ordinary (non-sampled) network, eval mode, ``[N, C]``."""
    model.eval()
    return torch.cat([model(images[i:i + batch_size]) for i in range(0, len(images), batch_size)])


def save_deterministic(folder: Path, logits: torch.Tensor, labels: torch.Tensor) -> None:
    tensors = {"predicted": logits.argmax(1).contiguous(), "labels": labels.contiguous()}
    write_with(folder / DETERMINISTIC_FILE, lambda tmp: save_file(tensors, str(tmp)))


def load_deterministic(folder: Path) -> dict[str, torch.Tensor]:
    return load_file(str(folder / DETERMINISTIC_FILE))


def sample_checkpoint(folder: str | Path, method: str = "scann", precision: str = "full",
                      samples: int = 1000, seed: int = 0, mode: str = "shared",
                      data_path: str | Path | None = None, limit: int | None = None,
                      progress: bool = True, **predict_kw: Any
                      ) -> tuple[Prediction, data.Dataset]:
    """Convert the checkpoint in ``folder`` with ``method`` and a coin of ``precision``, sample
    it ``samples`` times on the test split of its dataset (the first ``limit`` items if given)
    and return the Prediction and that test set."""
    model, config = checkpoint.load_model(folder)
    test = data.load(config["dataset"], "test", path=data_path)
    if limit is not None:
        test = test.subset(limit)
    coin = devices.coin_for_precision(precision)
    sto = methods.get(method).convert(model, coin=coin)
    pred = engine.predict(sto, test, samples=samples, seed=seed, mode=mode, progress=progress,
                          desc=f"{method} {precision}", **predict_kw)
    return pred, test
