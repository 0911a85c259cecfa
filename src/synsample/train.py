"""Training: ordinary PyTorch, with the weight constraint the method needs.

scANN (paper 000, section II.B): RMSprop, categorical cross-entropy, batch 100, dropout, and the
weights of the layers to be sampled kept in [-1, 1] by clipping after every optimizer step (a
Keras kernel constraint). Neural Sampling Machines (paper 002, sections 2.3 and 3): Adam at
3e-4, batch 100, no constraint, the data-dependent initialisation of eq. 8 on one batch of 100
before the first step, and sampled binary states in every training pass. Quantized stochastic
computing (paper 003, section III): the sum of squared errors of the sigmoid outputs (eq. 4-7)
with a learning rate decaying by ``lr_decay`` every epoch (Adam by default: the paper names no
update rule; ``sgd`` is eq. 7 as written), weights clipped to [-1, 1]. An architecture
brings its own defaults ([`TrainConfig.for_arch`][synsample.train.TrainConfig.for_arch]). Training
is resumable: the checkpoint is written after every epoch, and each epoch's shuffling and noise are
seeded by ``(seed, epoch)``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from synsample import checkpoint, checks, data, models
from synsample.config_args import option, positive_int
from synsample.devices import RandomSource
from synsample.errors import CheckpointError, ConfigError
from synsample.io import folder_lock
from synsample.nn import nsm as nsm_layers
from synsample.nn import sampling_aware
from synsample.nn.bayes import kl_divergence
from synsample.nn.sampling_aware import ESTIMATORS as SA_ESTIMATORS
from synsample.randomness import derive_seed


@dataclass
class TrainConfig:
    """Everything that determines a training run (its hash names cached jobs).

    Attributes:
        dataset: the dataset's catalog name.
        arch: the architecture (`synsample.models.ARCHS`).
        epochs: passes over the training set.
        seed: seeds the initialisation, shuffling and noise.
        batch_size: items per step.
        lr: the learning rate (of epoch 0, with ``lr_decay``).
        rho: RMSprop's decay (Keras' rho, PyTorch's alpha).
        eps: RMSprop's epsilon.
        dropout: the drop rate of the architectures with dropout.
        init: the initialisation (``glorot``, ``uniform`` or ``gaussian``).
        weight_bound: clip ``nn.Linear`` weights into [-bound, bound] after every step (None:
            never).
        holdout_class: the class to under-represent (paper 000, section III.C), or None.
        holdout_fraction: the fraction of its training items dropped.
        hidden: hidden units of paper 000's MLP and conv net (None: 400 and 100).
        calibration_items: training items kept out for recalibration and conformal sets.
        optimizer: ``rmsprop`` (paper 000), ``adam`` (paper 002) or ``sgd``.
        data_init: paper 002's eq. 8 on the first batch of 100 training items.
        noise: the NSM layers' noise (``bernoulli:P`` or ``gaussian:SIGMA``).
        estimator: the NSM layers' gradient estimator.
        noise_site: the NSM linear layers' noise site.
        bias: NSM hidden layers with biases.
        trace_steps: steps whose last stochastic hidden layer's input percentiles are kept
            (paper 002, Fig. 2).
        loss: ``cross-entropy`` or ``sse`` (paper 003, eq. 4).
        lr_decay: the learning rate of epoch ``e`` is ``lr * lr_decay ** e``.
        states: SC networks' quantization states.
        sc_length: SC networks' training bitstream length (None: Method 1).
        sampling_aware: train scANN networks through the coins of this device spec (None:
            ordinary training).
        sa_estimator: the sampling-aware gradient estimator (``lrt`` or ``ste``).
    """

    dataset: str = option("mnist", "dataset to train on: mnist, fashion-mnist or cifar10 "
                          "(`synsample data list`)")
    arch: str = option("mlp", "architecture, listed above", choices=tuple(sorted(models.ARCHS)),
                       metavar="ARCH",
                       default_text="mlp, paper 000's 784-400-10")
    epochs: int = option(100, "epochs in all", parse=positive_int)
    seed: int = option(0, "seeds the init, the shuffling and the noise")
    batch_size: int = option(100, "training items per step (the papers' 100)",
                             parse=positive_int)
    lr: float = option(1e-3, "learning rate", default_text="the architecture's: 1e-3, 3e-4 for "
                       "paper 002's networks, 1e-2 for sc-*")
    # Keras' RMSprop defaults (rho = 0.9, epsilon = 1e-7); PyTorch's alpha is Keras' rho
    rho: float = 0.9
    eps: float = 1e-7
    # paper 000 trains "with Dropout" and gives no rate; 0.5 on hidden units is the rate its
    # reference [22] (Srivastava et al.) recommends. scANN accuracy depends on it (README).
    dropout: float = option(0.5, "dropout rate after hidden layers (scANN networks)",
                            default_text="0.5; 0 with --sampling-aware and for the other "
                                         "papers' networks")
    init: str = option("glorot", "glorot (Keras default, scANN and NSM), uniform (dense "
                       "weights U(-0.99, 0.99)) or gaussian (N(0, 0.2^2) clipped to [-1, 1])",
                       choices=tuple(models.INITS), default_text="the architecture's: glorot, "
                                                                 "gaussian for sc-*")
    #: clip the weights of nn.Linear layers into [-bound, bound] after every step (None: never)
    weight_bound: float | None = 1.0
    #: paper 000's MLP and conv net: hidden units (None: the architecture's 400 and 100)
    hidden: int | None = option(None, "mlp and conv: hidden units (paper 000: 400 in the MLP of "
                                "Table I, 100 in the conv net; its section II.B names 40)",
                                parse=positive_int, metavar="N",
                                default_text="the architecture's: 400 (mlp), 100 (conv)")
    #: under-represent one class (paper 000, III.C): drop this fraction of its training items
    holdout_class: int | None = None
    holdout_fraction: float = 0.0
    #: keep this many training items (a seeded random subset) out of training, for temperature
    #: scaling and conformal calibration in ``evaluate`` (0: train on all, the papers' protocol)
    calibration_items: int = option(0, "keep N training items (a seeded random subset) out of "
                                    "training; evaluate fits temperature scaling and conformal "
                                    "sets on them (0: train on all, as the papers)",
                                    metavar="N")
    #: ``rmsprop`` (paper 000) or ``adam`` (paper 002)
    optimizer: str = option("rmsprop", "the optimizer (sgd is paper 003's eq. 7 as written)",
                            choices=("rmsprop", "adam", "sgd"),
                            default_text="the architecture's: rmsprop for scANN, adam for "
                                         "papers 002-004's networks")
    #: eq. 8 of paper 002 on the first batch of 100 training items (NSM layers)
    data_init: bool = option(False, "NSM: paper 002's eq. 8 data-dependent init on the first "
                             "batch (--no-data-init: as the released code)",
                             default_text="on for nsm-*")
    #: the NSM layers' noise (``bernoulli:P`` or ``gaussian:SIGMA``), estimator, linear site
    noise: str | None = option(None, "NSM noise: bernoulli:P (blank-out) or gaussian:SIGMA "
                               "(xi ~ N(1, SIGMA^2))", metavar="KIND:LEVEL",
                               default_text="bernoulli:0.5")
    estimator: str = option("erf", "NSM gradient: erf (paper 002 section 2.3), binconcrete "
                            "(SI 4.6), released (the released code's BinConcrete forward, "
                            "log(phi) logit)", choices=nsm_layers.ESTIMATORS)
    noise_site: str = option("synapse", "NSM linear layers: noise per synapse (the paper) or "
                             "per input neuron (the released code)", choices=nsm_layers.SITES)
    #: NSM hidden layers with biases (False: the bias-free unit of eq. 4)
    bias: bool = True
    #: record the 15/50/85th percentiles of the last stochastic hidden layer's input (the
    #: argument of its firing probability) for this many first steps (paper 002, Fig. 2)
    trace_steps: int = 0
    #: ``cross-entropy`` on the logits, or ``sse``: eq. 4 of paper 003 on their sigmoids
    loss: str = "cross-entropy"
    #: the learning rate of epoch ``e`` is ``lr * lr_decay ** e`` (paper 003's lambda)
    lr_decay: float = option(1.0, "multiply the learning rate by this every epoch",
                             default_text="the architecture's: 1, 0.85 for sc-*")
    #: SC networks: quantization states and the training bitstream length (None: Method 1)
    states: int | None = option(None, "sc-*: quantization states of inputs and weights",
                                choices=(3, 5, 7, 9, 11), default_text="5")
    sc_length: int | None = option(None, "sc-*: train with bitstreams of this length in the "
                                   "forward pass (paper 003's Method 2)", parse=positive_int,
                                   metavar="BITS", default_text="Method 1, no SC in training")
    #: scANN networks: train through the coins of this device (issue 20, ``full``, ``8``,
    #: ``4`` or ``nonideal:...``,
    #: [`synsample.devices.coin_from_spec`][synsample.devices.coin_from_spec]; None: post-hoc, the
    #: paper's ordinary training) with this estimator (`synsample.nn.sampling_aware`)
    sampling_aware: str | None = option(None, "scANN networks: train through the coins of "
                                        "COIN (issue 20): full (ideal, when no COIN is given), "
                                        "8 or 4 (b-bit coins) or nonideal:bits=4,bias=B,"
                                        "spread=S,stuck=F,seed=N", metavar="COIN",
                                        const="full", default_text="off, the paper's post-hoc "
                                                                   "conversion")
    sa_estimator: str = option("lrt", "sampling-aware gradient: lrt (local reparameterisation "
                               "of the pre-activation) or ste (straight-through on sampled "
                               "weights)", choices=SA_ESTIMATORS)

    @classmethod
    def for_arch(cls, arch: str, **overrides: Any) -> TrainConfig:
        """The config of ``arch`` with its own training defaults (``models.ARCHS``), then the
        ``overrides`` that are not None. Sampling-aware training without a ``dropout`` given
        trains without dropout (`SAMPLING_AWARE_DROPOUT`).

        Args:
            arch: the architecture.
            **overrides: fields to set (None values are ignored).

        Returns:
            The config.

        Raises:
            ConfigError: for an unknown architecture.
        """
        if arch not in models.ARCHS:
            raise ConfigError(f"unknown architecture {arch!r}; available: "
                              f"{', '.join(models.ARCHS)}")
        given = {k: v for k, v in overrides.items() if v is not None}
        if given.get("sampling_aware") is not None and "dropout" not in given:
            given["dropout"] = SAMPLING_AWARE_DROPOUT  # the coins are the regulariser
        return cls(**{"arch": arch, **models.ARCHS[arch].train_defaults, **given})

    def job_config(self) -> dict[str, Any]:
        """The fields that name a training job; the optional ones only when they differ from
        their defaults, so that the jobs of earlier runs keep their cache keys.

        Returns:
            The fields by name.
        """
        cfg = asdict(self)
        if self.holdout_class is None:
            cfg.pop("holdout_class")
            cfg.pop("holdout_fraction")
        for name, default in _OPTIONAL.items():
            if cfg[name] == default:
                cfg.pop(name)
        return cfg

    def check(self) -> None:
        """Refuse settings that cannot train (one line naming the fix).

        Raises:
            ConfigError: for the first setting that cannot train.
        """
        data.spec(self.dataset)  # an unknown dataset is named before any work
        for name in ("lr", "lr_decay", "rho", "eps", "dropout", "holdout_fraction"):
            checks.finite(getattr(self, name), name.replace("_", "-"))
        if self.weight_bound is not None:
            checks.finite(self.weight_bound, "weight bound")
        if self.epochs < 1 or self.batch_size < 1:
            raise ConfigError("epochs and batch size must be positive integers")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"dropout must lie in [0, 1), got {self.dropout}")
        if self.lr <= 0 or (self.weight_bound is not None and self.weight_bound <= 0):
            raise ConfigError("the learning rate and the weight bound must be positive")
        if self.optimizer not in OPTIMIZERS:
            raise ConfigError(f"unknown optimizer {self.optimizer!r}; use one of "
                              f"{', '.join(OPTIMIZERS)}")
        if self.loss not in LOSSES:
            raise ConfigError(f"unknown loss {self.loss!r}; use one of {', '.join(LOSSES)}")
        if not 0.0 < self.lr_decay <= 1.0:
            raise ConfigError(f"lr_decay must be in (0, 1], got {self.lr_decay}")
        if (self.states is not None or self.sc_length is not None) and \
                not self.arch.startswith("sc-"):
            raise ConfigError(f"{self.arch} is not a stochastic-computing network; --states and "
                              "--sc-length are for the sc-* architectures")
        if self.trace_steps < 0:
            raise ConfigError("trace_steps must be 0 or more")
        if self.noise is not None and not self.arch.startswith("nsm-"):
            raise ConfigError(f"{self.arch} has no noisy synapses; --noise is for the nsm-* "
                              "architectures")
        if self.calibration_items < 0:
            raise ConfigError(f"calibration_items must be 0 or more, got "
                              f"{self.calibration_items}")
        if not 0.0 <= self.holdout_fraction <= 1.0:
            raise ConfigError(f"holdout_fraction must be in [0, 1], got {self.holdout_fraction}")
        if self.sampling_aware is not None:
            self.training_coin()
            sampling_aware.check_estimator(self.sa_estimator)
            if models.ARCHS[self.arch].method != "scann" or self.weight_bound is None:
                raise ConfigError(f"sampling-aware training is for scANN networks with weights "
                                  f"clipped to [-1, 1]; {self.arch} is not one")

    def training_coin(self):
        """The device whose coins the training passes go through (None: post-hoc training).

        Returns:
            (RandomSource | None): the device `sampling_aware` names, or None.
        """
        from synsample.devices import coin_from_spec

        return None if self.sampling_aware is None else coin_from_spec(self.sampling_aware)


#: dropout of sampling-aware training (issue 20): none, the coins are the regulariser. Measured
#: on the Fashion-MNIST MLP after 3 epochs (seed 0, K = 100): sampled accuracy 59.5% with 0.5,
#: 75.9% with 0.0 (docs/sampling-aware-training.md)
SAMPLING_AWARE_DROPOUT = 0.0

#: fields added after the first jobs were cached, left out of a job's config at their default
_OPTIONAL: dict[str, Any] = {"optimizer": "rmsprop", "data_init": False, "noise": None,
                             "estimator": "erf", "noise_site": "synapse", "trace_steps": 0,
                             "calibration_items": 0,
                             "bias": True, "loss": "cross-entropy", "lr_decay": 1.0,
                             "states": None, "sc_length": None, "sampling_aware": None,
                             "sa_estimator": "lrt", "hidden": None}


def _rmsprop(params, config: TrainConfig) -> torch.optim.Optimizer:
    return torch.optim.RMSprop(params, lr=config.lr, alpha=config.rho, eps=config.eps)


def _adam(params, config: TrainConfig) -> torch.optim.Optimizer:
    return torch.optim.Adam(params, lr=config.lr)


def _sgd(params, config: TrainConfig) -> torch.optim.Optimizer:
    return torch.optim.SGD(params, lr=config.lr)


OPTIMIZERS: dict[str, Callable[[Any, TrainConfig], torch.optim.Optimizer]] = {
    "rmsprop": _rmsprop, "adam": _adam, "sgd": _sgd}


def sum_squared_error(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Paper 003, eq. 4: ``1/2 sum_i (sigmoid(s_i) - d_i)^2`` against one-hot targets ``d``,
    averaged over the batch.

    Args:
        logits: ``[B, C]`` outputs ``s``.
        labels: ``[B]`` true classes.

    Returns:
        The scalar loss.
    """
    target = nn.functional.one_hot(labels, logits.shape[1]).to(logits.dtype)
    return 0.5 * ((torch.sigmoid(logits) - target) ** 2).sum(1).mean()


