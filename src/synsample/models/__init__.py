"""The papers' architectures, by name. Every model takes raw uint8 images ``[N, C, H, W]`` and
scales them in its first layer ([`ScaleInput`][synsample.nn.scale.ScaleInput]), so the engine sees
integer inputs.

=============== ========================================================  ==================
name            layers                                                    paper
=============== ========================================================  ==================
``mlp``         784-400-10, ReLU, dropout                                 000, Table I
``conv``        784-[32x3x3]-100-10 (no pooling: 26x26x32 = 21632 -> 100) 000, Table I
``cifar-conv``  32(3x3)-64(3x3)-128(3x3)-256-128-10, 2x2 max-pool / conv  000, section II.B
``nsm-mlp``     784-300-300-300-10 NSM (sign units, noisy synapses)       002, Table 1
``stnn-mlp``    784-300-300-300-10 sigmoid stochastic binary units        002, Table 1
``relu-mlp``    784-300-300-300-10 ReLU, deterministic                    002, section 3.2
``sigmoid-mlp`` 784-300-300-300-10 sigmoid, deterministic                 002, section 3.2
``nsm-conv``    32(5x5)-pool-64(5x5)-pool-512-10 NSM                      002, Table 2 / 6
``dcnn``        the same, deterministic ReLU (the paper's dCNN)           002, Table 2 / 6
``sc-mlp``      784-128-10 quantized sigmoid, stochastic computing        003, Table 1
``sc-mlp3``     784-392-196-98-10, the same                               003, Table 1
``lenet5-bbb``  LeNet-5 with BatchNorm, Bayes-by-Backprop layers          004, Table 1
``lenet5``      the same, deterministic (deep-ensemble members)           004, Table 1
``lenet5-dropout``, ``lenet5-dropconnect``: with MC-Dropout / DropConnect 004, Table 1
=============== ========================================================  ==================

Paper 002's networks (``nsm-*``, ``stnn-mlp``, ``relu-mlp``, ``sigmoid-mlp``, ``dcnn``) binarise
their inputs to -1/+1 (section 3.3) and end in an ordinary linear read-out, as the released code
does. The stochastic ones (``nsm-*``, ``stnn-mlp``) sample in training and inference alike; their
method is ``nsm``.

Paper 003's networks (``sc-*``) scale pixels to [0, 1] (``X / max X``) and quantize every
layer's inputs and weights to ``states`` levels (5 or 11); ``sc_length`` gives their hidden and
read-out layers bitstreams of that many bits in training (Method 2; None: Method 1, exact
arithmetic). Their method is ``sc``, which sets the inference stream length.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import torch
from torch import nn

from synsample.errors import ConfigError
from synsample.nn.bayes import BayesConv2d, BayesLinear
from synsample.nn.dropout import DropConnectConv2d, DropConnectLinear, MCDropout
from synsample.nn.nsm import Binarize, NSMConv2d, NSMLinear, StochasticSigmoidLinear
from synsample.nn.sc_linear import SCLinear
from synsample.nn.scale import ScaleInput

__all__ = ["ARCHS", "Arch", "ScaleInput", "build", "build_from_config"]


def init_glorot_(model: nn.Module) -> nn.Module:
    """Keras' default initialisation (Glorot uniform weights, zero biases), as the paper's Keras
    models had; every weight lies far inside [-0.99, 0.99].

    Args:
        model: the network (initialised in place).

    Returns:
        ``model``.
    """
    for m in model.modules():
        if isinstance(m, nn.Linear | nn.Conv2d):
            nn.init.xavier_uniform_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
    return model


def init_gaussian_(model: nn.Module, std: float = 0.2) -> nn.Module:
    """Paper 003's algorithm box, "W <- Gaussian distribution [-1, 1]": N(0, std^2) clipped to
    [-1, 1] (the paper gives no std).

    Args:
        model: the network; its ``nn.Linear`` layers are initialised in place.
        std: the normal's standard deviation before the clip.

    Returns:
        ``model``.
    """
    for m in model.modules():
        if isinstance(m, nn.Linear):
            with torch.no_grad():
                m.weight.normal_(0.0, std).clamp_(-1.0, 1.0)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
    return model


def init_uniform_(model: nn.Module, bound: float = 0.99) -> nn.Module:
    """The other reading of paper 000's sentence (section II.B): dense weights drawn from
    U(-0.99, 0.99).

    Args:
        model: the network; its ``nn.Linear`` layers are initialised in place.
        bound: the uniform's bound.

    Returns:
        ``model``.
    """
    for m in model.modules():
        if isinstance(m, nn.Linear):
            nn.init.uniform_(m.weight, -bound, bound)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
    return model


INITS: dict[str, Callable[[nn.Module], nn.Module]] = {"glorot": init_glorot_,
                                                      "uniform": init_uniform_,
                                                      "gaussian": init_gaussian_}


def _mlp(input_shape: tuple[int, ...], num_classes: int, dropout: float,
         hidden: int | tuple[int, ...] = (400,), **_: Any) -> nn.Sequential:
    hidden = (hidden,) if isinstance(hidden, int) else hidden
    layers: list[nn.Module] = [ScaleInput(), nn.Flatten()]
    width = math.prod(input_shape)
    for h in hidden:
        layers += [nn.Linear(width, h), nn.ReLU(), nn.Dropout(dropout)]
        width = h
    layers.append(nn.Linear(width, num_classes))
    return nn.Sequential(*layers)


def _conv(input_shape: tuple[int, ...], num_classes: int, dropout: float,
          filters: int = 32, hidden: int = 100, **_: Any) -> nn.Sequential:
    c, h, w = input_shape
    flat = filters * (h - 2) * (w - 2)
    return nn.Sequential(
        ScaleInput(), nn.Conv2d(c, filters, 3), nn.ReLU(), nn.Flatten(), nn.Dropout(dropout),
        nn.Linear(flat, hidden), nn.ReLU(), nn.Dropout(dropout), nn.Linear(hidden, num_classes))


def _cifar_conv(input_shape: tuple[int, ...], num_classes: int, dropout: float,
                **_: Any) -> nn.Sequential:
    c, h, w = input_shape
    layers: list[nn.Module] = [ScaleInput()]
    for cin, cout in ((c, 32), (32, 64), (64, 128)):
        layers += [nn.Conv2d(cin, cout, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2)]
    flat = 128 * (h // 8) * (w // 8)
    layers += [nn.Flatten(), nn.Dropout(dropout), nn.Linear(flat, 256), nn.ReLU(),
               nn.Dropout(dropout), nn.Linear(256, 128), nn.ReLU(), nn.Dropout(dropout),
               nn.Linear(128, num_classes)]
    return nn.Sequential(*layers)


#: paper 002's hidden layers for permutation-invariant MNIST (section 3.1)
PI_HIDDEN = (300, 300, 300)


def _paper002_mlp(input_shape: tuple[int, ...], num_classes: int, dropout: float, unit: str,
                  noise: str = "bernoulli:0.5", estimator: str = "erf", site: str = "synapse",
                  bias: bool = True, **_: Any) -> nn.Sequential:
    """784-300-300-300-10 on binarised inputs: ``unit`` is ``nsm``, ``stnn``, ``relu`` or
    ``sigmoid``; the read-out is an ordinary linear layer. No dropout: the NSM's noise is its
    regulariser, and the paper's baselines share the recipe."""
    layers: list[nn.Module] = [Binarize(), nn.Flatten()]
    width = math.prod(input_shape)
    for h in PI_HIDDEN:
        if unit == "nsm":
            layers.append(NSMLinear(width, h, bias=bias, noise=noise, estimator=estimator,
                                    site=site))
        elif unit == "stnn":
            layers.append(StochasticSigmoidLinear(width, h))
        else:
            layers += [nn.Linear(width, h), nn.ReLU() if unit == "relu" else nn.Sigmoid()]
        width = h
    layers.append(nn.Linear(width, num_classes))
    return nn.Sequential(*layers)


