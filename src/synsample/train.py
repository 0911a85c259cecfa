"""Training: ordinary PyTorch, with the weight constraint the method needs.

scANN (paper 000, section II.B): RMSprop, categorical cross-entropy, batch 100, dropout, and the
weights of the layers to be sampled kept in [-1, 1] by clipping after every optimizer step (a
Keras kernel constraint). Training is resumable: the checkpoint is written after every epoch,
and each epoch's shuffling and dropout are seeded by ``(seed, epoch)``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from synsample import checkpoint, data, models
from synsample.errors import CheckpointError, ConfigError
from synsample.nn.sampling import derive_seed


@dataclass
class TrainConfig:
    """Everything that determines a training run (its hash names cached jobs)."""

    dataset: str = "mnist"
    arch: str = "mlp"
    epochs: int = 100
    seed: int = 0
    batch_size: int = 100
    lr: float = 1e-3
    # Keras' RMSprop defaults (rho = 0.9, epsilon = 1e-7); PyTorch's alpha is Keras' rho
    rho: float = 0.9
    eps: float = 1e-7
    # paper 000 trains "with Dropout" and gives no rate; 0.5 on hidden units is the rate its
    # reference [22] (Srivastava et al.) recommends. scANN accuracy depends on it (README).
    dropout: float = 0.5
    init: str = "glorot"
    weight_bound: float = 1.0
    #: under-represent one class (paper 000, III.C): drop this fraction of its training items
    holdout_class: int | None = None
    holdout_fraction: float = 0.0

    def job_config(self) -> dict[str, Any]:
        """The fields that name a training job; the hold-out ones only when used, so that the
        jobs of ordinary runs keep their cache keys."""
        cfg = asdict(self)
        if self.holdout_class is None:
            cfg.pop("holdout_class")
            cfg.pop("holdout_fraction")
        return cfg

    def check(self) -> None:
        if self.epochs < 1 or self.batch_size < 1:
            raise ConfigError("epochs and batch size must be positive integers")
        if self.lr <= 0 or self.weight_bound <= 0:
            raise ConfigError("the learning rate and the weight bound must be positive")
        if not 0.0 <= self.holdout_fraction <= 1.0:
            raise ConfigError(f"holdout_fraction must be in [0, 1], got {self.holdout_fraction}")


def holdout_indices(labels: torch.Tensor, cls: int, fraction: float, seed: int) -> torch.Tensor:
    """Indices of the training items kept when ``fraction`` of class ``cls`` is removed (the
    removed items are a seeded random subset of that class)."""
    members = torch.nonzero(labels == cls)[:, 0]
    if len(members) == 0:
        raise ConfigError(f"class {cls} has no training items; choose a class of the dataset")
    order = torch.randperm(len(members), generator=torch.Generator().manual_seed(
        derive_seed(seed, 0x401D)))
    drop = members[order[: int(fraction * len(members))]]
    keep = torch.ones(len(labels), dtype=torch.bool)
    keep[drop] = False
    return torch.nonzero(keep)[:, 0]


def constrain_(model: nn.Module, bound: float = 1.0,
               types: tuple[type, ...] = (nn.Linear,)) -> None:
    """Clip the weights of every layer of ``types`` into [-bound, bound], in place."""
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, types):
                m.weight.clamp_(-bound, bound)


@torch.no_grad()
def evaluate(model: nn.Module, images: torch.Tensor, labels: torch.Tensor,
             batch_size: int = 1000) -> float:
    """Deterministic accuracy of ``model`` (eval mode) on uint8 images."""
    was = model.training
    model.eval()
    dev = next(model.parameters()).device
    correct = 0
    for i in range(0, len(labels), batch_size):
        out = model(images[i:i + batch_size].to(dev))
        correct += (out.argmax(1).cpu() == labels[i:i + batch_size]).sum().item()
    model.train(was)
    return correct / len(labels)


_IMMUTABLE = ("dataset", "arch", "seed", "batch_size", "lr", "rho", "eps", "dropout", "init",
              "weight_bound", "holdout_class", "holdout_fraction")


def train(config: TrainConfig, out: str | Path, data_path: str | Path | None = None,
          progress: bool = True, log: Callable[[str], None] = print,
          device: str | None = None) -> dict[str, Any]:
    """Train (or resume training) into ``out``; return the checkpoint config.

    If ``out`` holds a checkpoint of the same run, training continues from its last epoch;
    asking for more epochs than it has extends it. A checkpoint of a different run in ``out``
    is an error (nothing is overwritten).
    """
    config.check()
    out = Path(out)
    train_set = data.load(config.dataset, "train", path=data_path)
    test_set = data.load(config.dataset, "test", path=data_path)
    shape = tuple(train_set.images.shape[1:])
    model = models.build(config.arch, input_shape=shape, num_classes=train_set.num_classes,
                         dropout=config.dropout, init=config.init, seed=config.seed)
    dev = torch.device(device or "cpu")
    model.to(dev)
    optimizer = torch.optim.RMSprop(model.parameters(), lr=config.lr, alpha=config.rho,
                                    eps=config.eps)
    history: list[dict[str, Any]] = []
    if checkpoint.exists(out):
        saved = checkpoint.read_config(out)
        defaults = TrainConfig()
        different = {k: (saved.get(k, getattr(defaults, k)), getattr(config, k))
                     for k in _IMMUTABLE
                     if saved.get(k, getattr(defaults, k)) != getattr(config, k)}
        if different:
            diff = ", ".join(f"{k}: {a!r} there, {b!r} asked" for k, (a, b) in different.items())
            raise CheckpointError(f"{out} holds a checkpoint of a different run ({diff}); "
                                  "choose another --out or delete that folder")
        checkpoint.load_weights(out, model)
        model.to(dev)
        if not checkpoint.load_optimizer(out, optimizer):
            log(f"{out}: no optimizer state, resuming with a fresh optimizer")
        history = list(saved.get("history", []))
        if len(history) >= config.epochs:
            log(f"{out}: already trained for {len(history)} epochs")
            return {**saved, "epochs": max(config.epochs, saved.get("epochs", 0))}
        log(f"{out}: resuming at epoch {len(history) + 1} of {config.epochs}")
    meta = {**asdict(config), "input_shape": list(shape), "num_classes": train_set.num_classes,
            "classes": list(train_set.classes), "data_source": train_set.source,
            "constraint": f"weights of nn.Linear layers clipped to [-{config.weight_bound}, "
                          f"{config.weight_bound}] after every step"}
    loss_fn = nn.CrossEntropyLoss()
    x_all, y_all = train_set.images, train_set.labels
    if config.holdout_class is not None:
        keep = holdout_indices(y_all, config.holdout_class, config.holdout_fraction, config.seed)
        x_all, y_all = x_all[keep], y_all[keep]
        meta["holdout_removed"] = len(train_set) - len(keep)
    n = len(y_all)
    from tqdm.auto import tqdm

    for epoch in range(len(history), config.epochs):
        start = time.perf_counter()
        order = torch.randperm(n, generator=torch.Generator().manual_seed(
            derive_seed(config.seed, epoch)))
        torch.manual_seed(derive_seed(config.seed, epoch, 1))  # dropout masks
        model.train()
        total_loss, correct = 0.0, 0
        steps = range(0, n, config.batch_size)
        bar = tqdm(steps, desc=f"epoch {epoch + 1}/{config.epochs}", leave=False,
                   disable=not progress, unit="batch")
        for i in bar:
            idx = order[i:i + config.batch_size]
            x, y = x_all[idx].to(dev), y_all[idx].to(dev)
            logits = model(x)
            loss = loss_fn(logits, y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            constrain_(model, config.weight_bound)
            total_loss += loss.item() * len(idx)
            correct += (logits.argmax(1) == y).sum().item()
        test_acc = evaluate(model, test_set.images, test_set.labels)
        record = {"epoch": epoch + 1, "loss": total_loss / n, "train_accuracy": correct / n,
                  "test_accuracy": test_acc, "seconds": time.perf_counter() - start}
        history.append(record)
        checkpoint.save(out, model, {**meta, "epochs": config.epochs, "history": history},
                        optimizer)
        log(f"epoch {epoch + 1}/{config.epochs}: loss {record['loss']:.4f}, train "
            f"{record['train_accuracy']:.4f}, test {test_acc:.4f} ({record['seconds']:.1f} s)")
    return checkpoint.read_config(out)