LOSSES: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
    "cross-entropy": nn.functional.cross_entropy, "sse": sum_squared_error}


def traced_layer(model: nn.Module) -> nn.Module | None:
    """The last stochastic hidden layer (the one paper 002's Fig. 2 looks at), if any.

    Args:
        model: the network.

    Returns:
        The last module with a ``trace_argument`` attribute, or None.
    """
    found = None
    for m in model.modules():
        if hasattr(m, "trace_argument"):
            found = m
    return found


def holdout_indices(labels: torch.Tensor, cls: int, fraction: float, seed: int) -> torch.Tensor:
    """Indices of the training items kept when ``fraction`` of class ``cls`` is removed (the
    removed items are a seeded random subset of that class).

    Args:
        labels: the training labels.
        cls: the class to under-represent.
        fraction: the fraction of its items removed.
        seed: seeds the choice.

    Returns:
        The indices kept, ascending.

    Raises:
        ConfigError: when the class has no items.
    """
    members = torch.nonzero(labels == cls)[:, 0]
    if len(members) == 0:
        raise ConfigError(f"class {cls} has no training items; choose a class of the dataset")
    order = torch.randperm(len(members), generator=torch.Generator().manual_seed(
        derive_seed(seed, 0x401D)))
    drop = members[order[: int(fraction * len(members))]]
    keep = torch.ones(len(labels), dtype=torch.bool)
    keep[drop] = False
    return torch.nonzero(keep)[:, 0]