def _paper002_conv(input_shape: tuple[int, ...], num_classes: int, dropout: float,
                   stochastic: bool, noise: str = "bernoulli:0.5", estimator: str = "erf",
                   site: str = "synapse", **_: Any) -> nn.Sequential:
    """SI 4.9, Table 6: 5x5 conv 32, 2x2 max-pool, 5x5 conv 64, 2x2 max-pool, FC 512, read-out;
    NSM layers (``stochastic``) or Conv/Linear + ReLU (the dCNN)."""
    c, h, w = input_shape
    layers: list[nn.Module] = [Binarize()]
    for cin, cout in ((c, 32), (32, 64)):
        if stochastic:
            layers.append(NSMConv2d(cin, cout, 5, (h, w), noise=noise, estimator=estimator))
        else:
            layers += [nn.Conv2d(cin, cout, 5), nn.ReLU()]
        h, w = (h - 4) // 2, (w - 4) // 2
        layers.append(nn.MaxPool2d(2))
    flat = 64 * h * w
    layers.append(nn.Flatten())
    if stochastic:
        layers.append(NSMLinear(flat, 512, noise=noise, estimator=estimator, site=site))
    else:
        layers += [nn.Linear(flat, 512), nn.ReLU()]
    layers.append(nn.Linear(512, num_classes))
    return nn.Sequential(*layers)