def calibration_split(n: int, items: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``(trained, held_out)``: indices of the ``n`` training items, ``items`` of them (a seeded
    random subset) kept out of training for recalibration and conformal sets.

    Args:
        n: training items.
        items: items to keep out, ``0 <= items < n``.
        seed: seeds the choice.

    Returns:
        ``(trained, held_out)`` indices, each ascending.

    Raises:
        ConfigError: unless ``0 <= items < n``.
    """
    if not 0 <= items < n:
        raise ConfigError(f"cannot keep {items} of {n} training items out of training; choose "
                          f"--calibration-items below {n}")
    order = torch.randperm(n, generator=torch.Generator().manual_seed(derive_seed(seed, 0xCA1B)))
    return order[items:].sort().values, order[:items].sort().values


def calibration_set(config: dict[str, Any], data_path: str | Path | None = None
                    ) -> data.Dataset | None:
    """The training items the checkpoint with ``config`` kept out of training (None: it kept
    none, ``calibration_items`` 0).

    Args:
        config: the checkpoint's config.
        data_path: a local copy of the dataset (default: the cache).

    Returns:
        The held-out training items, or None.
    """
    items = int(config.get("calibration_items", 0))
    if items == 0:
        return None
    train_set = data.load(config["dataset"], "train", path=data_path)
    return train_set.subset(calibration_split(len(train_set), items, config["seed"])[1])


def constrain_(model: nn.Module, bound: float | None = 1.0,
               types: tuple[type, ...] = (nn.Linear,)) -> None:
    """Clip the weights of every layer of ``types`` into [-bound, bound], in place (None:
    leave them).

    Args:
        model: the network.
        bound: the bound, or None.
        types: the layer types clipped.
    """
    if bound is None:
        return
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, types):
                m.weight.clamp_(-bound, bound)


@torch.no_grad()
def evaluate(model: nn.Module, images: torch.Tensor, labels: torch.Tensor,
             batch_size: int = 1000) -> float:
    """Accuracy of ``model`` (eval mode) on uint8 images: deterministic, or one sampled pass
    for a stochastic network (an NSM samples in every pass).

    Args:
        model: the network (its training mode is restored after).
        images: uint8 images.
        labels: their classes.
        batch_size: items per forward call.

    Returns:
        The accuracy in [0, 1].
    """
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
              "weight_bound", "holdout_class", "holdout_fraction", "calibration_items",
              "optimizer", "data_init",
              "noise", "estimator", "noise_site", "bias", "loss", "lr_decay", "states",
              "sc_length", "sampling_aware", "sa_estimator")


def train(config: TrainConfig, out: str | Path, data_path: str | Path | None = None,
          progress: bool = True, log: Callable[[str], None] = print,
          device: str | None = None,
          on_epoch: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """Train (or resume training) into ``out``; return the checkpoint config.

    If ``out`` holds a checkpoint of the same run, training continues from its last epoch;
    asking for more epochs than it has extends it. A checkpoint of a different run in ``out``
    is an error (nothing is overwritten).

    Args:
        config: the run.
        out: the checkpoint folder (locked while training).
        data_path: a local copy of the dataset (default: the cache).
        progress: show a progress bar per epoch.
        log: called with one line per epoch and event.
        device: the torch device (default cpu).
        on_epoch: called with each epoch's record once its checkpoint is written (run
            tracking).

    Returns:
        The checkpoint's config, with its ``history``.

    Raises:
        ConfigError: for settings that cannot train, or a diverging loss.
        CheckpointError: when ``out`` holds a checkpoint of a different run.
    """
    config.check()
    out = checks.writable_folder(out, "checkpoint folder")
    dev = checks.device(device)
    with folder_lock(out):
        return _train(config, out, data_path, progress, log, dev, on_epoch)


def _train(config: TrainConfig, out: Path, data_path: str | Path | None, progress: bool,
           log: Callable[[str], None], dev: torch.device,
           on_epoch: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    train_set = data.load(config.dataset, "train", path=data_path)
    test_set = data.load(config.dataset, "test", path=data_path)
    shape = tuple(train_set.images.shape[1:])
    model = models.build_from_config(asdict(config), shape, train_set.num_classes,
                                     seed=config.seed)
    model.to(dev)
    optimizer = OPTIMIZERS[config.optimizer](model.parameters(), config)
    history: list[dict[str, Any]] = []
    trace: list[list[float]] = []
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
        trace = list(saved.get("argument_percentiles", []))
        if len(history) >= config.epochs:
            log(f"{out}: already trained for {len(history)} epochs")
            return {**saved, "epochs": max(config.epochs, saved.get("epochs", 0))}
        log(f"{out}: resuming at epoch {len(history) + 1} of {config.epochs}")
    meta = {**asdict(config), "input_shape": list(shape), "num_classes": train_set.num_classes,
            "classes": list(train_set.classes), "data_source": train_set.source,
            "constraint": "none" if config.weight_bound is None else
            f"weights of nn.Linear layers clipped to [-{config.weight_bound}, "
            f"{config.weight_bound}] after every step"}
    loss_fn = LOSSES[config.loss]
    x_all, y_all = train_set.images, train_set.labels
    if config.calibration_items:
        trained = calibration_split(len(y_all), config.calibration_items, config.seed)[0]
        x_all, y_all = x_all[trained], y_all[trained]
    if config.holdout_class is not None:
        keep = holdout_indices(y_all, config.holdout_class, config.holdout_fraction, config.seed)
        meta["holdout_removed"] = len(y_all) - len(keep)
        x_all, y_all = x_all[keep], y_all[keep]
    n = len(y_all)
    if config.data_init and not history:
        from synsample.nn.nsm import data_dependent_init_

        torch.manual_seed(derive_seed(config.seed, 0x1417))
        first = torch.randperm(n, generator=torch.Generator().manual_seed(
            derive_seed(config.seed, 0)))[:100]
        meta["data_init_stats"] = data_dependent_init_(model.train(), x_all[first].to(dev))
    elif history:
        meta["data_init_stats"] = saved.get("data_init_stats")
    traced = traced_layer(model) if config.trace_steps else None
    bayesian = kl_divergence(model) is not None
    step = len(history) * ((n + config.batch_size - 1) // config.batch_size)
    coins = config.training_coin()
    # issue 20: the training passes go through the coins (the model is this run's own)
    detach = (sampling_aware.attach(model, coins, config.sa_estimator)[1]
              if coins is not None else None)
    from tqdm.auto import tqdm

    try:
        for epoch in range(len(history), config.epochs):
            start = time.perf_counter()
            order = torch.randperm(n, generator=torch.Generator().manual_seed(
                derive_seed(config.seed, epoch)))
            torch.manual_seed(derive_seed(config.seed, epoch, 1))  # dropout masks, NSM noise
            model.train()
            for group in optimizer.param_groups:
                group["lr"] = config.lr * config.lr_decay ** epoch
            total_loss, correct = 0.0, 0
            steps = range(0, n, config.batch_size)
            bar = tqdm(steps, desc=f"epoch {epoch + 1}/{config.epochs}", leave=False,
                       disable=not progress, unit="batch")
            for i in bar:
                idx = order[i:i + config.batch_size]
                x, y = x_all[idx].to(dev), y_all[idx].to(dev)
                if traced is not None:
                    traced.trace_argument = step < config.trace_steps
                logits = model(x)
                if traced is not None and traced.trace_argument:
                    q = torch.quantile(traced.last_argument.flatten().float(),
                                       torch.tensor([0.15, 0.5, 0.85], device=dev))
                    trace.append([step, *q.tolist()])
                step += 1
                loss = loss_fn(logits, y)
                if bayesian:  # the ELBO: the KL term spread over the training items
                    loss = loss + kl_divergence(model) / n
                if not torch.isfinite(loss):
                    raise ConfigError(
                        f"training diverged: the loss became {loss.item()} at epoch {epoch + 1}, "
                        f"step {step} (lr {config.lr:g}); lower --lr. The checkpoint in {out} "
                        "keeps the last finite epoch")
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
            extra = {"argument_percentiles": trace} if trace else {}
            checkpoint.save(out, model, {**meta, "epochs": config.epochs, "history": history,
                                         **extra}, optimizer, tag=f"e{epoch + 1:04d}")
            log(f"epoch {epoch + 1}/{config.epochs}: loss {record['loss']:.4f}, train "
                f"{record['train_accuracy']:.4f}, test {test_acc:.4f} ({record['seconds']:.1f} s)")
            if on_epoch is not None:
                on_epoch(record)
    finally:
        if detach is not None:
            detach()
    return checkpoint.read_config(out)


def fit(model: nn.Module, loader: Iterable, epochs: int = 1, lr: float = 1e-3,
        optimizer: str = "adam", weight_bound: float | None = None, device: str | None = None,
        log: Callable[[str], None] | None = None,
        sampling_aware_coin: RandomSource | str | None = None,
        sa_estimator: str = "lrt", train_items: int | None = None) -> list[dict[str, float]]:
    """Train or fine-tune a user's own network on the user's own ``DataLoader`` of ``(x, y)``
    batches, with cross-entropy, plus the KL term over the training items when the network
    has Bayesian layers (the ELBO of Bayes-by-Backprop, e.g. after
    `synsample.methods.bbb.bayesian`).

    Args:
        model: the network, trained in place.
        loader: an iterable of ``(inputs, labels)`` batches (a ``DataLoader``: the length of
            its ``dataset`` divides the KL term).
        epochs: passes over the loader.
        lr: the learning rate.
        optimizer: ``adam``, ``rmsprop`` or ``sgd``.
        weight_bound: clip ``nn.Linear`` weights into [-bound, bound] after every step (scANN's
            constraint; None: no clip).
        device: torch device (default cpu).
        log: called with one line per epoch.
        sampling_aware_coin: train through the coins of this device (a
            [`RandomSource`][synsample.devices.RandomSource] or a spec such as ``"full"``, ``"4"``,
            ``"nonideal:bias=0.02"``; issue 20, `synsample.nn.sampling_aware`) so that
            scANN's sampled network is the one optimised; needs ``weight_bound=1.0``. None (the
            default): ordinary training.
        sa_estimator: its gradient estimator, ``lrt`` (default) or ``ste``.
        train_items: the number of training items the KL term is spread over (default: the
            length of ``loader.dataset``); needed for a Bayesian network trained from a loader
            without a ``dataset``.

    Returns:
        One record per epoch: mean ``loss`` and ``train_accuracy``.

    Raises:
        ConfigError: for an unknown optimizer, a non-finite lr, sampling-aware training
            without ``weight_bound=1.0``, a Bayesian network without a number of training
            items, or a diverging loss.
    """
    checks.finite(lr, "lr")
    dev = checks.device(device)
    if optimizer not in OPTIMIZERS:
        raise ConfigError(f"unknown optimizer {optimizer!r}; use one of {', '.join(OPTIMIZERS)}")
    model.to(dev).train()
    detach = None
    if sampling_aware_coin is not None:
        from synsample.devices import coin_from_spec

        if weight_bound is None or weight_bound > 1.0:
            raise ConfigError("sampling-aware training reads the weights as coins: give "
                              "weight_bound=1.0")
        coin = (coin_from_spec(sampling_aware_coin) if isinstance(sampling_aware_coin, str | int)
                else sampling_aware_coin)
        detach = sampling_aware.attach(model, coin, sa_estimator)[1]
    opt = OPTIMIZERS[optimizer](model.parameters(), TrainConfig(lr=lr))
    items = train_items or (len(loader.dataset) if hasattr(loader, "dataset") else None)
    if items is None and kl_divergence(model) is not None:
        raise ConfigError("a Bayesian network's loss spreads the KL term over the training "
                          "items: give train_items=N, or a DataLoader (its dataset's length)")
    history = []
    try:
        for epoch in range(epochs):
            total, correct, seen = 0.0, 0, 0
            for x, y in loader:
                x, y = x.to(dev), y.to(dev)
                logits = model(x)
                loss = nn.functional.cross_entropy(logits, y)
                kl = kl_divergence(model)
                if kl is not None:
                    loss = loss + kl / items
                if not torch.isfinite(loss):
                    raise ConfigError(f"training diverged: the loss became {loss.item()} in epoch "
                                      f"{epoch + 1}; lower lr (was {lr:g})")
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                constrain_(model, weight_bound)
                total += loss.item() * len(y)
                correct += (logits.argmax(1) == y).sum().item()
                seen += len(y)
            history.append({"loss": total / max(seen, 1), "train_accuracy": correct / max(seen, 1)})
            if log is not None:
                log(f"epoch {epoch + 1}/{epochs}: loss {history[-1]['loss']:.4f}, train "
                    f"{history[-1]['train_accuracy']:.4f}")
    finally:
        if detach is not None:
            detach()
    model.eval()
    return history