def _sc_mlp(input_shape: tuple[int, ...], num_classes: int, dropout: float,
            hidden: tuple[int, ...], states: int = 5, sc_length: int | None = None,
            **_: Any) -> nn.Sequential:
    """Paper 003, Table 1: sigmoid layers computed by quantized SC, no biases."""
    layers: list[nn.Module] = [ScaleInput(), nn.Flatten()]
    widths = [math.prod(input_shape), *hidden, num_classes]
    for i, (a, b) in enumerate(zip(widths[:-1], widths[1:], strict=True)):
        layers.append(SCLinear(a, b, states=states, length=sc_length,
                               readout=i == len(widths) - 2))
    return nn.Sequential(*layers)


def _lenet5(input_shape: tuple[int, ...], num_classes: int, dropout: float,
            kind: str = "bbb", prior_sigma: float = 0.1, **_: Any) -> nn.Sequential:
    """LeNet-5 (6 and 16 5x5 convolutions with 2x2 max-pooling, 120-84-classes), BatchNorm
    after every hidden layer (SpinBayes re-calibrates it, paper 004 section 3.2). ``kind``:
    ``bbb`` (every conv and linear layer Bayes-by-Backprop), ``plain`` (deterministic: deep
    ensemble members), ``dropout`` (MC-Dropout at rate ``dropout`` after every hidden block)
    or ``dropconnect`` (MC-DropConnect at rate ``dropout`` on every layer but the last)."""
    c, h, w = input_shape
    flat = 16 * ((h // 2 - 4) // 2) * ((w // 2 - 4) // 2)
    conv: Callable[..., nn.Module] = nn.Conv2d
    dense: Callable[..., nn.Module] = nn.Linear
    if kind == "bbb":
        conv = partial(BayesConv2d, prior_sigma=prior_sigma)
        dense = partial(BayesLinear, prior_sigma=prior_sigma)
    elif kind == "dropconnect":
        conv = partial(DropConnectConv2d, p=dropout)
        dense = partial(DropConnectLinear, p=dropout)

    def drop() -> list[nn.Module]:
        return [MCDropout(dropout)] if kind == "dropout" else []

    last = BayesLinear(84, num_classes, prior_sigma=prior_sigma) if kind == "bbb" \
        else nn.Linear(84, num_classes)
    return nn.Sequential(
        ScaleInput(), conv(c, 6, 5, padding=2), nn.BatchNorm2d(6), nn.ReLU(), nn.MaxPool2d(2),
        *drop(), conv(6, 16, 5), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2), *drop(),
        nn.Flatten(), dense(flat, 120), nn.BatchNorm1d(120), nn.ReLU(), *drop(),
        dense(120, 84), nn.BatchNorm1d(84), nn.ReLU(), *drop(), last)


#: Bayes-by-Backprop (paper 004's reference [5]): Adam 1e-3 on the ELBO, no clipping (the
#: Gaussian prior keeps the posterior small; SpinBayes clips its samples)
BBB_TRAINING: dict[str, Any] = {"optimizer": "adam", "lr": 1e-3, "weight_bound": None,
                                "dropout": 0.0}
#: paper 004's other LeNet-5s: the same optimizer; ``dropout`` is the drop rate
LENET_TRAINING: dict[str, Any] = {"optimizer": "adam", "lr": 1e-3, "weight_bound": None,
                                  "dropout": 0.0}
#: how paper 003 trains (section III): the sum of squared errors (eq. 4-7) with the
#: straight-through estimator, a decaying learning rate, weights kept in [-1, 1]. The paper's
#: update rule is "Update(W, dW)" with no rate or decay given; plain SGD (``--optimizer sgd``,
#: eq. 7 as written) trains Method 2 far more slowly than Adam (README), so Adam is the default
SC_TRAINING: dict[str, Any] = {"optimizer": "adam", "loss": "sse", "lr": 0.01, "lr_decay": 0.85,
                               "dropout": 0.0, "init": "gaussian", "weight_bound": 1.0,
                               "states": 5}
#: how paper 002 trains (Adam, learning rate 3e-4, batch 100, data-dependent init, no clipping)
NSM_TRAINING: dict[str, Any] = {"optimizer": "adam", "lr": 3e-4, "weight_bound": None,
                                "dropout": 0.0, "data_init": True}
#: the deterministic baselines of paper 002: the same recipe without the NSM's init
PAPER002_TRAINING: dict[str, Any] = {**NSM_TRAINING, "data_init": False}


@dataclass(frozen=True)
class Arch:
    """A built-in architecture: builder, input shape, sampling method, training defaults.

    Attributes:
        name: the architecture's name.
        builder: builds it from ``(input_shape, num_classes, dropout, **options)``.
        input_shape: the paper's ``(C, H, W)``.
        description: one line for listings.
        method: the method that samples it by default (None: deterministic).
        train_defaults: training settings that differ from ``TrainConfig``'s defaults.
    """
    name: str
    builder: Callable[..., nn.Sequential]
    input_shape: tuple[int, int, int]
    description: str
    #: the method that samples it by default (None: deterministic, nothing to sample)
    method: str | None = "scann"
    #: training settings that differ from
    #: [`synsample.train.TrainConfig`][synsample.train.TrainConfig]'s defaults
    train_defaults: dict[str, Any] = field(default_factory=dict)


ARCHS: dict[str, Arch] = {a.name: a for a in (
    Arch("mlp", _mlp, (1, 28, 28), "784-400-10 MLP, ReLU, dropout (paper 000, Table I)"),
    Arch("conv", _conv, (1, 28, 28), "784-[32x3x3]-100-10 conv net (paper 000, Table I)"),
    Arch("cifar-conv", _cifar_conv, (3, 32, 32),
         "32(3x3)-64(3x3)-128(3x3)-256-128-10 conv net (paper 000, CIFAR-10)"),
    Arch("nsm-mlp", partial(_paper002_mlp, unit="nsm"), (1, 28, 28),
         "784-300-300-300-10 Neural Sampling Machine (paper 002, Table 1)", "nsm",
         {**NSM_TRAINING, "noise": "bernoulli:0.5"}),
    Arch("stnn-mlp", partial(_paper002_mlp, unit="stnn"), (1, 28, 28),
         "784-300-300-300-10 sigmoid stochastic network, StNN (paper 002, Table 1)", "nsm",
         PAPER002_TRAINING),
    Arch("relu-mlp", partial(_paper002_mlp, unit="relu"), (1, 28, 28),
         "784-300-300-300-10 ReLU network, binarised inputs (paper 002, section 3.2)", None,
         PAPER002_TRAINING),
    Arch("sigmoid-mlp", partial(_paper002_mlp, unit="sigmoid"), (1, 28, 28),
         "784-300-300-300-10 sigmoid network, binarised inputs (paper 002, section 3.2)", None,
         PAPER002_TRAINING),
    Arch("nsm-conv", partial(_paper002_conv, stochastic=True), (1, 28, 28),
         "32(5x5)-pool-64(5x5)-pool-512-10 NSM conv net (paper 002, Table 2, SI 4.9)", "nsm",
         {**NSM_TRAINING, "noise": "bernoulli:0.5"}),
    Arch("dcnn", partial(_paper002_conv, stochastic=False), (1, 28, 28),
         "32(5x5)-pool-64(5x5)-pool-512-10 deterministic CNN (paper 002, Table 2)", None,
         PAPER002_TRAINING),
    Arch("lenet5-bbb", _lenet5, (1, 28, 28),
         "LeNet-5 with BatchNorm, Bayes-by-Backprop layers (paper 004, Table 1)", "bbb",
         BBB_TRAINING),
    Arch("lenet5", partial(_lenet5, kind="plain"), (1, 28, 28),
         "LeNet-5 with BatchNorm, deterministic (paper 004's deep-ensemble members)", None,
         LENET_TRAINING),
    Arch("lenet5-dropout", partial(_lenet5, kind="dropout"), (1, 28, 28),
         "LeNet-5 with BatchNorm and MC-Dropout (paper 004's baseline [9])", "mc-dropout",
         {**LENET_TRAINING, "dropout": 0.25}),
    Arch("lenet5-dropconnect", partial(_lenet5, kind="dropconnect"), (1, 28, 28),
         "LeNet-5 with BatchNorm and MC-DropConnect (paper 004's baseline [20])",
         "mc-dropconnect", {**LENET_TRAINING, "dropout": 0.2}),
    Arch("sc-mlp", partial(_sc_mlp, hidden=(128,)), (1, 28, 28),
         "784-128-10 quantized sigmoid network for stochastic computing (paper 003, Table 1)",
         "sc", SC_TRAINING),
    Arch("sc-mlp3", partial(_sc_mlp, hidden=(392, 196, 98)), (1, 28, 28),
         "784-392-196-98-10 quantized sigmoid network for stochastic computing (paper 003)",
         "sc", SC_TRAINING),
)}


def build(name: str, input_shape: tuple[int, ...] | None = None, num_classes: int = 10,
          dropout: float = 0.5, init: str = "glorot", seed: int | None = None,
          **options: Any) -> nn.Sequential:
    """Build architecture ``name`` for inputs of ``input_shape`` (default: the paper's).

    Args:
        name: a key of `ARCHS`.
        input_shape: ``(C, H, W)`` (default: the paper's).
        num_classes: outputs of the read-out.
        dropout: the drop rate of the architectures that have dropout (MC-Dropout and
            DropConnect LeNets: their rate), in [0, 1).
        init: ``glorot`` (Keras default, how we read paper 000), ``uniform`` (U(-0.99, 0.99)
            dense weights) or ``gaussian`` (paper 003's clipped normal); NSM layers keep
            PyTorch's default and get paper 002's eq. 8 data-dependent init in training.
        seed: makes the initialisation reproducible (torch's global generator is restored
            after).
        **options: for NSM networks ``noise`` (``bernoulli:P``, ``gaussian:SIGMA``),
            ``estimator``, ``site`` (see `synsample.nn.nsm`), ``bias`` (False: NSM hidden
            layers without biases, as paper 002's eq. 4 writes the unit); for SC networks
            ``states`` (quantization levels), ``sc_length`` (training bitstream length,
            Method 2); for LeNet-5 ``prior_sigma``; None values mean the default.

    Returns:
        An ``nn.Sequential`` whose first layer scales uint8 pixels by 1/255 (paper 000's
        networks) or binarises them (paper 002's), its sampled layers named.

    Raises:
        ConfigError: for an unknown architecture or initialisation, a drop rate outside
            [0, 1), or an input shape the architecture cannot take.
    """
    options = {k: v for k, v in options.items() if v is not None}
    if name not in ARCHS:
        raise ConfigError(f"unknown architecture {name!r}; available: {', '.join(ARCHS)}")
    if init not in INITS:
        raise ConfigError(f"unknown initialisation {init!r}; use one of {', '.join(INITS)}")
    if not 0.0 <= dropout < 1.0:
        raise ConfigError(f"dropout must be in [0, 1), got {dropout}")
    arch = ARCHS[name]
    shape = tuple(input_shape) if input_shape is not None else arch.input_shape
    if len(shape) != 3 or min(shape) < 1 or (name == "conv" and min(shape[1:]) < 3) or (
            name.startswith(("nsm-conv", "dcnn", "lenet5")) and min(shape[1:]) < 16):
        raise ConfigError(f"{name} needs an input shape (C, H, W), got {shape}")
    state = torch.random.get_rng_state()
    if seed is not None:
        torch.manual_seed(seed)
    try:
        model = INITS[init](arch.builder(shape, num_classes, dropout, **options))
    finally:
        if seed is not None:
            torch.random.set_rng_state(state)
    for qualified, module in model.named_modules():
        if hasattr(module, "layer_name"):  # names key the counter-based draws of each layer
            module.layer_name = qualified
    return model


def build_from_config(config: dict[str, Any], input_shape: tuple[int, ...], num_classes: int,
                      seed: int | None = None) -> nn.Sequential:
    """The architecture a training (or checkpoint) config names, with its options.

    Args:
        config: a training config as a dict (``arch`` and the options it records).
        input_shape: ``(C, H, W)``.
        num_classes: outputs of the read-out.
        seed: makes the initialisation reproducible.

    Returns:
        The network, as [`build`][synsample.models.build] makes it.
    """
    return build(config["arch"], input_shape=input_shape, num_classes=num_classes,
                 dropout=config.get("dropout", 0.5), init=config.get("init", "glorot"),
                 seed=seed, noise=config.get("noise"), estimator=config.get("estimator"),
                 site=config.get("noise_site"), bias=config.get("bias"),
                 states=config.get("states"), sc_length=config.get("sc_length"),
                 hidden=config.get("hidden"))
